"""LoRA training-step throughput: pathjax (jitted) and transformers + PEFT (torch), one run.

Both sides train the same architecture (a preset, random weights: speed does not depend on the
values) with the same LoRA configuration, batch, sequence length and loss: the mean
cross-entropy of the next-token predictions under a loss mask that covers the second half of
each row (a prompt/target split, as in fine-tuning). Each side runs AdamW over the adapters only,
with global-norm clipping. Base weights and compute are in the measured precision; adapters and
optimizer state stay float32 on both sides. With `micro_batches` > 1 both sides split the batch
into that many micro-batches and sum their token-weighted gradients before the one update
(pathjax: `train.grad_accumulation`; torch: one backward per micro-batch): the same step, in
smaller pieces whose activations stay in cache. Times are medians of repeats after warm-up
(compilation excluded for JAX, one untimed step at least for torch).

MFU is reported against the matmul peak that `peak.measured_matmul_peak` measures with JAX in
the same process, for both sides: one ceiling per precision, so the sides compare on one scale.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from pathjax import lora
from pathjax.bench import forward, profile
from pathjax.models import flops as flops_lib
from pathjax.models import presets, registry
from pathjax.train import optimizer, peak
from pathjax.train import step as step_lib

PATHJAX = "pathjax"
REFERENCE = "transformers+peft"
# The learning rate only has to be nonzero: a zero update could let either side skip work.
LEARNING_RATE = 1e-4


@dataclasses.dataclass
class TrainMeasurement(forward.Measurement):
    mfu: float  # Achieved FLOP/s over the measured matmul peak of this precision.
    micro_batches: int = 1  # The step's batch in this many micro-batches (same update).


def setting_name(dtype: str, micro_batches: int) -> str:
    """`bfloat16`, or `bfloat16, 4 micro-batches`: how the report names one setting."""
    return dtype if micro_batches == 1 else f"{dtype}, {micro_batches} micro-batches"


def preset_with_attention(preset: str, attention: str = "auto"):
    """A preset's config with attention backend `attention` (`model.attention`); "auto" keeps
    the preset's own choice (by platform), so presets without the field (GPT-2) still work."""
    config = presets.preset_config(preset)
    return config if attention == "auto" else registry.with_attention(config, attention)


def _train_config(num_steps: int) -> ml_collections.ConfigDict:
    """The fields `optimizer.make_optimizer` reads; constant after a one-step warmup."""
    return ml_collections.ConfigDict(
        dict(
            num_steps=num_steps,
            warmup_steps=1,
            learning_rate=LEARNING_RATE,
            final_lr_fraction=1.0,
            weight_decay=0.0,
            b1=0.9,
            b2=0.999,
            max_grad_norm=1.0,
        )
    )


def make_batch(
    vocab_size: int, batch: int, seq_len: int, seed: int = 0, head_at_targets: bool = True
) -> dict[str, np.ndarray]:
    """Random tokens; the loss counts the predictions of the second half of each row.

    `head_at_targets` adds the target positions, as pathjax's data pipeline does, so that the
    step runs the output head there only; without them it runs at every position, as
    transformers does.
    """
    rng = np.random.RandomState(seed)
    input_ids_bl = rng.randint(0, vocab_size, (batch, seq_len)).astype(np.int32)
    loss_mask_bl = np.zeros((batch, seq_len), np.int32)
    loss_mask_bl[:, seq_len // 2 :] = 1
    out = {
        "input_ids": input_ids_bl,
        "attention_mask": np.ones((batch, seq_len), np.int32),
        "loss_mask": loss_mask_bl,
    }
    if head_at_targets:
        positions = np.arange(seq_len // 2 - 1, seq_len - 1, dtype=np.int32)
        out["target_positions"] = np.tile(positions, (batch, 1))
        out["target_weights"] = np.ones((batch, len(positions)), np.float32)
    return out


def adapter_shapes(config, lora_config: lora.LoraConfig) -> list[tuple[int, int, int]]:
    """`(in, out, rank)` of every adapter `lora_config` adds to this architecture."""
    model = registry.abstract_model(registry.family_of(config), config)
    modules = dict(lora.linear_modules(model))
    return [
        (modules[p].in_features, modules[p].out_features, lora_config.rank)
        for p in lora.target_paths(model, lora_config.targets)
    ]


@dataclasses.dataclass
class PathjaxModel:
    """A preset's model with LoRA attached, split for the jitted step."""

    graphdef: object
    controls: nnx.State
    base: nnx.State  # The frozen weights, an argument of the step.
    adapters: nnx.State  # One adapter's initial parameters.


def build_pathjax(config, dtype: str, lora_config: lora.LoraConfig) -> PathjaxModel:
    model = registry.init_model(config, dtype=jnp.dtype(dtype))
    lora.add_lora(model, lora_config, rngs=nnx.Rngs(0))
    lora.set_train_mode(model, True)
    graphdef, adapters, controls, base = step_lib.split_model(model)
    # The split states hold the weights; the module would only pin a second view.
    return PathjaxModel(graphdef, controls, base, adapters)


def pathjax_optimizer(num_steps: int):
    """`(tx, schedule)` of a run of `num_steps` steps, as `optimizer.make_optimizer` makes them."""
    return optimizer.make_optimizer(_train_config(num_steps))


def initial_state(adapters: nnx.State, tx, seed: int = 0) -> step_lib.TrainState:
    """A run's first state; its adapters a copy, since the step donates (deletes) its input."""
    adapters = jax.tree.map(jnp.copy, adapters)
    return step_lib.TrainState(
        step=jnp.zeros((), jnp.int32),
        adapters=adapters,
        opt_state=jax.jit(tx.init)(adapters),
        rng=jax.random.key_data(jax.random.key(seed)),
    )


def one_adapter_step(parts: PathjaxModel, tx, schedule, micro_batches: int = 1):
    """The training loop's single-adapter step, `(state, base, batch) -> (state, metrics)`,
    not yet jitted (the stacked benchmark maps it over an adapter axis)."""
    return functools.partial(
        step_lib.train_step,
        graphdef=parts.graphdef,
        controls=parts.controls,
        tx=tx,
        schedule=schedule,
        accumulation=micro_batches,
    )


def measure_pathjax(
    config,
    batch: dict[str, np.ndarray],
    dtype: str,
    lora_config: lora.LoraConfig,
    repeats: int,
    warmup: int,
    profile_dir: str = "",
    micro_batches: int = 1,
) -> tuple[list[float], list[profile.OpTime] | None]:
    """Step times; with `profile_dir`, also one more step profiled per XLA operation."""
    parts = build_pathjax(config, dtype, lora_config)
    # The compile step and the warm-up steps count towards the schedule too.
    tx, schedule = pathjax_optimizer(1 + warmup + repeats)
    step_fn = jax.jit(
        one_adapter_step(parts, tx, schedule, micro_batches),
        donate_argnums=(0,),  # As in training: the adapters and moments update in place.
    )
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    holder = {"state": initial_state(parts.adapters, tx)}

    def one_step():
        # Donation invalidates the old state, so each step feeds on the previous one's output.
        holder["state"], metrics = step_fn(holder["state"], parts.base, batch)
        jax.block_until_ready((holder["state"], metrics))

    one_step()  # Compilation, not timed.
    times = forward._time(one_step, repeats, warmup, f"{PATHJAX} {dtype}")
    ops = profile.profile_call(one_step, os.path.join(profile_dir, dtype)) if profile_dir else None
    return times, ops


def reference_base(hf_config: dict, dtype: str):
    """The transformers model of a preset (random weights), before PEFT wraps it."""
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(**hf_config)
    return transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))


def reference_step(
    base_model,
    batch: dict[str, np.ndarray],
    lora_config: lora.LoraConfig,
    micro_batches: int = 1,
) -> tuple[Callable[[], float], dict[str, str]]:
    """Wraps `base_model` in PEFT (in place) with an AdamW over the adapters; returns one
    training step on `batch` and the dtypes torch actually runs in."""
    import peft
    import torch

    targets = lora_config.targets
    peft_config = peft.LoraConfig(
        r=lora_config.rank,
        lora_alpha=lora_config.alpha,
        lora_dropout=lora_config.dropout,
        use_rslora=lora_config.use_rslora,
        # None: PEFT's per-family defaults (q_proj, v_proj for llama), which "default" mirrors.
        target_modules=None if targets == "default" else targets,
        task_type="CAUSAL_LM",
    )
    # autocast_adapter_dtype (PEFT's default) keeps the adapters float32 on a bfloat16 base and
    # casts their input up: the precision split pathjax uses for its trainable state.
    model = peft.get_peft_model(base_model, peft_config, autocast_adapter_dtype=True)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        trainable, lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )
    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    attention_mask = torch.tensor(batch["attention_mask"], dtype=torch.long)
    mask = torch.tensor(batch["loss_mask"][:, 1:], dtype=torch.float32)

    tokens = mask.sum().clamp(min=1.0)
    micro_rows = ids.shape[0] // micro_batches

    def one_step() -> float:
        total = 0.0
        for start in range(0, ids.shape[0], micro_rows):
            rows = slice(start, start + micro_rows)
            logits_blv = model(input_ids=ids[rows], attention_mask=attention_mask[rows]).logits
            # As pathjax's target_nll: float32 log-probabilities of the masked next tokens.
            nll_bl = torch.nn.functional.cross_entropy(
                logits_blv[:, :-1].float().transpose(1, 2), ids[rows, 1:], reduction="none"
            )
            # Divided by the whole batch's token count: the micro-batches' gradients add up to
            # the full batch's, as pathjax's accumulation does.
            loss = (nll_bl * mask[rows]).sum() / tokens
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return total

    precision = {
        "base": str(next(p for p in model.parameters() if not p.requires_grad).dtype),
        "adapters": str(trainable[0].dtype),
    }
    return one_step, precision


def measure_reference(
    hf_config: dict,
    batch: dict[str, np.ndarray],
    dtype: str,
    lora_config: lora.LoraConfig,
    repeats: int,
    warmup: int,
    micro_batches: int = 1,
) -> tuple[list[float], dict[str, str]]:
    """Times a transformers + PEFT step; also returns the dtypes torch actually ran in."""
    one_step, precision = reference_step(
        reference_base(hf_config, dtype), batch, lora_config, micro_batches
    )
    times = forward._time(one_step, repeats, max(warmup, 1), f"{REFERENCE} {dtype}")
    return times, precision


def step_flops(config, lora_config: lora.LoraConfig, batch: int, seq_len: int) -> float:
    """FLOPs of one adapter's step: the work the loss needs, so the output head at the target
    positions only (the second half of each row), whichever side computes more."""
    return flops_lib.lora_training_flops(
        config,
        adapter_shapes(config, lora_config),
        batch * seq_len,
        seq_len,
        head_tokens=batch * (seq_len - seq_len // 2),
    )


def _with_mfu(m: forward.Measurement, peak_flops: float, micro_batches: int) -> TrainMeasurement:
    mfu = m.gflops_per_s * 1e9 / peak_flops
    return TrainMeasurement(**dataclasses.asdict(m), mfu=mfu, micro_batches=micro_batches)


def run(
    preset: str = "smollm2-135m",
    batch: int = 8,
    seq_len: int = 256,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    rank: int = 8,
    targets: str | tuple[str, ...] = "default",
    repeats: int = 5,
    warmup: int = 1,
    with_reference: bool = True,
    head_at_targets: bool = True,
    profile_dir: str = "",
    micro_batches: int | Sequence[int] = 1,
    attention: str = "auto",
) -> dict:
    """Measures both sides in each precision and at each micro-batch count; the report is
    JSON-ready. `best_setting` is each side at its fastest (precision, micro-batches): what a
    user of either would pick.

    Both sides get the same FLOP count: the work the loss needs, so the head at the target
    positions only (half of each row). transformers computes the head at every position, and
    pathjax too with `head_at_targets=False`; that extra work does not count as useful.
    """
    counts = (micro_batches,) if isinstance(micro_batches, int) else tuple(micro_batches)
    for count in counts:
        if count < 1 or batch % count:
            raise ValueError(
                f"micro_batches={count} must be >= 1 and divide the batch of {batch} rows."
            )
    config = preset_with_attention(preset, attention)
    lora_config = lora.LoraConfig(rank=rank, targets=targets)
    data = make_batch(config.vocab_size, batch, seq_len, head_at_targets=head_at_targets)
    flops = step_flops(config, lora_config, batch, seq_len)
    results, peaks, reference_precision, profiles = [], {}, {}, {}
    for dtype in dtypes:
        # Measured before the models exist, so their memory does not disturb it.
        peaks[dtype] = peak.measured_matmul_peak(dtype)
        for count in counts:
            times, ops = measure_pathjax(
                config,
                data,
                dtype,
                lora_config,
                repeats,
                warmup,
                # One profile per precision, of its first setting.
                profile_dir if count == counts[0] else "",
                count,
            )
            if ops is not None:
                profiles[dtype] = {
                    "matmul_share": profile.matmul_share(ops),
                    "top_ops": [dataclasses.asdict(o) for o in ops[:20]],
                }
            m = forward._measurement(PATHJAX, dtype, batch, seq_len, times, flops)
            results.append(_with_mfu(m, peaks[dtype], count))
            if with_reference:
                times, reference_precision[dtype] = measure_reference(
                    presets.PRESETS[preset], data, dtype, lora_config, repeats, warmup, count
                )
                m = forward._measurement(REFERENCE, dtype, batch, seq_len, times, flops)
                results.append(_with_mfu(m, peaks[dtype], count))

    by_setting = {(r.side, r.dtype, r.micro_batches): r for r in results}
    ratios = {}
    for dtype in dtypes:
        for count in counts:
            ours = by_setting.get((PATHJAX, dtype, count))
            theirs = by_setting.get((REFERENCE, dtype, count))
            if ours and theirs:
                ratios[setting_name(dtype, count)] = ours.tokens_per_s / theirs.tokens_per_s
    best = {}
    for side in (PATHJAX, REFERENCE):
        mine = [r for r in results if r.side == side]
        if mine:
            fastest = max(mine, key=lambda r: r.tokens_per_s)
            best[side] = {
                "dtype": fastest.dtype,
                "micro_batches": fastest.micro_batches,
                "tokens_per_s": fastest.tokens_per_s,
            }
    if len(best) == 2:
        best["ratio"] = best[PATHJAX]["tokens_per_s"] / best[REFERENCE]["tokens_per_s"]

    machine = forward.machine_info()
    return {
        "workload": "train",
        "preset": preset,
        "attention": attention,
        "lora": dataclasses.asdict(lora_config),
        "loss_tokens_per_row": seq_len - seq_len // 2,
        "micro_batches": list(counts),
        "pathjax_head_at_targets": head_at_targets,
        "flops_per_step": flops,
        "peak_flops_per_s": peaks,
        "results": [dataclasses.asdict(r) for r in results],
        "speedup_vs_reference": ratios,
        "best_setting": best,
        "reference_precision": reference_precision,
        "profiles": profiles,
        "machine": machine,
    }


def format_table(report: dict) -> str:
    lora_config = report["lora"]
    lines = [
        f"LoRA training step, {report['preset']}, rank {lora_config['rank']}, targets "
        f"{lora_config['targets']!r} ({report['flops_per_step'] / 1e9:.1f} GFLOP per step)",
        "| side | dtype | micro-batches | batch x seq | median s | tokens/s | GFLOP/s | MFU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['side']} | {r['dtype']} | {r['micro_batches']} | {r['batch']} x {r['seq_len']} "
            f"| {r['median_s']:.3f} | {r['tokens_per_s']:.0f} | {r['gflops_per_s']:.1f} "
            f"| {100 * r['mfu']:.1f}% |"
        )
    for dtype, flops in report["peak_flops_per_s"].items():
        lines.append(f"measured matmul peak ({dtype}): {flops / 1e9:.1f} GFLOP/s")
    for setting, ratio in report["speedup_vs_reference"].items():
        lines.append(f"pathjax / {REFERENCE} ({setting}): {ratio:.2f}x")
    best = report["best_setting"]
    for side in (PATHJAX, REFERENCE):
        if side in best:
            setting = setting_name(best[side]["dtype"], best[side]["micro_batches"])
            lines.append(
                f"best setting, {side}: {setting} ({best[side]['tokens_per_s']:.0f} tokens/s)"
            )
    if "ratio" in best:
        lines.append(f"pathjax / {REFERENCE}, each at its best setting: {best['ratio']:.2f}x")
    for dtype, precision in report["reference_precision"].items():
        lines.append(
            f"{REFERENCE} {dtype}: base weights {precision['base']}, "
            f"adapters {precision['adapters']}"
        )
    for dtype, prof in report.get("profiles", {}).items():
        ops = [profile.OpTime(**o) for o in prof["top_ops"]]
        lines += [f"profile of one pathjax {dtype} step:", profile.format_profile(ops)]
    return "\n".join(lines)
