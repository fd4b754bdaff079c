"""Which transformers config attributes the decoder reads, and which it may safely ignore.

`decoder_config.Config.from_hf` reads the attributes listed per model type; the ones in
`IGNORED` describe the file, the training run or generation defaults and cannot change the
forward pass. Anything else is refused by name: an attribute nobody reads may change the
architecture (a partial rotary embedding, an interleaved rotary layout, quantization), and
loading the checkpoint without it would give wrong logits with no error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IGNORED = frozenset(
    {
        # The file and the library that wrote it.
        "_name_or_path",
        "architectures",
        "dtype",
        "torch_dtype",
        "transformers_version",
        "is_llama_config",  # nanotron's marker in SmolLM2 configs.
        "transformers.js_config",
        "_attn_implementation_autoset",
        "attn_implementation",
        # transformers v4 split each matmul in `pretraining_tp` slices: the same product.
        "pretraining_tp",
        # Inference and task options of transformers' PretrainedConfig (v4 and v5).
        "use_cache",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
        "torchscript",
        "id2label",
        "label2id",
        "problem_type",
        "finetuning_task",
        "task_specific_params",
        "tokenizer_class",
        "prefix",
        "chunk_size_feed_forward",
        "is_encoder_decoder",
        "is_decoder",
        "add_cross_attention",
        "cross_attention_hidden_size",
        "tie_encoder_decoder",
        "pruned_heads",
        "use_bfloat16",
        "tf_legacy_loss",
        "sep_token_id",
        "decoder_start_token_id",
        # Generation defaults that v4 configs carried (generation_config.json now holds them).
        "max_length",
        "min_length",
        "do_sample",
        "early_stopping",
        "num_beams",
        "num_beam_groups",
        "diversity_penalty",
        "temperature",
        "top_k",
        "top_p",
        "typical_p",
        "repetition_penalty",
        "length_penalty",
        "no_repeat_ngram_size",
        "encoder_no_repeat_ngram_size",
        "bad_words_ids",
        "num_return_sequences",
        "output_scores",
        "return_dict_in_generate",
        "forced_bos_token_id",
        "forced_eos_token_id",
        "remove_invalid_values",
        "exponential_decay_length_penalty",
        "suppress_tokens",
        "begin_suppress_tokens",
    }
)

# Read by every family (some only to check that they hold their default).
_COMMON = frozenset(
    {
        "model_type",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "rms_norm_eps",
        "rope_parameters",
        "rope_scaling",
        "rope_theta",
        "rope_interleaved",
        "tie_word_embeddings",
        "max_position_embeddings",
        "initializer_range",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "attention_dropout",
    }
)

READ_BY_MODEL_TYPE: dict[str, frozenset[str]] = {
    "llama": _COMMON | {"hidden_act", "attention_bias", "mlp_bias"},
    "qwen2": _COMMON
    | {"hidden_act", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types"},
    "mistral": _COMMON | {"hidden_act", "sliding_window"},
    "gemma3_text": _COMMON
    | {
        "hidden_activation",
        "hidden_act",
        "attention_bias",
        "sliding_window",
        "layer_types",
        "sliding_window_pattern",
        "_sliding_window_pattern",
        "rope_local_base_freq",
        "query_pre_attn_scalar",
        "attn_logit_softcapping",
        "final_logit_softcapping",
        "use_bidirectional_attention",
    },
}


def refuse_unknown(hf: Mapping[str, Any], model_type: str) -> None:
    unknown = sorted(set(hf) - IGNORED - READ_BY_MODEL_TYPE[model_type])
    if unknown:
        raise ValueError(
            f"The {model_type} config has attribute(s) pathjax does not read: {unknown}. They "
            "may change the architecture, so the checkpoint is not loaded. If they do not "
            "(check transformers' modeling code), remove them from config.json."
        )
