"""Forward-pass throughput: pathjax (jitted) and transformers (torch) side by side, one run.

Both sides get the same architecture (a preset, random weights: speed does not depend on the
values), batch and sequence length, and compute full-vocabulary logits. Times are medians of
repeats after warm-up (compilation excluded for JAX, one untimed call for torch).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx

from pathjax import provenance
from pathjax.models import presets, registry
from pathjax.models.flops import forward_flops


@dataclasses.dataclass
class Measurement:
    side: str  # "pathjax" or "transformers".
    dtype: str
    batch: int
    seq_len: int
    median_s: float
    min_s: float
    tokens_per_s: float
    gflops_per_s: float


def _time(fn: Callable[[], object], repeats: int, warmup: int, desc: str) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in tqdm.trange(repeats, desc=desc, unit="step", leave=False, disable=None):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _measurement(side, dtype, batch, seq_len, times, flops) -> Measurement:
    median = statistics.median(times)
    return Measurement(
        side=side,
        dtype=dtype,
        batch=batch,
        seq_len=seq_len,
        median_s=median,
        min_s=min(times),
        tokens_per_s=batch * seq_len / median,
        gflops_per_s=flops / median / 1e9,
    )


def measure_pathjax(config, ids: np.ndarray, dtype: str, repeats: int, warmup: int):
    model = registry.init_model(config, dtype=jnp.dtype(dtype))
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, ids):
        return nnx.merge(graphdef, state)(ids)

    ids = jnp.asarray(ids)
    forward(state, ids).block_until_ready()  # Compilation, not timed.
    return _time(
        lambda: forward(state, ids).block_until_ready(), repeats, warmup, f"pathjax {dtype}"
    )


def measure_transformers(hf_config: dict, ids: np.ndarray, dtype: str, repeats: int, warmup: int):
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    config = transformers.AutoConfig.for_model(**hf_config)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.eval()
    ids_t = torch.tensor(ids, dtype=torch.long)

    def forward():
        with torch.inference_mode():
            return model(ids_t).logits

    return _time(forward, repeats, max(warmup, 1), f"transformers {dtype}")


def run(
    preset: str = "smollm2-135m",
    batch: int = 8,
    seq_len: int = 256,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    repeats: int = 5,
    warmup: int = 1,
    with_transformers: bool = True,
) -> dict:
    config = presets.preset_config(preset)
    ids = np.random.RandomState(0).randint(0, config.vocab_size, (batch, seq_len)).astype(np.int32)
    flops = forward_flops(config, batch * seq_len, seq_len)
    results = []
    for dtype in dtypes:
        times = measure_pathjax(config, ids, dtype, repeats, warmup)
        results.append(_measurement("pathjax", dtype, batch, seq_len, times, flops))
        if with_transformers:
            times = measure_transformers(presets.PRESETS[preset], ids, dtype, repeats, warmup)
            results.append(_measurement("transformers", dtype, batch, seq_len, times, flops))
    ratios = {}
    for dtype in dtypes:
        ours = [r for r in results if r.side == "pathjax" and r.dtype == dtype]
        theirs = [r for r in results if r.side == "transformers" and r.dtype == dtype]
        if ours and theirs:
            ratios[dtype] = ours[0].tokens_per_s / theirs[0].tokens_per_s
    return {
        "workload": "forward",
        "preset": preset,
        "flops_per_step": flops,
        "results": [dataclasses.asdict(r) for r in results],
        "speedup_vs_transformers": ratios,
        "machine": machine_info(),
    }


def machine_info() -> dict:
    """Where a benchmark ran: the provenance block (versions, commit, devices, date, command)
    and the flat fields the tables print."""
    block = provenance.collect()
    return {
        **block["machine"],
        "jax_backend": block["devices"]["backend"],
        "devices": [str(d) for d in jax.devices()],
        "versions": block["libraries"],
        "provenance": block,
    }


def format_table(report: dict) -> str:
    lines = [
        f"Forward pass, {report['preset']}, full-vocabulary logits "
        f"({report['flops_per_step'] / 1e9:.1f} GFLOP per step)",
        "| side | dtype | batch x seq | median s | tokens/s | GFLOP/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['side']} | {r['dtype']} | {r['batch']} x {r['seq_len']} | {r['median_s']:.3f} "
            f"| {r['tokens_per_s']:.0f} | {r['gflops_per_s']:.1f} |"
        )
    for dtype, ratio in report["speedup_vs_transformers"].items():
        lines.append(f"pathjax / transformers ({dtype}): {ratio:.2f}x")
    return "\n".join(lines)
