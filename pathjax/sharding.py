"""Logical axis names to mesh shardings.

Parameters carry logical names (`embed`, `mlp`, `heads`, ...) in their `out_sharding`
metadata; a rules table maps each name to a mesh axis (or to nothing: replicated). The mesh
has the axes `data`, `fsdp`, `tensor`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# MaxText-style defaults: weights are split over `fsdp` along the embedding and over `tensor`
# along heads/MLP/vocab; activations' batch over `data` and `fsdp`.
DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", "tensor"),
    ("qkv", "tensor"),
    ("positions", None),
)


def make_mesh(
    shape: Sequence[int] = (1, -1, 1), devices: Sequence[jax.Device] | None = None
) -> Mesh:
    """A `(data, fsdp, tensor)` mesh; one size may be -1 (= the remaining devices)."""
    sizes = list(shape)
    if devices is None:
        devices = jax.devices()
        if -1 not in sizes and int(np.prod(sizes)) < len(devices) and jax.process_count() == 1:
            # A smaller mesh on one host (e.g. (1, 1, 1) for a single-device reference run).
            devices = devices[: int(np.prod(sizes))]
    devices = list(devices)
    if len(sizes) != len(MESH_AXES):
        raise ValueError(f"Mesh shape {tuple(shape)} needs one size per axis {MESH_AXES}.")
    if sizes.count(-1) > 1:
        raise ValueError(f"Mesh shape {tuple(shape)}: at most one size may be -1.")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"Mesh shape {tuple(shape)} does not divide {len(devices)} devices.")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(
            f"Mesh shape {tuple(sizes)} has {int(np.prod(sizes))} slots for {len(devices)} devices."
        )
    # Auto axes: steps may then use `with_sharding_constraint` (Explicit axes reject it).
    return jax.make_mesh(
        tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices
    )


def logical_to_spec(
    names: Sequence[str | None] | None, rules: Sequence[tuple[str, object]] = DEFAULT_RULES
) -> PartitionSpec:
    """The PartitionSpec for a tuple of logical names; a mesh axis is used at most once."""
    if not names:
        return PartitionSpec()
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name in names:
        axes = table.get(name) if name is not None else None
        axes_tuple = (axes,) if isinstance(axes, str) else tuple(axes or ())
        axes_tuple = tuple(a for a in axes_tuple if a not in used)
        used.update(axes_tuple)
        spec.append(axes_tuple[0] if len(axes_tuple) == 1 else (axes_tuple or None))
    return PartitionSpec(*spec)


def _fits(shape: Sequence[int], spec: PartitionSpec, mesh: Mesh) -> PartitionSpec:
    """Drops mesh axes that do not divide their dimension (e.g. 9 heads over 2 devices)."""
    fitted = []
    for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec)), strict=True):
        axes_tuple = (axes,) if isinstance(axes, str) else tuple(axes or ())
        size = int(np.prod([mesh.shape[a] for a in axes_tuple])) if axes_tuple else 1
        fitted.append(axes if dim % size == 0 else None)
    return PartitionSpec(*fitted)


def sharding_for(
    shape: Sequence[int],
    names: Sequence[str | None] | None,
    mesh: Mesh,
    rules: Sequence[tuple[str, object]] = DEFAULT_RULES,
) -> NamedSharding:
    return NamedSharding(mesh, _fits(shape, logical_to_spec(names, rules), mesh))


def state_shardings(
    state: nnx.State, mesh: Mesh, rules: Sequence[tuple[str, object]] = DEFAULT_RULES
) -> nnx.State:
    """A pytree like `state` whose leaves are the NamedShardings its logical names ask for."""

    def one(variable):
        names = (
            variable.get_metadata().get("out_sharding")
            if isinstance(variable, nnx.Variable)
            else None
        )
        return sharding_for(variable.shape, names, mesh, rules)

    return jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def rules_from_config(rules: Mapping[str, object] | None) -> tuple[tuple[str, object], ...]:
    """Config rules override the defaults name by name."""
    merged = dict(DEFAULT_RULES)
    merged.update(rules or {})
    return tuple(merged.items())
