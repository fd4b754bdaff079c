"""The training loop: K LoRA adapters on one frozen base, trained as one stacked run.

A run of one adapter (`train`) is a stacked run with K = 1; a study trains all of its
conditions and seeds together (`train_stacked`, see `stacking.py` for the layout). The stages
have names of their own: set-up (mesh), the model and its adapters, each adapter's data, the
optimizer state, the checkpoint and its identity, the steps (with validation, metrics and
checkpoints) and the export of each adapter.

Every process runs this same function (JAX's multi-controller model); each feeds its own slice
of every adapter's global batch, and process 0 writes metrics and exports.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from etils import epath
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from pathjax import data as data_lib
from pathjax import lora, peft_format, provenance, storage
from pathjax import sharding as sharding_lib
from pathjax.data import pipeline, schema
from pathjax.models import from_config
from pathjax.train import checkpointing, identity, metrics, optimizer, stacking
from pathjax.train import step as step_lib
from pathjax.train.restore import STACKED_POINTER
from pathjax.train.stacking import AdapterRun
from pathjax.train.throughput import Throughput
from pathjax.train.validation import Validator, global_batch


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    workdir: str
    final_step: int
    adapters: nnx.State
    lora_config: lora.LoraConfig
    model: nnx.Module  # Base model with this adapter attached (shared by a stacked run).
    tokenizer: Any
    validation: dict[str, float]


def maybe_initialize_distributed(config) -> None:
    """Joins the processes of a multi-host run (TPU pods and SLURM set what jax needs)."""
    dist = config.get("distributed")
    if dist is None or not dist.enabled:
        return
    if jax.distributed.is_initialized():
        return
    # CPU devices need gloo for cross-process collectives (tests, CPU clusters); accelerator
    # collectives do not read this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if dist.coordinator_address:
        kwargs = dict(
            coordinator_address=dist.coordinator_address,
            num_processes=dist.num_processes,
            process_id=dist.process_id,
        )
    jax.distributed.initialize(**kwargs)


def _check_config(config) -> None:
    t = config.train
    checks = {
        "train.global_batch_size": t.global_batch_size >= 1,
        "train.num_steps": t.num_steps >= 1,
        "train.grad_accumulation": t.grad_accumulation >= 1
        and t.global_batch_size % t.grad_accumulation == 0,
        "train.learning_rate": t.learning_rate > 0,
        "train.checkpoint_every": t.checkpoint_every >= 1,
        "train.eval_every": t.eval_every >= 1,
        "train.log_every": t.log_every >= 1,
    }
    for field, ok in checks.items():
        if not ok:
            raise ValueError(f"config.{field} has an invalid value ({_get(config, field)!r}).")
    schema.check_condition(config.data.condition)


def _get(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def train(config, workdir: str, *, max_steps: int | None = None) -> TrainResult:
    """Trains (or resumes) the LoRA run configured by `config` in `workdir`.

    `max_steps` stops early (the run stays resumable): tests and staged runs use it.
    """
    run = AdapterRun(config.data.condition, config, workdir)
    return train_stacked([run], workdir, max_steps=max_steps)[0]


# ---------------------------------------------------------------------------------------------
# Stages.


@dataclasses.dataclass
class _Model:
    """The base model with one adapter slot, split for the jitted steps."""

    model: nnx.Module
    tokenizer: Any
    lora_config: lora.LoraConfig
    paths: list[str]
    train_graphdef: Any
    eval_graphdef: Any
    controls: nnx.State
    base: nnx.State
    adapter_template: nnx.State  # One adapter's parameters (their shapes and shardings).


def _build_model(config, mesh, rules) -> _Model:
    model, tokenizer = from_config.model_from_config(config.model, mesh=mesh, rules=rules)
    if tokenizer is None:
        raise ValueError("Training needs a tokenizer: set config.model.tokenizer.")
    lora_config = identity.lora_config_from(config)
    paths = lora.add_lora(model, lora_config, rngs=nnx.Rngs(config.train.seed))
    lora.set_train_mode(model, True)
    train_graphdef, adapters, controls, base = step_lib.split_model(model)
    lora.set_train_mode(model, False)
    eval_graphdef, *_ = step_lib.split_model(model)
    controls = jax.device_put(controls, NamedSharding(mesh, PartitionSpec()))
    return _Model(
        model,
        tokenizer,
        lora_config,
        paths,
        train_graphdef,
        eval_graphdef,
        controls,
        base,
        adapters,
    )


def _initial_adapters(parts: _Model, runs: Sequence[AdapterRun], mesh, rules) -> nnx.State:
    """Every adapter's initial values (its own seed), stacked and sharded."""
    single = []
    for run in runs:
        stacking.reinitialize(parts.model, int(run.config.train.seed))
        # A copy: the state holds the model's variables, which the next seed overwrites.
        single.append(jax.tree.map(jnp.copy, nnx.state(parts.model, lora.ADAPTERS)))
    shardings = jax.tree.map(
        stacking.stacked_sharding,
        sharding_lib.state_shardings(parts.adapter_template, mesh, rules),
    )
    return jax.device_put(stacking.stack(single), shardings)


@dataclasses.dataclass
class _AdapterData:
    iterator: Any  # A checkpointable grain iterator of this process's batch slices.
    validator: Validator


def _build_data(run: AdapterRun, parts: _Model, mesh, eval_fn) -> _AdapterData:
    """One adapter's training stream (its condition, its seed's order) and validation."""
    config = run.config
    t, d = config.train, config.data
    sizes = data_lib.options_of(d)
    # The first process builds (TFDS skips an existing build); the others wait for it.
    if jax.process_index() == 0:
        data_lib.build(d.condition, d.data_dir, **sizes)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"pathjax data built: {run.name}")
    iterator = pipeline.make_iterator(
        data_lib.load(d.condition, "train", d.data_dir, **sizes),
        parts.tokenizer,
        global_batch_size=t.global_batch_size,
        seed=t.seed,
        num_epochs=None,
        max_length=d.max_length,
        buckets=tuple(d.get("buckets", ())) or None,
        batch_by_format=bool(d.get("batch_by_format", False)),
    )
    validator = Validator(
        config,
        parts.tokenizer,
        mesh,
        eval_fn,
        parts.eval_graphdef,
        parts.controls,
        data_lib.load(d.condition, "validation", d.data_dir, **sizes),
    )
    return _AdapterData(iterator, validator)


def _initial_state(config, adapters, runs: Sequence[AdapterRun], mesh) -> step_lib.TrainState:
    tx, _ = optimizer.make_optimizer(config.train)
    keys = [jax.random.key_data(jax.random.key(int(r.config.train.seed))) for r in runs]
    state = step_lib.TrainState(
        step=jnp.zeros((len(runs),), jnp.int32),
        adapters=adapters,
        opt_state=jax.jit(jax.vmap(tx.init))(adapters),
        rng=jnp.stack(keys),
    )
    # Per-adapter scalars (step, rng, the optimizer's count) are replicated over the mesh;
    # adapters and their moments keep the shardings of their logical names.
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: x if _on_mesh(x, mesh) else jax.device_put(x, replicated), state)


def _run_identity(runs: Sequence[AdapterRun], parts: _Model) -> dict[str, Any]:
    """What a resume must agree with: layout, base model, each adapter and its dataset."""
    return {
        "layout": stacking.LAYOUT,
        "model": identity.model_identity(runs[0].config, parts.model),
        "dataset": [identity.dataset_identity(r.config) for r in runs],
        "adapters": [r.describe() for r in runs],
    }


def _write_pointers(runs: Sequence[AdapterRun], run_dir: str) -> None:
    """Each adapter's workdir says where its checkpoints are (evaluation and export read it)."""
    for index, run in enumerate(runs):
        epath.Path(run.workdir).mkdir(parents=True, exist_ok=True)
        if storage.absolute(run.workdir) == storage.absolute(run_dir):
            continue
        pointer = {
            "run_dir": storage.relative(run_dir, run.workdir),
            "index": index,
            "adapters": [r.describe() for r in runs],
        }
        (epath.Path(run.workdir) / STACKED_POINTER).write_text(json.dumps(pointer, indent=1))


def train_stacked(
    runs: Sequence[AdapterRun], run_dir: str, *, max_steps: int | None = None
) -> list[TrainResult]:
    """Trains (or resumes) the adapters of `runs` as one stacked run; its checkpoints go to
    `run_dir/checkpoints`, each adapter's metrics, TensorBoard and PEFT export to its workdir.
    """
    stacking.check_stackable(runs)
    for run in runs:
        _check_config(run.config)
    config = runs[0].config  # What the adapters share (check_stackable).
    t = config.train
    maybe_initialize_distributed(config)
    # Before the model is built: a folder nobody can write fails now, not at the first save.
    for folder in dict.fromkeys([run_dir, *(r.workdir for r in runs)]):
        storage.check_writable(folder)
    if checkpointing.is_primary():
        _write_pointers(runs, run_dir)
        for run in runs:  # Each adapter's folder says what made it.
            provenance.write(run.workdir, run.config)

    mesh = sharding_lib.make_mesh(tuple(config.mesh.shape))
    rules = sharding_lib.rules_from_config(dict(config.mesh.rules))
    replicated = NamedSharding(mesh, PartitionSpec())
    parts = _build_model(config, mesh, rules)
    state = _initial_state(config, _initial_adapters(parts, runs, mesh, rules), runs, mesh)
    step_fn, eval_fn = _jitted_steps(
        config,
        parts.train_graphdef,
        parts.eval_graphdef,
        parts.controls,
        jax.tree.map(lambda x: x.sharding, state),
        jax.tree.map(lambda x: x.sharding, parts.base),
        replicated,
    )
    data = [_build_data(run, parts, mesh, eval_fn) for run in runs]

    run_identity = _run_identity(runs, parts)
    checkpointer = checkpointing.Checkpointer(
        os.path.join(run_dir, "checkpoints"), every=t.checkpoint_every, keep=t.keep_checkpoints
    )
    restored = checkpointer.restore_latest(jax.tree.map(_abstract, state), run_identity)
    if restored is not None:
        state, meta = restored
        for adapter_data, iterator_state in zip(data, meta["data_iterators"], strict=True):
            adapter_data.iterator.set_state(iterator_state)
        print(f"Resumed from step {int(state.step[0])} in {checkpointer.directory}")

    def meta_now() -> dict[str, Any]:
        return {
            **run_identity,
            "data_iterators": [a.iterator.get_state() for a in data],
            "lora": dataclasses.asdict(parts.lora_config),
            "lora_paths": parts.paths,
            "configs": [json.loads(r.config.to_json_best_effort()) for r in runs],
            "versions": provenance.library_versions(),
        }

    start_step = int(state.step[0])
    end_step = t.num_steps if max_steps is None else min(t.num_steps, max_steps)
    writers = [
        metrics.MetricsWriter(r.workdir, tensorboard=t.tensorboard, resume_step=start_step)
        for r in runs
    ]
    shapes = [
        (m.lora_a.shape[-2], m.lora_b.shape[-1], parts.lora_config.rank)
        for _, m in lora.adapters(parts.model)
    ]
    throughput = Throughput(config, parts.model.config, shapes)
    if start_step < end_step:
        tqdm.tqdm.write(throughput.describe())
    last_val: list[dict[str, float]] = [{} for _ in runs]
    label = runs[0].name if len(runs) == 1 else f"{len(runs)} adapters"
    progress = tqdm.tqdm(
        total=t.num_steps, initial=start_step, desc=f"train {label}", unit="step", disable=None
    )
    try:
        for current in range(start_step, end_step):
            local = stacking.stack_batches([next(a.iterator) for a in data])
            batch = global_batch(mesh, local, leading=1)
            state, step_metrics = step_fn(state, parts.base, batch)
            host = {k: np.asarray(v) for k, v in jax.device_get(step_metrics).items()}
            _check_finite(host["loss"], runs, current, checkpointer)
            done = current + 1
            throughput.add(host["real_tokens"], host["target_tokens"], t.global_batch_size)
            progress.update(1)
            progress.set_postfix(loss=" ".join(f"{x:.3f}" for x in host["loss"]))
            if done % t.log_every == 0 or done == end_step:
                shared = throughput.window()
                for k, writer in enumerate(writers):
                    row = {name: float(v[k]) for name, v in host.items()}
                    writer.write(done, "train", {**row, **shared})
                throughput.reset()
            if done % t.eval_every == 0 or done == t.num_steps:
                last_val = _validate(state, parts, data, runs, writers, done, progress)
                throughput.reset()  # Validation time is not training time.
            checkpointer.save(done, state, meta_now, force=done == end_step)
    finally:
        progress.close()
        checkpointer.close()
        for writer in writers:
            writer.close()
    return _export(state, parts, runs, last_val)


def _check_finite(loss_k, runs, current: int, checkpointer) -> None:
    bad = [r.name for r, loss in zip(runs, loss_k, strict=True) if not math.isfinite(loss)]
    if bad:
        checkpointer.wait()
        good = checkpointer.steps()
        raise TrainingDivergedError(
            f"The loss of {', '.join(bad)} became {loss_k} at step {current + 1}. The last good "
            f"checkpoint is step {good[-1] if good else 'none'} in {checkpointer.directory}; "
            "lower train.learning_rate or check the data, then resume."
        )


def _validate(state, parts, data, runs, writers, done, progress) -> list[dict[str, float]]:
    """Each adapter on its own validation data and held-out splits."""
    results = []
    for k, (run, adapter_data, writer) in enumerate(zip(runs, data, writers, strict=True)):
        adapters = stacking.unstack(state.adapters, k)
        values = adapter_data.validator.validate(adapters, parts.base)
        writer.write(done, "validation", values)
        prefix = f"step {done}: " + (f"{run.name} " if len(runs) > 1 else "")
        progress.write(prefix + ", ".join(f"validation {n} {v:.4f}" for n, v in values.items()))
        for split, held_out in adapter_data.validator.held_out(adapters, parts.base).items():
            writer.write(done, split, held_out)
            progress.write(
                f"{prefix}{split} choice_accuracy_per_char "
                f"{held_out['choice_accuracy_per_char']:.4f}"
            )
        results.append(values)
    return results


def _export(state, parts: _Model, runs, last_val) -> list[TrainResult]:
    """Every adapter's PEFT folder (when its training is complete) and result."""
    from pathjax.train import export  # The model card's training summary.

    # Every process takes part in the gather; adapters may be split across hosts.
    adapters_host = multihost_utils.process_allgather(state.adapters, tiled=True)
    final_step = int(state.step[0])
    results = []
    for k, run in enumerate(runs):
        adapters_k = stacking.unstack(adapters_host, k)
        nnx.update(parts.model, adapters_k)
        config = run.config
        if checkpointing.is_primary() and final_step == config.train.num_steps:
            peft_format.export_peft(
                parts.model,
                parts.lora_config,
                os.path.join(run.workdir, "adapter"),
                base_model=identity.model_identity(config, parts.model)["source"],
                training=export.training_summary(config, final_step),
            )
        results.append(
            TrainResult(
                workdir=run.workdir,
                final_step=final_step,
                adapters=adapters_k,
                lora_config=parts.lora_config,
                model=parts.model,
                tokenizer=parts.tokenizer,
                validation=last_val[k],
            )
        )
    return results


# ---------------------------------------------------------------------------------------------
# Compiled steps.

# Jitted steps by what they depend on. Runs of one process with the same shapes (a study's
# architectures, tests) reuse them and skip the trace and the compilation (about a minute for
# a 30-layer model on a 2-core CPU). The key holds only what the step computes with: not the
# seeds (they are state), not logging, evaluation or checkpoint intervals.
_STEP_CACHE: dict[tuple, tuple[Any, Any]] = {}
_STEP_FIELDS = (
    "learning_rate",
    "final_lr_fraction",
    "warmup_steps",
    "num_steps",
    "weight_decay",
    "b1",
    "b2",
    "max_grad_norm",
    "grad_accumulation",
)


def _jitted_steps(
    config, train_graphdef, eval_graphdef, controls, state_shardings, base_shardings, replicated
):
    t = config.train
    key = (
        train_graphdef,
        eval_graphdef,
        tuple((name, t[name]) for name in _STEP_FIELDS),
        config.lora.to_json_best_effort(sort_keys=True),
        config.model.to_json_best_effort(sort_keys=True),
        repr(jax.tree.leaves(controls)),
        repr(state_shardings),
        repr(base_shardings),
    )
    if key in _STEP_CACHE:
        return _STEP_CACHE[key]
    tx, schedule = optimizer.make_optimizer(t)
    one_adapter = functools.partial(
        step_lib.train_step,
        graphdef=train_graphdef,
        controls=controls,
        tx=tx,
        schedule=schedule,
        accumulation=t.grad_accumulation,
    )
    step_fn = jax.jit(
        jax.vmap(one_adapter, in_axes=(0, None, 0)),
        in_shardings=(state_shardings, base_shardings, None),
        out_shardings=(state_shardings, replicated),
        donate_argnums=(0,),
    )
    eval_fn = jax.jit(
        lambda a, b, batch: step_lib.eval_step(
            a, b, batch, graphdef=eval_graphdef, controls=controls
        ),
        out_shardings=replicated,
    )
    _STEP_CACHE.clear()  # One model's steps at a time: compiled executables are large.
    _STEP_CACHE[key] = (step_fn, eval_fn)
    return step_fn, eval_fn


def _on_mesh(x, mesh) -> bool:
    return isinstance(x.sharding, NamedSharding) and x.sharding.mesh == mesh


def _abstract(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
