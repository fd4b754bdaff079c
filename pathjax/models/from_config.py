"""Builds `(model, tokenizer)` from a config's `model` section."""

from __future__ import annotations

import jax.numpy as jnp

from pathjax import sharding as sharding_lib
from pathjax.models import load_model, presets, registry


def model_from_config(model_config, *, mesh=None, rules=sharding_lib.DEFAULT_RULES, seed: int = 0):
    """A checkpoint when `source` is set, else random weights of `preset` (no tokenizer)."""
    if bool(model_config.source) == bool(model_config.preset):
        raise ValueError(
            "config.model: set exactly one of `source` (a checkpoint) and `preset` (random "
            f"weights; presets: {', '.join(sorted(presets.PRESETS))})."
        )
    if model_config.source:
        return load_model(model_config.source, model_config.dtype, mesh=mesh, rules=rules)
    config = presets.preset_config(model_config.preset)
    return registry.init_model(config, seed=seed, dtype=jnp.dtype(model_config.dtype)), None
