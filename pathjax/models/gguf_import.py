"""GGUF files (llama.cpp) to pathjax models: hyperparameters, dequantized tensors, tokenizer.

Tensors are renamed to transformers' keys and layouts so that the same `fill_model` that reads
HF folders places them; the `gguf` package dequantizes every supported block format in numpy.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from typing import Any

import numpy as np

from pathjax.models.checkpoints import CheckpointError, TensorSource

# GGUF architecture -> transformers model_type. Mistral GGUFs say "llama".
SUPPORTED_ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "gemma3": "gemma3_text"}

_LAYER_TENSORS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
# llama.cpp's Gemma 3 names (gguf's tensor map for GEMMA3): four norms per layer, q/k norms.
_GEMMA3_LAYER_TENSORS = {
    **{k: v for k, v in _LAYER_TENSORS.items() if "norm" not in k},
    "attn_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
}
_GLOBAL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def unpermute_rotary(weight_oi: np.ndarray, num_heads: int) -> np.ndarray:
    """Undoes llama.cpp's per-head interleaving of Q/K rows (its rotary layout -> HF's).

    llama.cpp's converter applies `w.reshape(h, 2, d // h // 2, ...).swapaxes(1, 2)`; this is
    its inverse, as in transformers' GGUF loader.
    """
    rows = weight_oi.shape[0]
    return (
        weight_oi.reshape(num_heads, rows // num_heads // 2, 2, *weight_oi.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight_oi.shape)
    )


class GGUFFile:
    """One GGUF file, opened (memory-mapped) once."""

    def __init__(self, path: str):
        import gguf

        if not os.path.isfile(path):
            raise CheckpointError(f"No GGUF file at {path}.")
        try:
            self.reader = gguf.GGUFReader(path)
        except Exception as e:  # The gguf package raises bare ValueErrors on bad magic.
            raise CheckpointError(f"{path} is not a readable GGUF file ({e}).") from e
        self.path = path
        self.architecture = self.field("general.architecture")
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise CheckpointError(
                f"{path}: GGUF architecture {self.architecture!r} is not supported; supported: "
                f"{', '.join(sorted(SUPPORTED_ARCHITECTURES))}."
            )
        self.model_type = SUPPORTED_ARCHITECTURES[self.architecture]

    def field(self, key: str, default: Any = None) -> Any:
        field = self.reader.fields.get(key)
        return default if field is None else field.contents()

    def arch_field(self, key: str, default: Any = None) -> Any:
        return self.field(f"{self.architecture}.{key}", default)

    @cached_property
    def tensors_by_name(self) -> dict[str, Any]:
        return {t.name: t for t in self.reader.tensors}

    def hf_config(self) -> dict[str, Any]:
        """The transformers config.json this file's metadata describes."""
        tensors = self.tensors_by_name
        embed = tensors["token_embd.weight"]
        vocab_size = int(self.arch_field("vocab_size", embed.shape[-1]))
        num_heads = int(self.arch_field("attention.head_count"))
        hidden = int(self.arch_field("embedding_length"))
        head_dim = int(self.arch_field("rope.dimension_count", hidden // num_heads))
        rope: dict[str, Any] = {
            "rope_type": "default",
            "rope_theta": float(self.arch_field("rope.freq_base", 10000.0)),
        }
        scaling = self.arch_field("rope.scaling.type")
        if scaling == "linear":
            rope.update(rope_type="linear", factor=float(self.arch_field("rope.scaling.factor")))
        elif scaling not in (None, "none") or "rope_freqs.weight" in tensors:
            raise CheckpointError(
                f"{self.path}: rope scaling {scaling or 'rope_freqs'} in GGUF is not supported; "
                "load the HF safetensors folder of this model instead."
            )
        config = {
            "model_type": self.model_type,
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": int(self.arch_field("feed_forward_length")),
            "num_hidden_layers": int(self.arch_field("block_count")),
            "num_attention_heads": num_heads,
            "num_key_value_heads": int(self.arch_field("attention.head_count_kv", num_heads)),
            "head_dim": head_dim,
            "rms_norm_eps": float(self.arch_field("attention.layer_norm_rms_epsilon", 1e-6)),
            "rope_parameters": rope,
            "max_position_embeddings": int(self.arch_field("context_length", 2048)),
            "tie_word_embeddings": "output.weight" not in tensors,
            "bos_token_id": self.field("tokenizer.ggml.bos_token_id"),
            "eos_token_id": self.field("tokenizer.ggml.eos_token_id"),
        }
        if self.architecture == "gemma3":
            config = self._gemma3_config(config)
        return config

    def _gemma3_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Gemma 3 facts the file does not store, fixed as llama.cpp and transformers' GGUF
        loader fix them: a global layer every sixth, local layers' rotary base 10,000, no
        logit soft-capping. A rope scaling in the file applies to the global layers only, as
        in llama.cpp (transformers' GGUF loader drops it; gemma-3-270m and -1b have none)."""
        hidden, heads = config["hidden_size"], config["num_attention_heads"]
        num_layers = config["num_hidden_layers"]
        head_dim = int(self.arch_field("attention.key_length", hidden // heads))
        config.update(
            head_dim=head_dim,
            layer_types=[
                "full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                for i in range(num_layers)
            ],
            sliding_window=int(self.arch_field("attention.sliding_window", 4096)),
            rope_parameters={
                "full_attention": config["rope_parameters"],
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
            # llama.cpp scales attention by 1/sqrt(head_dim), except for gemma-3-27b (62
            # layers): 1/sqrt(hidden/heads). transformers' GGUF loader keeps its default, 256,
            # which equals head_dim for every other size.
            query_pre_attn_scalar=hidden // heads if num_layers == 62 else head_dim,
            hidden_activation="gelu_pytorch_tanh",
            pad_token_id=self.field("tokenizer.ggml.padding_token_id"),
        )
        return config

    def tensor_source(self, hf_config: dict[str, Any]) -> TensorSource:
        import gguf

        unpermute = {
            "attn_q": hf_config["num_attention_heads"],
            "attn_k": hf_config["num_key_value_heads"],
        }
        # Only llama.cpp's "llama" converter permutes Q/K; qwen2 and gemma3 keep the HF layout.
        permuted = self.architecture == "llama"
        gemma = self.architecture == "gemma3"
        layer_tensors = _GEMMA3_LAYER_TENSORS if gemma else _LAYER_TENSORS

        def reader(tensor, heads: int | None, offset: float):
            def read():
                array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
                array = np.asarray(array, dtype=np.float32).reshape(tuple(reversed(tensor.shape)))
                if offset:
                    array = array - np.float32(offset)
                return unpermute_rotary(array, heads) if heads else array

            return read

        readers = {}
        for name, tensor in self.tensors_by_name.items():
            match = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
            if match:
                layer, kind, leaf = match.groups()
                if kind not in layer_tensors:
                    continue
                key = f"model.layers.{layer}.{layer_tensors[kind]}.{leaf}"
                heads = unpermute.get(kind) if permuted else None
            elif name in _GLOBAL_TENSORS:
                key, heads = _GLOBAL_TENSORS[name], None
            else:
                continue
            # llama.cpp stores Gemma's norm weights as `1 + w` (its norms multiply by the weight
            # alone); transformers' GGUF loader subtracts the 1 from every "*norm.weight".
            offset = 1.0 if gemma and name.endswith("norm.weight") else 0.0
            readers[key] = reader(tensor, heads, offset)
        return TensorSource(readers, self.path)
