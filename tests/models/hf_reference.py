"""Tiny random transformers models saved with `save_pretrained`: the parity reference."""

from __future__ import annotations

import numpy as np
import torch
import transformers

TINY = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2)


def llama_config(**overrides) -> transformers.LlamaConfig:
    kwargs = dict(TINY, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    kwargs.update(overrides)
    return transformers.LlamaConfig(**kwargs)


def qwen2_config(**overrides) -> transformers.Qwen2Config:
    kwargs = dict(TINY, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    kwargs.update(overrides)
    return transformers.Qwen2Config(**kwargs)


def mistral_config(**overrides) -> transformers.MistralConfig:
    kwargs = dict(TINY, num_attention_heads=4, num_key_value_heads=2, sliding_window=5)
    kwargs.update(overrides)
    return transformers.MistralConfig(**kwargs)


def gemma3_config(**overrides) -> transformers.Gemma3TextConfig:
    """Three layers (local, global, local) with a window of 4, shorter than the test sequences;
    head_dim and query_pre_attn_scalar differ from hidden / heads so each is exercised."""
    kwargs = dict(
        TINY,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        query_pre_attn_scalar=24,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
        },
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
        attn_implementation="eager",
    )
    kwargs.update(overrides)
    return transformers.Gemma3TextConfig(**kwargs)


def gpt2_config(**overrides) -> transformers.GPT2Config:
    kwargs = dict(
        vocab_size=96,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    kwargs.update(overrides)
    return transformers.GPT2Config(**kwargs)


def save_random_model(config, folder, seed: int = 0) -> torch.nn.Module:
    """Builds a random model, perturbs every parameter (so zero-init biases and unit norms are
    not trivially right), saves it as safetensors and returns it in eval mode."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(folder)
    return model


def torch_logits(model, ids: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    kwargs = {}
    if mask is not None:
        kwargs["attention_mask"] = torch.tensor(mask, dtype=torch.long)
    with torch.no_grad():
        return model(torch.tensor(ids, dtype=torch.long), **kwargs).logits.float().numpy()


def random_ids(shape, vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, vocab_size, shape).astype(np.int32)
