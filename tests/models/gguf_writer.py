"""Writes small GGUF files the way llama.cpp's converter does (for import tests)."""

from __future__ import annotations

import gguf
import numpy as np


def permute_rotary(weight_oi: np.ndarray, num_heads: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute` (HF rotary layout -> GGUF layout)."""
    return (
        weight_oi.reshape(num_heads, 2, weight_oi.shape[0] // num_heads // 2, *weight_oi.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight_oi.shape)
    )


def write_gguf(path, architecture: str, fields: dict, tensors: dict[str, np.ndarray]) -> None:
    writer = gguf.GGUFWriter(str(path), architecture)
    for key, value in fields.items():
        if isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_string(key, value)
    for name, array in tensors.items():
        writer.add_tensor(name, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama_to_gguf(hf_model, path, *, quantize_q8: bool = False) -> None:
    """A transformers Llama model as a llama.cpp-style GGUF (Q/K permuted, names mapped)."""
    cfg = hf_model.config
    arch = "llama"
    fields = {
        f"{arch}.vocab_size": cfg.vocab_size,
        f"{arch}.block_count": cfg.num_hidden_layers,
        f"{arch}.context_length": cfg.max_position_embeddings,
        f"{arch}.embedding_length": cfg.hidden_size,
        f"{arch}.feed_forward_length": cfg.intermediate_size,
        f"{arch}.attention.head_count": cfg.num_attention_heads,
        f"{arch}.attention.head_count_kv": cfg.num_key_value_heads,
        f"{arch}.rope.freq_base": float(cfg.rope_parameters["rope_theta"]),
        f"{arch}.attention.layer_norm_rms_epsilon": float(cfg.rms_norm_eps),
    }
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    tensors = {}
    for key, value in hf_model.state_dict().items():
        array = value.detach().numpy().astype(np.float32)
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        elif key == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            name = "output.weight"
        else:
            _, _, layer, *rest = key.split(".")
            module, leaf = ".".join(rest[:-1]), rest[-1]
            name = f"blk.{layer}.{names[module]}.{leaf}"
            if module == "self_attn.q_proj":
                array = permute_rotary(array, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                array = permute_rotary(array, cfg.num_key_value_heads)
        tensors[name] = array
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in fields.items():
        (writer.add_float32 if isinstance(value, float) else writer.add_uint32)(key, value)
    for name, array in tensors.items():
        if quantize_q8 and array.ndim == 2 and array.shape[-1] % 32 == 0:
            quantized = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


_GEMMA3_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def gemma3_to_gguf(hf_model, path, *, quantize_q8: bool = False) -> None:
    """A transformers Gemma 3 text model as llama.cpp's converter writes it: names mapped,
    norm weights stored as `1 + w`, Q/K not permuted, tied head omitted."""
    cfg = hf_model.config
    arch = "gemma3"
    fields = {
        f"{arch}.vocab_size": cfg.vocab_size,
        f"{arch}.block_count": cfg.num_hidden_layers,
        f"{arch}.context_length": cfg.max_position_embeddings,
        f"{arch}.embedding_length": cfg.hidden_size,
        f"{arch}.feed_forward_length": cfg.intermediate_size,
        f"{arch}.attention.head_count": cfg.num_attention_heads,
        f"{arch}.attention.head_count_kv": cfg.num_key_value_heads,
        f"{arch}.attention.key_length": cfg.head_dim,
        f"{arch}.attention.value_length": cfg.head_dim,
        f"{arch}.attention.sliding_window": cfg.sliding_window,
        f"{arch}.rope.freq_base": float(cfg.rope_parameters["full_attention"]["rope_theta"]),
        f"{arch}.attention.layer_norm_rms_epsilon": float(cfg.rms_norm_eps),
    }
    tensors = {}
    for key, value in hf_model.state_dict().items():
        array = value.detach().numpy().astype(np.float32)
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        elif key == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            name = "output.weight"
        else:
            _, _, layer, *rest = key.split(".")
            name = f"blk.{layer}.{_GEMMA3_NAMES['.'.join(rest[:-1])]}.{rest[-1]}"
        if name.endswith("norm.weight"):
            array = array + 1
        tensors[name] = array
    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in fields.items():
        (writer.add_float32 if isinstance(value, float) else writer.add_uint32)(key, value)
    for name, array in tensors.items():
        if quantize_q8 and array.ndim == 2 and array.shape[-1] % 32 == 0:
            quantized = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
