"""K adapters of one study trained as one run: what they must share, and the stacked layout.

A study trains one adapter per condition and seed on the same frozen base. Stacked, the K
adapters' parameters, optimizer states and random keys get a leading adapter axis, and each
step's batch is `[K, rows, length]`: adapter k's rows are slice k. The train step is the
single-adapter step under `jax.vmap` over that axis with the base weights shared, so every
adapter's loss normalization, gradient clipping, optimizer update and dropout key are its
own: each adapter's update is exactly the one it would get trained alone on the same rows,
while the frozen base's matmuls run once for all K (one larger matmul per layer).

What may differ between the adapters of a stacked run: the condition (which dataset) and the
seeds (`train.seed`: initialization, data order and dropout; `data.seed` is the dataset's
and must agree). Everything else (model, LoRA rank and targets, optimizer, batch size,
schedule) must agree, or the run is refused with the differing fields named: those would
change the compiled step, and one compile for all K is the point.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from pathjax import lora

# Config fields that may differ between the adapters of one stacked run.
PER_ADAPTER_FIELDS = ("data.condition", "train.seed", "experiment.seeds")
# Written into every checkpoint; a checkpoint without it predates stacked runs.
LAYOUT = "stacked/1"


@dataclasses.dataclass(frozen=True)
class AdapterRun:
    """One adapter of a stacked run: its name, config and output folder."""

    name: str
    config: Any
    workdir: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "condition": self.config.data.condition,
            "seed": int(self.config.train.seed),
        }


def _flat(config) -> dict[str, Any]:
    def walk(prefix: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, Mapping):
            for key in sorted(value):
                walk(f"{prefix}.{key}" if prefix else key, value[key], out)
        else:
            out[prefix] = value

    out: dict[str, Any] = {}
    walk("", json.loads(config.to_json_best_effort()), out)
    return out


def check_stackable(runs: Sequence[AdapterRun]) -> None:
    """Refuses adapters that cannot share one compiled step, naming what differs."""
    if not runs:
        raise ValueError("A stacked run needs at least one adapter.")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"Adapter names must be distinct; got {names}.")
    workdirs = [r.workdir for r in runs]
    if len(set(workdirs)) != len(workdirs):
        raise ValueError(f"Each adapter needs its own workdir; got {workdirs}.")
    first = _flat(runs[0].config)
    for run in runs[1:]:
        other = _flat(run.config)
        differ = sorted(
            key
            for key in set(first) | set(other)
            if first.get(key) != other.get(key)
            and not any(key == f or key.startswith(f + ".") for f in PER_ADAPTER_FIELDS)
        )
        if differ:
            details = ", ".join(f"{k}: {first.get(k)!r} vs {other.get(k)!r}" for k in differ)
            raise ValueError(
                f"Adapters {runs[0].name!r} and {run.name!r} cannot train stacked: they differ "
                f"in {details}. Only {', '.join(PER_ADAPTER_FIELDS)} may differ within one "
                "stacked run; train the others as a run of their own."
            )


def reinitialize(model: nnx.Module, seed: int) -> None:
    """Draws every adapter's initial values as `lora.add_lora(..., rngs=nnx.Rngs(seed))` does
    (A uniform, B zero; modules in path order), so that adapter k of a stacked run starts where
    a run of its own with that seed starts."""
    rngs = nnx.Rngs(seed)
    for _, module in sorted(lora.adapters(model), key=lambda pair: pair[0]):
        module.lora_a.set_value(lora.initial_a(rngs, module.lora_a.shape))
        module.lora_b.set_value(jnp.zeros(module.lora_b.shape, jnp.float32))


def stack(trees: Sequence[Any]) -> Any:
    """Leaf-wise stack along a new leading adapter axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, index: int) -> Any:
    """Adapter `index`'s slice of a stacked tree."""
    return jax.tree.map(lambda x: x[index], tree)


def stacked_sharding(sharding: NamedSharding) -> NamedSharding:
    """The sharding of a stacked leaf: the adapter axis replicated, the rest as one adapter's.

    K is small (conditions x seeds) and every device runs every adapter's rows, so the adapter
    axis is not split; the inner axes keep their logical shardings (fsdp, tensor).
    """
    return NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))


def stack_batches(batches: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-adapter batches -> one `[K, rows, ...]` batch, padded to the longest of them.

    The adapters' data streams bucket independently, so one step's batches may differ in
    length and in target width; the padding is masked (attention 0, weight 0) and changes no
    real position's value.
    """
    out = {}
    for key in batches[0]:
        arrays = [np.asarray(b[key]) for b in batches]
        shape = tuple(max(s) for s in zip(*(a.shape for a in arrays), strict=True))
        padded = []
        for a in arrays:
            width = [(0, n - m) for n, m in zip(shape, a.shape, strict=True)]
            padded.append(np.pad(a, width) if any(w for _, w in width) else a)
        out[key] = np.stack(padded)
    return out


def adapter_runs(
    config, conditions: Sequence[str], seeds: Sequence[int], root: str, data_dir: str = ""
) -> list[AdapterRun]:
    """One adapter per condition and seed, in that order: `config` with the condition and
    `train.seed` set, its workdir `root/<condition>-seed<seed>` (what the study and
    `pathjax.launch.train --conditions` use)."""
    runs = []
    for condition in conditions:
        for seed in seeds:
            run_config = config.copy_and_resolve_references()
            run_config.data.condition = condition
            run_config.train.seed = int(seed)
            if data_dir:
                run_config.data.data_dir = data_dir
            name = f"{condition}-seed{seed}"
            runs.append(AdapterRun(name, run_config, os.path.join(root, name)))
    return runs
