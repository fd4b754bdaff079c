"""Loading a trained run back: the base model with the adapters of a checkpoint attached.

Used by export (PEFT folders, merged HF folders) and by evaluation of checkpoints along
training (dose-response). An adapter trained in a stacked run has its checkpoints in that
run's folder; its workdir holds a pointer (`loop.STACKED_POINTER`) that says where and which
slice of the adapter axis is its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
from etils import epath
from flax import nnx

from pathjax import lora, storage
from pathjax.models import from_config
from pathjax.train import checkpointing, identity, optimizer, stacking
from pathjax.train import step as step_lib

STACKED_POINTER = "stacked_run.json"  # Written by the loop into each stacked adapter's workdir.


@dataclasses.dataclass
class TrainedModel:
    model: nnx.Module
    tokenizer: Any
    lora_config: lora.LoraConfig
    step: int
    meta: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Location:
    directory: str  # The checkpoints folder.
    index: int  # This adapter's slice of the adapter axis.
    count: int | None  # Adapters in the run (None: read it from a checkpoint).


def _locate(workdir: str) -> _Location:
    pointer = epath.Path(workdir) / STACKED_POINTER
    if not pointer.exists():
        return _Location(os.path.join(workdir, "checkpoints"), 0, None)
    info = json.loads(pointer.read_text())
    run_dir = storage.join_normalized(workdir, info["run_dir"])
    return _Location(os.path.join(run_dir, "checkpoints"), info["index"], len(info["adapters"]))


def checkpoint_directory(workdir: str) -> str:
    """Where `workdir`'s checkpoints are (its own folder, or its stacked run's)."""
    return _locate(workdir).directory


def checkpoint_steps(workdir: str) -> list[int]:
    directory = _locate(workdir).directory
    if not epath.Path(directory).is_dir():
        return []
    checkpointer = checkpointing.Checkpointer(directory, read_only=True)
    try:
        return checkpointer.steps()
    finally:
        checkpointer.close()


def load_trained(config, workdir: str, step: int | None = None) -> TrainedModel:
    """The model of `config` with the adapters of `workdir`'s checkpoint `step` (None: latest)."""
    where = _locate(workdir)
    steps = checkpoint_steps(workdir)
    if not steps:
        raise FileNotFoundError(
            f"No checkpoints in {where.directory}: train first (pathjax/launch/train.py)."
        )
    if step is not None and step not in steps:
        raise FileNotFoundError(f"No checkpoint for step {step} in {where.directory}; has {steps}.")
    model, tokenizer = from_config.model_from_config(config.model)
    lora_config = identity.lora_config_from(config)
    lora.add_lora(model, lora_config, rngs=nnx.Rngs(0))
    _, adapters, _, _ = step_lib.split_model(model)
    checkpointer = checkpointing.Checkpointer(where.directory, read_only=True)
    try:
        chosen = step if step is not None else steps[-1]
        meta = checkpointer.read_meta(chosen)
        count = where.count or len(meta.get("adapters") or [None])
        expected = {"layout": stacking.LAYOUT, "model": identity.model_identity(config, model)}
        checkpointing.check_compatible(meta, expected, where.directory, chosen)
        datasets = meta.get("dataset") or []
        own = identity.dataset_identity(config)
        if where.index >= len(datasets) or datasets[where.index] != own:
            raise checkpointing.CheckpointMismatchError(
                f"Adapter {where.index} of the checkpoint at step {chosen} in {where.directory} "
                f"was trained on {datasets[where.index] if where.index < len(datasets) else None}"
                f", but this config names {own}. Pass the config the run was trained with."
            )
        tx, _ = optimizer.make_optimizer(config.train)
        abstract = jax.eval_shape(
            lambda a: step_lib.TrainState(
                step=jnp.zeros((count,), jnp.int32),
                adapters=a,
                opt_state=jax.vmap(tx.init)(a),
                rng=jnp.zeros((count, 2), jnp.uint32),
            ),
            stacking.stack([adapters] * count),
        )
        state = checkpointer.restore_state(chosen, abstract)
    finally:
        checkpointer.close()
    nnx.update(model, stacking.unstack(state.adapters, where.index))
    return TrainedModel(model, tokenizer, lora_config, int(state.step[where.index]), meta)
