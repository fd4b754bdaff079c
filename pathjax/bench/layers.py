"""The decoder's layer layout, loop against scan: compile time and step time of the LoRA step.

`model.scan_layers=True` stacks the layers on a leading axis and runs one layer under
`nnx.scan`, so XLA compiles one layer instead of `num_layers` copies; `model.remat` recomputes
each layer's activations in the backward pass (`layer_stack`). Both change what XLA compiles and
runs, so this measures, for each layout and remat policy, the train workload's single-adapter
step (`train.one_adapter_step`, random weights of a preset, the same LoRA, batch and loss):

- trace + lower (`jax.jit(step).lower(...)`) and XLA compile (`.compile()`), timed apart, with
  JAX's persistent compilation cache off, so every compile is cold;
- the median step time of the compiled step over `repeats` after `warmup`, and tokens/s;
- with `profile_dir`, one more step under the profiler: its top XLA operations say where a
  per-step gap between the layouts goes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

from pathjax import lora
from pathjax.bench import forward, profile, train
from pathjax.models import layer_stack, registry
from pathjax.train import peak

LAYOUTS = ("loop", "scan")


@dataclasses.dataclass
class LayoutMeasurement(forward.Measurement):
    layout: str  # "loop" (a list of layers) or "scan" (stacked under `nnx.scan`).
    remat: str  # `layer_stack.REMAT`.
    lower_s: float  # Tracing and lowering the jitted step to StableHLO.
    compile_s: float  # XLA's compilation of the lowered step, cold.
    temp_mib: float  # The compiled step's scratch memory (XLA's memory analysis).
    mfu: float = 0.0  # Achieved FLOP/s over the MFU ceiling of this precision (`mfu_ceiling`).


def setting_name(dtype: str, layout: str, remat: str) -> str:
    return f"{dtype}, {layout}, remat {remat}"


@contextlib.contextmanager
def cold_compilation_cache() -> Iterator[None]:
    """JAX's persistent compilation cache off inside, as it was outside.

    The cache decides once per process whether it is in use; resetting it makes that decision
    again under the new setting (and again on the way out).
    """
    was_enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", was_enabled)
        compilation_cache.reset_cache()


def measure_layout(
    config,
    data: dict[str, np.ndarray],
    dtype: str,
    lora_config: lora.LoraConfig,
    layout: str,
    remat: str,
    repeats: int,
    warmup: int,
    flops: float,
    profile_dir: str = "",
) -> tuple[LayoutMeasurement, list[profile.OpTime] | None]:
    """Lower, compile and time the step of one layout and remat policy."""
    config = registry.with_layout(config, scan_layers=layout == "scan", remat=remat)
    parts = train.build_pathjax(config, dtype, lora_config)
    # The warm-up, timed and profiled steps count towards the schedule.
    tx, schedule = train.pathjax_optimizer(warmup + repeats + 1)
    state = train.initial_state(parts.adapters, tx)
    batch = {k: jnp.asarray(v) for k, v in data.items()}
    # As in training: the adapters and moments update in place.
    jitted = jax.jit(train.one_adapter_step(parts, tx, schedule), donate_argnums=(0,))

    start = time.perf_counter()
    lowered = jitted.lower(state, parts.base, batch)
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()

    holder = {"state": state}

    def one_step():
        # Donation invalidates the old state, so each step feeds on the previous one's output.
        holder["state"], metrics = compiled(holder["state"], parts.base, batch)
        jax.block_until_ready((holder["state"], metrics))

    name = setting_name(dtype, layout, remat)
    times = forward._time(one_step, repeats, warmup, name)
    ops = None
    if profile_dir:
        ops = profile.profile_call(one_step, os.path.join(profile_dir, name.replace(", ", "-")))
    batch_size, seq_len = data["input_ids"].shape
    m = forward._measurement(train.PATHJAX, dtype, batch_size, seq_len, times, flops)
    return (
        LayoutMeasurement(
            **dataclasses.asdict(m),
            layout=layout,
            remat=remat,
            lower_s=lower_s,
            compile_s=compile_s,
            temp_mib=memory.temp_size_in_bytes / 2**20,
        ),
        ops,
    )


def run(
    preset: str = "smollm2-135m",
    batch: int = 8,
    seq_len: int = 128,
    dtypes: Sequence[str] = ("float32",),
    remats: Sequence[str] = ("none",),
    rank: int = 8,
    targets: str | tuple[str, ...] = "default",
    repeats: int = 3,
    warmup: int = 1,
    profile_dir: str = "",
    attention: str = "auto",
) -> dict:
    """Measures every (dtype, remat, layout); the report is JSON-ready. `scan_vs_loop` holds,
    per dtype and remat, the scanned layout's lower, compile and step times over the loop's."""
    for remat in remats:
        layer_stack.check_remat(remat)
    config = train.preset_with_attention(preset, attention)
    # Fail before any compile on a family without the stacked layout (GPT-2).
    registry.with_layout(config, scan_layers=True)
    lora_config = lora.LoraConfig(rank=rank, targets=targets)
    data = train.make_batch(config.vocab_size, batch, seq_len)
    # The work the loss needs, the same in both layouts (remat's recomputation is not useful
    # work); counted on the loop layout, whose adapters are one module per layer.
    flops = train.step_flops(config, lora_config, batch, seq_len)
    results, profiles, measured, peaks, ceilings = [], {}, {}, {}, {}
    with cold_compilation_cache():
        for dtype in dtypes:
            # Before the models exist, as the train workload measures it.
            measured[dtype] = peak.measured_matmul_peak(dtype)
            for remat in remats:
                for layout in LAYOUTS:
                    m, ops = measure_layout(
                        config,
                        data,
                        dtype,
                        lora_config,
                        layout,
                        remat,
                        repeats,
                        warmup,
                        flops,
                        profile_dir,
                    )
                    results.append(m)
                    if ops is not None:
                        profiles[setting_name(dtype, layout, remat)] = {
                            "matmul_share": profile.matmul_share(ops),
                            "top_ops": [dataclasses.asdict(o) for o in ops[:20]],
                        }

    for dtype in dtypes:
        best = max(r.gflops_per_s * 1e9 for r in results if r.dtype == dtype)
        peaks[dtype], ceilings[dtype] = peak.mfu_ceiling(dtype, measured[dtype], best)
    for r in results:
        r.mfu = r.gflops_per_s * 1e9 / peaks[r.dtype]
    by_setting = {(r.dtype, r.remat, r.layout): r for r in results}
    ratios = {}
    for dtype in dtypes:
        for remat in remats:
            loop, scan = by_setting[dtype, remat, "loop"], by_setting[dtype, remat, "scan"]
            ratios[f"{dtype}, remat {remat}"] = {
                "lower": scan.lower_s / loop.lower_s,
                "compile": scan.compile_s / loop.compile_s,
                "step": scan.median_s / loop.median_s,
                "tokens_per_s": scan.tokens_per_s / loop.tokens_per_s,
            }
    machine = forward.machine_info()
    machine["persistent_compilation_cache"] = "disabled for the measurement"
    return {
        "workload": "layers",
        "preset": preset,
        "attention": attention,
        "num_layers": config.num_layers,
        "lora": dataclasses.asdict(lora_config),
        "batch": batch,
        "seq_len": seq_len,
        "repeats": repeats,
        "warmup": warmup,
        "flops_per_step": flops,
        "peak_flops_per_s": peaks,
        "mfu_ceiling": ceilings,
        "results": [dataclasses.asdict(r) for r in results],
        "scan_vs_loop": ratios,
        "profiles": profiles,
        "machine": machine,
    }


def format_table(report: dict) -> str:
    lora_config = report["lora"]
    lines = [
        f"LoRA training step by layer layout, {report['preset']} ({report['num_layers']} "
        f"layers), rank {lora_config['rank']}, targets {lora_config['targets']!r}, "
        f"{report['batch']} x {report['seq_len']} tokens, medians of {report['repeats']} "
        f"({report['flops_per_step'] / 1e9:.1f} GFLOP per step); compiles cold (persistent "
        "cache off)",
        "| layout | remat | dtype | lower s | compile s | step s | tokens/s | GFLOP/s | MFU "
        "| scratch MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['layout']} | {r['remat']} | {r['dtype']} | {r['lower_s']:.2f} "
            f"| {r['compile_s']:.2f} | {r['median_s']:.3f} | {r['tokens_per_s']:.0f} "
            f"| {r['gflops_per_s']:.1f} | {100 * r['mfu']:.0f}% | {r['temp_mib']:.0f} |"
        )
    for setting, ratio in report["scan_vs_loop"].items():
        lines.append(
            f"scan / loop ({setting}): lower {ratio['lower']:.2f}x, compile "
            f"{ratio['compile']:.2f}x, step time {ratio['step']:.2f}x, tokens/s "
            f"{ratio['tokens_per_s']:.2f}x"
        )
    for dtype, flops in report["peak_flops_per_s"].items():
        lines.append(
            f"MFU ceiling ({dtype}): {flops / 1e9:.1f} GFLOP/s, {report['mfu_ceiling'][dtype]}"
        )
    machine = report["machine"]
    lines.append(f"machine: {machine['processor']}, {machine['cpu_count']} CPUs")
    for setting, prof in report["profiles"].items():
        ops = [profile.OpTime(**o) for o in prof["top_ops"]]
        lines += [f"profile of one step ({setting}):", profile.format_profile(ops)]
    return "\n".join(lines)
