"""Loading a trained run back: the base model with the adapters of a checkpoint attached.

Used by export (PEFT folders, merged HF folders) and by evaluation of checkpoints along
training (dose-response).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax import lora
from pathjax.models import from_config
from pathjax.train import checkpointing, identity, optimizer
from pathjax.train import step as step_lib


@dataclasses.dataclass
class TrainedModel:
    model: nnx.Module
    tokenizer: Any
    lora_config: lora.LoraConfig
    step: int
    meta: dict[str, Any]


def checkpoint_steps(workdir: str) -> list[int]:
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return checkpointing.Checkpointer(directory, every=1, keep=1000, use_async=False).steps()


def load_trained(config, workdir: str, step: int | None = None) -> TrainedModel:
    """The model of `config` with the adapters of `workdir`'s checkpoint `step` (None: latest)."""
    model, tokenizer = from_config.model_from_config(config.model)
    lora_config = identity.lora_config_from(config)
    lora.add_lora(model, lora_config, rngs=nnx.Rngs(0))
    _, adapters, _, _ = step_lib.split_model(model)
    tx, _ = optimizer.make_optimizer(config.train)
    abstract = jax.eval_shape(
        lambda a: step_lib.TrainState(
            step=jnp.zeros((), jnp.int32),
            adapters=a,
            opt_state=tx.init(a),
            rng=jax.random.key_data(jax.random.key(0)),
        ),
        adapters,
    )
    directory = os.path.join(workdir, "checkpoints")
    steps = checkpoint_steps(workdir)
    if not steps:
        raise FileNotFoundError(f"No checkpoints in {directory}: train first (launch/train.py).")
    checkpointer = checkpointing.Checkpointer(directory, every=1, keep=1000, use_async=False)
    expected = {
        "model": identity.model_identity(config, model),
        "dataset": identity.dataset_identity(config),
    }
    try:
        if step is None:
            state, meta = checkpointer.restore_latest(abstract, expected)
        else:
            if step not in steps:
                raise FileNotFoundError(
                    f"No checkpoint for step {step} in {directory}; has {steps}."
                )
            state, meta = checkpointer.restore_step(step, abstract, expected)
    finally:
        checkpointer.close()
    nnx.update(model, state.adapters)
    return TrainedModel(model, tokenizer, lora_config, int(state.step), meta)
