"""Decoder layers stacked on a leading layer axis (`model.scan_layers`), and remat policies.

A stacked model holds ONE layer module whose parameters are `[num_layers, ...]` and runs it
under `nnx.scan`: XLA compiles one layer instead of `num_layers` copies. Its parameter paths
lose the layer index (`layers.self_attn.q_proj.kernel`); `per_layer_path` puts it back where
transformers and PEFT names need it (`layers.3.self_attn.q_proj`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

STACKED = "layers"  # The attribute of a model that holds its (stacked or listed) layers.
REMAT = ("none", "full", "dots")
SCAN_FIX = "model.scan_layers=False"  # What an error about the stacked layout tells to set.


class PerLayer(nnx.Variable):
    """A per-layer constant stacked with the parameters (scanned, never trained)."""


# What `nnx.scan` slices along the layer axis; everything else (LoRA controls) is broadcast.
SCANNED = (nnx.Param, PerLayer)


def check_remat(name: str) -> str:
    if name not in REMAT:
        raise ValueError(f"model.remat={name!r} is not one of {', '.join(REMAT)}.")
    return name


def remat_policy(name: str):
    """`jax.checkpoint`'s policy for `model.remat`: `full` saves nothing (each layer's forward
    runs again in the backward pass), `dots` keeps the matmul outputs and recomputes the rest."""
    check_remat(name)
    if name == "dots":
        return jax.checkpoint_policies.dots_with_no_batch_dims_saveable
    return None


def with_remat(fn, name: str):
    """`fn` (a layer call taking the module first) under the remat policy `name`."""
    if name == "none":
        return fn
    return nnx.remat(fn, policy=remat_policy(name))


def stack_modules(modules: Sequence[nnx.Module]) -> nnx.Module:
    """One module like `modules[0]` whose parameters stack theirs on a new leading axis.

    Built from the modules a loop layout would hold, so both layouts draw the same random
    initialization; the layer axis is unsharded (`None` in the logical names).
    """
    graphdef, _ = nnx.split(modules[0])
    flats = [nnx.to_flat_state(nnx.state(m)) for m in modules]
    stacked = []
    for i, (path, variable) in enumerate(flats[0]):
        if isinstance(variable, SCANNED):
            values = jnp.stack([flat[i][1][...] for flat in flats])
            names = variable.get_metadata().get("out_sharding")
            names = None if names is None else (None, *names)
            variable = variable.replace(values, out_sharding=names)
        stacked.append((path, variable))
    return nnx.merge(graphdef, nnx.from_flat_state(stacked))


def is_stacked_path(config: Any, path: Sequence[Any]) -> bool:
    """Whether a parameter path of a model with `config` lies in a stacked layer."""
    return bool(getattr(config, "scan_layers", False)) and str(path[0]) == STACKED


def per_layer_path(path: Sequence[Any], layer: int) -> tuple[Any, ...]:
    """`("layers", "mlp", ...)` -> `("layers", layer, "mlp", ...)`."""
    return (path[0], layer, *path[1:])


def layer_index_of(dotted_path: str) -> tuple[str, int] | None:
    """`"layers.3.mlp.up_proj"` -> `("layers.mlp.up_proj", 3)`; None outside numbered layers."""
    parts = dotted_path.split(".")
    if len(parts) < 3 or parts[0] != STACKED or not parts[1].isdigit():
        return None
    return ".".join([parts[0], *parts[2:]]), int(parts[1])
