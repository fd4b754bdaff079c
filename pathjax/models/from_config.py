"""Builds `(model, tokenizer)` from a config's `model` section."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax import sharding as sharding_lib
from pathjax.models import load_model, presets, registry
from pathjax.models.tokenizers import check_fits, load_tokenizer


def model_from_config(model_config, *, mesh=None, rules=sharding_lib.DEFAULT_RULES, seed: int = 0):
    """A checkpoint when `source` is set, else random weights of `preset`.

    `tokenizer` (optional) overrides the checkpoint's tokenizer, or gives a preset one;
    `attention` (optional, default "auto") picks the attention kernel; `scan_layers` and `remat`
    (optional) the layer layout and rematerialization (`layer_stack`).
    """
    if bool(model_config.source) == bool(model_config.preset):
        raise ValueError(
            "config.model: set exactly one of `source` (a checkpoint) and `preset` (random "
            f"weights; presets: {', '.join(sorted(presets.PRESETS))})."
        )
    tokenizer_source = model_config.get("tokenizer") or None
    attention = model_config.get("attention") or "auto"
    layout = dict(
        scan_layers=bool(model_config.get("scan_layers", False)),
        remat=model_config.get("remat") or "none",
    )
    if model_config.source:
        return load_model(
            model_config.source,
            model_config.dtype,
            tokenizer=tokenizer_source or "auto",
            mesh=mesh,
            rules=rules,
            num_layers=model_config.get("num_layers") or None,
            attention=attention,
            **layout,
        )
    config = registry.with_attention(presets.preset_config(model_config.preset), attention)
    config = registry.with_layout(config, **layout)
    dtype = jnp.dtype(model_config.dtype)
    model = registry.init_model(config, seed=seed, dtype=dtype)
    if mesh is not None:
        # Random weights, placed like loaded ones: the same shardings from logical names.
        graphdef, state = nnx.split(model)
        state = jax.device_put(state, sharding_lib.state_shardings(state, mesh, rules))
        model = nnx.merge(graphdef, state)
    tokenizer = None
    if tokenizer_source:
        tokenizer = load_tokenizer(tokenizer_source)
        check_fits(tokenizer, config.vocab_size, origin=f"preset {model_config.preset}")
    return model, tokenizer
