"""Matmul FLOPs of a forward pass and of a LoRA training step, from a model config.

What MFU and throughput are computed from (the training loop's metrics and the benchmarks):
2 FLOPs per weight per token, attention scores and values, and the output head at the
positions it runs at. Counted from the config alone, so a benchmark and the loop agree.
"""

from __future__ import annotations

import functools

from pathjax.models import registry


@functools.lru_cache(maxsize=16)
def parameter_count(config) -> int:
    """Parameters of an architecture, from its abstract model (about a second for a 30-layer
    model, so once per config: the training loop counts FLOPs at every step)."""
    return registry.count_params(registry.abstract_model(registry.family_of(config), config))


def forward_flops(config, tokens: int, seq_len: int, head_tokens: int | None = None) -> float:
    """Matmul FLOPs of one forward pass: 2 per weight per token, plus attention scores/values.

    Embedding lookups are free; the output projection (tied or not) is a vocab x hidden matmul,
    run at `head_tokens` positions (default: every token; training runs it at targets only).
    """
    params = parameter_count(config)
    head_params = config.vocab_size * config.hidden_size
    embedding_params = head_params
    if config.model_type == "gpt2":
        embedding_params += config.max_position_embeddings * config.hidden_size
    # The input table is a lookup; a tied head reuses it as a vocab x hidden matmul.
    body_params = params - embedding_params
    if not getattr(config, "tie_word_embeddings", True):
        body_params -= head_params  # An untied head is counted below, like a tied one.
    attention = 2 * 2 * config.num_layers * seq_len * config.num_heads * config.head_dim
    head_tokens = tokens if head_tokens is None else head_tokens
    return float(tokens) * (2 * body_params + attention) + 2.0 * head_tokens * head_params


def lora_training_flops(
    config, lora_paths_shapes, tokens: int, seq_len: int, head_tokens: int | None = None
) -> float:
    """FLOPs of one LoRA training step: forward, plus activation gradients through the frozen
    base (no weight gradients), plus forward and both backward matmuls of the adapters.

    `lora_paths_shapes`: `(in, out, rank)` of each adapter; `head_tokens`: the positions the
    output head runs at (default: every token).
    """
    forward = forward_flops(config, tokens, seq_len, head_tokens)
    adapter = sum(2 * tokens * r * (i + o) for i, o, r in lora_paths_shapes)
    # Backward: activation gradients cost a forward again; adapter weight gradients twice.
    return 2 * forward + 3 * adapter
