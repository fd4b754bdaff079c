"""The training loop: data, sharded state, the jitted step, validation, checkpoints, metrics.

Every process runs this same function (JAX's multi-controller model); each feeds its own slice
of the global batch, and process 0 writes metrics.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from pathjax import data as data_lib
from pathjax import lora, peft_format
from pathjax import sharding as sharding_lib
from pathjax.data import pipeline, schema, subsets
from pathjax.models import flops, from_config
from pathjax.train import checkpointing, choice_eval, identity, metrics, optimizer, peak
from pathjax.train import step as step_lib


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    workdir: str
    final_step: int
    adapters: nnx.State
    lora_config: lora.LoraConfig
    model: nnx.Module  # Base model with the trained adapters attached.
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


def _global_batch(mesh, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Per-process numpy slices -> global arrays split over the batch axes of the mesh."""
    out = {}
    for name, array in batch.items():
        spec = PartitionSpec(("data", "fsdp"), *([None] * (array.ndim - 1)))
        out[name] = jax.make_array_from_process_local_data(NamedSharding(mesh, spec), array)
    return out


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


def _choice_splits(t) -> tuple[str, ...]:
    """The splits whose options are scored at each validation (validation always)."""
    splits = tuple(t.get("eval_choice_splits", ()) or ())
    return ("validation",) + tuple(s for s in splits if s != "validation")


def validate(eval_fn, adapters, base, mesh, val_batches, choice_fn) -> dict[str, float]:
    totals = {"nll_sum": 0.0, "target_tokens": 0.0, "token_hits": 0.0}
    for batch in val_batches:
        out = eval_fn(adapters, base, _global_batch(mesh, batch))
        for k in totals:
            totals[k] += float(out[k])
    tokens = max(totals["target_tokens"], 1.0)
    result = {"loss": totals["nll_sum"] / tokens, "token_accuracy": totals["token_hits"] / tokens}
    result.update(choice_fn(adapters, "validation"))
    return result


def train(config, workdir: str, *, max_steps: int | None = None) -> TrainResult:
    """Trains (or resumes) the LoRA run configured by `config` in `workdir`.

    `max_steps` stops early (the run stays resumable): tests and staged runs use it.
    """
    _check_config(config)
    maybe_initialize_distributed(config)
    os.makedirs(workdir, exist_ok=True)
    t = config.train
    mesh = sharding_lib.make_mesh(tuple(config.mesh.shape))
    rules = sharding_lib.rules_from_config(dict(config.mesh.rules))

    model, tokenizer = from_config.model_from_config(config.model, mesh=mesh, rules=rules)
    if tokenizer is None:
        raise ValueError("Training needs a tokenizer: set config.model.tokenizer.")
    lora_config = identity.lora_config_from(config)
    paths = lora.add_lora(model, lora_config, rngs=nnx.Rngs(t.seed))
    lora.set_train_mode(model, True)
    train_graphdef, adapters, controls, base = step_lib.split_model(model)
    lora.set_train_mode(model, False)
    eval_graphdef, *_ = step_lib.split_model(model)

    adapter_shardings = sharding_lib.state_shardings(adapters, mesh, rules)
    adapters = jax.device_put(adapters, adapter_shardings)
    replicated = NamedSharding(mesh, PartitionSpec())
    controls = jax.device_put(controls, replicated)

    # Data: the first process builds (TFDS skips an existing build); the others wait for it.
    d = config.data
    sizes = dict(train_size=d.train_size, eval_size=d.eval_size, seed=d.seed)
    if jax.process_index() == 0:
        data_lib.build(d.condition, d.data_dir, **sizes)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("pathjax data built")
    train_records = data_lib.load(d.condition, "train", d.data_dir, **sizes)
    val_records = data_lib.load(d.condition, "validation", d.data_dir, **sizes)
    buckets = tuple(d.get("buckets", ())) or None
    iterator = pipeline.make_iterator(
        train_records,
        tokenizer,
        global_batch_size=t.global_batch_size,
        seed=t.seed,
        num_epochs=None,
        max_length=d.max_length,
        buckets=buckets,
        batch_by_format=bool(d.get("batch_by_format", False)),
    )
    val_batches = list(
        pipeline.make_batches(
            val_records,
            tokenizer,
            global_batch_size=t.global_batch_size,
            shuffle=False,
            num_epochs=1,
            max_length=d.max_length,
            buckets=buckets,
        )
    )[: max(1, t.eval_batches)]
    # Items balanced over where the target is listed (a head slice can favour one position).
    choice_items = {
        split: subsets.balanced(
            list(
                val_records
                if split == "validation"
                else data_lib.load(d.condition, split, d.data_dir, **sizes)
            ),
            t.eval_choice_items,
        )
        for split in _choice_splits(t)
    }
    bos = pipeline.bos_prefix(tokenizer)
    batch_ways = mesh.shape["data"] * mesh.shape["fsdp"]
    choice_batch = batch_ways * max(1, 8 // batch_ways)

    def choice_fn(current_adapters, split):
        records = choice_items.get(split)
        if not records or t.eval_choice_items <= 0:
            return {}
        scores = choice_eval.option_scores(
            eval_graphdef,
            (current_adapters, controls, base),
            records,
            tokenizer,
            prefix=bos,
            batch_size=choice_batch,
            place=lambda arrays: _global_batch(mesh, arrays),
        )
        targets = np.asarray([r["target_index"] for r in records])
        formats = [r.get("format", "") for r in records]
        return choice_eval.choice_metrics(scores, targets, formats)

    tx, _ = optimizer.make_optimizer(t)
    opt_state = jax.jit(tx.init)(adapters)
    state = step_lib.TrainState(
        step=jnp.zeros((), jnp.int32),
        adapters=adapters,
        opt_state=opt_state,
        rng=jax.random.key_data(jax.random.key(t.seed)),
    )
    # Scalars (step, rng, the optimizer's count) are replicated over the mesh; adapters and
    # their moments keep the shardings of their logical names.
    state = jax.tree.map(lambda x: x if _on_mesh(x, mesh) else jax.device_put(x, replicated), state)
    state_shardings = jax.tree.map(lambda x: x.sharding, state)
    expected_meta = {
        "model": identity.model_identity(config, model),
        "dataset": identity.dataset_identity(config),
    }

    checkpointer = checkpointing.Checkpointer(
        os.path.join(workdir, "checkpoints"), every=t.checkpoint_every, keep=t.keep_checkpoints
    )
    restored = checkpointer.restore_latest(jax.tree.map(_abstract, state), expected_meta)
    if restored is not None:
        state, meta = restored
        iterator.set_state(meta["data_iterator"])
        print(f"Resumed from step {int(state.step)} in {checkpointer.directory}")

    def meta_now() -> dict[str, Any]:
        return {
            **expected_meta,
            "data_iterator": iterator.get_state(),
            "lora": dataclasses.asdict(lora_config),
            "lora_paths": paths,
            "config": json.loads(config.to_json_best_effort()),
            "versions": checkpointing.library_versions(),
        }

    step_fn, eval_fn = _jitted_steps(
        config,
        train_graphdef,
        eval_graphdef,
        controls,
        state_shardings,
        jax.tree.map(lambda x: x.sharding, base),
        replicated,
    )
    shapes = [
        (lr.lora_a.shape[-2], lr.lora_b.shape[-1], lora_config.rank)
        for _, lr in lora.adapters(model)
    ]
    peak_flops = t.peak_flops_per_device or peak.measured_matmul_peak(config.model.dtype)
    writer = metrics.MetricsWriter(workdir, tensorboard=t.tensorboard)
    last_val: dict[str, float] = {}
    start_step = int(state.step)
    end_step = t.num_steps if max_steps is None else min(t.num_steps, max_steps)
    progress = tqdm.tqdm(
        total=t.num_steps, initial=start_step, desc="train", unit="step", disable=None
    )
    window_start, window_tokens, window_flops = time.perf_counter(), 0, 0.0
    try:
        for current in range(start_step, end_step):
            local = next(iterator)
            batch = _global_batch(mesh, local)
            state, step_metrics = step_fn(state, base, batch)
            host = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
            if not math.isfinite(host["loss"]):
                checkpointer.wait()
                good = checkpointer.steps()
                raise TrainingDivergedError(
                    f"The loss became {host['loss']} at step {current + 1}. The last good "
                    f"checkpoint is step {good[-1] if good else 'none'} in "
                    f"{checkpointer.directory}; lower train.learning_rate or check the data, "
                    "then resume."
                )
            done = current + 1
            seq_len = local["input_ids"].shape[1]
            tokens = t.global_batch_size * seq_len
            window_tokens += tokens
            head_tokens = t.global_batch_size * local["target_positions"].shape[1]
            window_flops += flops.lora_training_flops(
                model.config, shapes, tokens, seq_len, head_tokens
            )
            progress.update(1)
            progress.set_postfix(loss=f"{host['loss']:.3f}")
            if done % t.log_every == 0 or done == end_step:
                elapsed = time.perf_counter() - window_start
                host["tokens_per_s"] = window_tokens / elapsed
                host["mfu"] = window_flops / elapsed / (peak_flops * jax.device_count())
                writer.write(done, "train", host)
                window_start, window_tokens, window_flops = time.perf_counter(), 0, 0.0
            if done % t.eval_every == 0 or done == t.num_steps:
                last_val = validate(eval_fn, state.adapters, base, mesh, val_batches, choice_fn)
                writer.write(done, "validation", last_val)
                progress.write(
                    f"step {done}: "
                    + ", ".join(f"validation {k} {v:.4f}" for k, v in last_val.items())
                )
                for split in _choice_splits(t):
                    if split != "validation" and (held_out := choice_fn(state.adapters, split)):
                        writer.write(done, split, held_out)
                        progress.write(
                            f"step {done}: {split} choice_accuracy_per_char "
                            f"{held_out['choice_accuracy_per_char']:.4f}"
                        )
                window_start = time.perf_counter()  # Validation time is not training time.
            checkpointer.save(done, state, meta_now, force=done == end_step)
    finally:
        progress.close()
        checkpointer.close()
        writer.close()

    # Every process takes part in the gather; adapters may be split across hosts.
    adapters_host = multihost_utils.process_allgather(state.adapters, tiled=True)
    nnx.update(model, adapters_host)
    if checkpointing.is_primary() and int(state.step) == t.num_steps:
        peft_format.export_peft(
            model,
            lora_config,
            os.path.join(workdir, "adapter"),
            base_model=expected_meta["model"]["source"],
        )
    return TrainResult(
        workdir=workdir,
        final_step=int(state.step),
        adapters=adapters_host,
        lora_config=lora_config,
        model=model,
        tokenizer=tokenizer,
        validation=last_val,
    )


# Jitted steps by what they depend on. The conditions of a study train in one process with the
# same shapes; reusing the jitted functions skips the trace and the compilation (about a minute
# for a 30-layer model on a 2-core CPU) for every run after the first.
_STEP_CACHE: dict[tuple, tuple[Any, Any]] = {}


def _jitted_steps(
    config, train_graphdef, eval_graphdef, controls, state_shardings, base_shardings, replicated
):
    key = (
        train_graphdef,
        eval_graphdef,
        config.train.to_json_best_effort(sort_keys=True),
        config.lora.to_json_best_effort(sort_keys=True),
        config.model.to_json_best_effort(sort_keys=True),
        repr(jax.tree.leaves(controls)),
        repr(state_shardings),
        repr(base_shardings),
    )
    if key in _STEP_CACHE:
        return _STEP_CACHE[key]
    t = config.train
    tx, schedule = optimizer.make_optimizer(t)
    step_fn = jax.jit(
        lambda s, b, batch: step_lib.train_step(
            s,
            b,
            batch,
            graphdef=train_graphdef,
            controls=controls,
            tx=tx,
            schedule=schedule,
            accumulation=t.grad_accumulation,
        ),
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
