"""K LoRA adapters trained stacked (one step for all) against K sequential runs, one process.

Three ways to train K adapters for N steps each on one frozen base, each adapter on its own
rows (adapter k's batch is `train.make_batch(seed=k)`, the same rows on every side), with the
preset, LoRA settings, loss and optimizer of the `train` workload (`pathjax/bench/train.py`):

- **pathjax stacked:** the training loop's stacked step (`pathjax/train/loop.py`): the
  single-adapter step under `jax.vmap` over a leading adapter axis of the state, the base
  shared, the batch `[K, rows, length]`; one compile, N steps.
- **pathjax sequential:** the single-adapter step, K runs of N steps each, in two variants.
  *One compile*: the K runs reuse one jitted step, as the loop's step cache lets same-shape
  runs in one process do. *Compile per run*: each run jits its own step, as separate processes
  would pay (trace and compilation only: a separate process would also import and load the
  base again, which no side here counts).
- **transformers + PEFT sequential:** K runs, each wrapping a fresh base in PEFT with its own
  AdamW (torch compiles nothing).

Per side: the steady-state rate (the median of each run's steps after its first, as tokens/s
of all K adapters: K runs of one adapter take K steps for K adapters' tokens), the wall time
of N steps of all K adapters including compilation (each run from its optimizer state, the
base model already built: building or loading it is the same on every side), and MFU against
the matmul peak measured in this process. Every row is real (no padding), so every token
counts; the FLOPs are the `train` workload's per adapter, times K.

The runs take turns step by step (`take_turns`), each timed on its own: a run's wall time is
its set-up plus its steps, what it would take alone, while every side's steps fall in the
same minutes of a machine whose load moves.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from pathjax import lora
from pathjax.bench import forward, train
from pathjax.models import presets
from pathjax.train import peak, stacking

STACKED = "pathjax stacked"
SEQUENTIAL_ONE_COMPILE = "pathjax sequential, one compile"
SEQUENTIAL_COMPILE_PER_RUN = "pathjax sequential, compile per run"
REFERENCE = f"{train.REFERENCE} sequential"
SIDES = (STACKED, SEQUENTIAL_ONE_COMPILE, SEQUENTIAL_COMPILE_PER_RUN, REFERENCE)
# What the stacked side is compared with: both pathjax variants and the reference.
BASELINES = (SEQUENTIAL_ONE_COMPILE, SEQUENTIAL_COMPILE_PER_RUN, REFERENCE)


class Run:
    """One run: its set-up (state, jit, PEFT wrapping) on the first step, then its steps, each
    timed where it happens, so that runs can take turns."""

    def __init__(self, start: Callable[[], Callable[[], object]]):
        self._start = start  # Sets the run up; returns its step.
        self._step: Callable[[], object] | None = None
        self.setup_s = 0.0
        self.step_s: list[float] = []  # The first includes any compilation.

    def step(self) -> None:
        if self._step is None:
            begin = time.perf_counter()
            self._step = self._start()
            self.setup_s = time.perf_counter() - begin
        begin = time.perf_counter()
        self._step()
        self.step_s.append(time.perf_counter() - begin)

    @property
    def wall_s(self) -> float:
        """What the run takes alone: set-up and every step."""
        return self.setup_s + sum(self.step_s)

    def close(self) -> None:
        self._step = None  # Frees its state (and torch's model).


@dataclasses.dataclass
class SideResult:
    side: str
    dtype: str
    adapters: int
    steps: int  # Per adapter.
    compiles: int
    step_s: float  # Steady state: one step of all K adapters (median).
    tokens_per_s: float  # All K adapters' tokens over `step_s`.
    gflops_per_s: float
    mfu: float
    wall_s: float  # N steps of all K adapters, set-up and compilation included.
    first_steps_s: float  # The runs' first steps: compilation and warm-up.
    setup_s: list[float]  # Each run's set-up.
    run_step_s: list[list[float]]  # Each run's step times: the raw numbers behind the medians.


def take_turns(runs: Sequence[Run], steps: int) -> None:
    """Step `i` of every run, then step `i + 1` of every run, and so on; a run listed twice
    (shared by two sides) steps once.

    On a shared machine the load moves by several times within minutes; side after side, the
    side that happened to run under load would look slow. Taking turns puts every side's
    steps in the same minutes, and each run's time is still its own: the sum of its parts.
    """
    unique = list({id(r): r for r in runs}.values())
    for _ in range(steps):
        for run in unique:
            run.step()
    for run in unique:
        run.close()


def _pathjax_run(state_fn, step_fn, base, batch) -> Run:
    """A run whose set-up makes its state, and whose step feeds on the last step's output."""

    def start():
        holder = {"state": state_fn()}

        def one_step():
            # The step donates its state, so each one feeds on the last one's output.
            holder["state"], metrics = step_fn(holder["state"], base, batch)
            jax.block_until_ready((holder["state"], metrics))

        return one_step

    return Run(start)


def stacked_run(parts: train.PathjaxModel, batches, tx, schedule) -> Run:
    """The stacked step over `[K, rows, length]`, as `loop._jitted_steps` builds it
    (unsharded: one device). The K adapters start from the same values with their own keys:
    the values do not change the speed."""

    def state():
        return stacking.stack(
            [train.initial_state(parts.adapters, tx, seed) for seed in range(len(batches))]
        )

    step_fn = jax.jit(
        jax.vmap(train.one_adapter_step(parts, tx, schedule), in_axes=(0, None, 0)),
        donate_argnums=(0,),
    )
    batch = {k: jnp.asarray(v) for k, v in stacking.stack_batches(batches).items()}
    return _pathjax_run(state, step_fn, parts.base, batch)


def sequential_runs(
    parts: train.PathjaxModel, batches, tx, schedule
) -> tuple[list[Run], list[Run]]:
    """K runs reusing one jitted step, and K runs each jitting its own; the first run is both
    lists' first (it compiles in either), so K + (K - 1) runs in all."""

    def fresh_step():
        # A new function object: jit traces and compiles it anew.
        return jax.jit(train.one_adapter_step(parts, tx, schedule), donate_argnums=(0,))

    def run(seed: int, step_fn) -> Run:
        def state():
            return train.initial_state(parts.adapters, tx, seed)

        batch = {k: jnp.asarray(v) for k, v in batches[seed].items()}
        return _pathjax_run(state, step_fn, parts.base, batch)

    shared_step = fresh_step()
    first = run(0, shared_step)
    one_compile = [first] + [run(k, shared_step) for k in range(1, len(batches))]
    compile_per_run = [first] + [run(k, fresh_step()) for k in range(1, len(batches))]
    return one_compile, compile_per_run


def reference_runs(
    hf_config: dict, batches, dtype: str, lora_config
) -> tuple[list[Run], list[dict[str, str]]]:
    """K transformers + PEFT runs, each wrapping a base of its own (built here, untimed, as
    pathjax's is); the list of dtypes torch ran in fills as the runs start."""
    runs, precisions = [], []
    for batch in batches:
        base = train.reference_base(hf_config, dtype)

        def start(base=base, batch=batch):
            one_step, precision = train.reference_step(base, batch, lora_config)
            precisions.append(precision)
            return one_step

        runs.append(Run(start))
    return runs, precisions


def _side(
    side: str,
    dtype: str,
    runs: Sequence[Run],
    adapters_per_run: int,
    compiles: int,
    tokens_per_run_step: int,
    flops_per_run_step: float,
) -> dict:
    """Steady state and wall time of `runs` (which together train all K adapters)."""
    steady = [t for r in runs for t in r.step_s[1:]] or [r.step_s[0] for r in runs]
    run_step_s = statistics.median(steady)
    # One step of all K adapters: one stacked step, or one step of each of K runs.
    all_adapters_step_s = run_step_s * len(runs)
    return dict(
        side=side,
        dtype=dtype,
        adapters=adapters_per_run * len(runs),
        steps=len(runs[0].step_s),
        compiles=compiles,
        step_s=all_adapters_step_s,
        tokens_per_s=tokens_per_run_step / run_step_s,
        achieved_flops_per_s=flops_per_run_step / run_step_s,
        wall_s=sum(r.wall_s for r in runs),
        first_steps_s=sum(r.step_s[0] for r in runs),
        setup_s=[r.setup_s for r in runs],
        run_step_s=[r.step_s for r in runs],
    )


def run(
    preset: str = "smollm2-135m",
    batch: int = 8,
    seq_len: int = 128,
    adapters: int = 3,
    dtypes: Sequence[str] = ("float32",),
    rank: int = 8,
    targets: str | tuple[str, ...] = "default",
    steps: int = 3,
    with_reference: bool = True,
) -> dict:
    """Measures every side in each precision; the report is JSON-ready."""
    if adapters < 1 or steps < 2:
        raise ValueError(
            f"adapters={adapters} must be >= 1 and steps={steps} >= 2 (the first step of a "
            "run compiles; the steady state needs a second)."
        )
    config = presets.preset_config(preset)
    lora_config = lora.LoraConfig(rank=rank, targets=targets)
    batches = [train.make_batch(config.vocab_size, batch, seq_len, seed=k) for k in range(adapters)]
    flops = train.step_flops(config, lora_config, batch, seq_len)
    tokens = batch * seq_len  # Every row is real: no padding to leave out.
    results, peaks, ceilings, reference_precision = [], {}, {}, {}
    for dtype in dtypes:
        # Measured before the models exist, so their memory does not disturb it.
        measured_peak = peak.measured_matmul_peak(dtype)
        parts = train.build_pathjax(config, dtype, lora_config)
        tx, schedule = train.pathjax_optimizer(steps)
        stacked = stacked_run(parts, batches, tx, schedule)
        one_compile, compile_per_run = sequential_runs(parts, batches, tx, schedule)
        reference, precisions = [], []
        if with_reference:
            reference, precisions = reference_runs(
                presets.PRESETS[preset], batches, dtype, lora_config
            )
        take_turns([stacked, *one_compile, *compile_per_run, *reference], steps)
        del parts
        sides = [
            _side(STACKED, dtype, [stacked], adapters, 1, adapters * tokens, adapters * flops),
            _side(SEQUENTIAL_ONE_COMPILE, dtype, one_compile, 1, 1, tokens, flops),
            _side(SEQUENTIAL_COMPILE_PER_RUN, dtype, compile_per_run, 1, adapters, tokens, flops),
        ]
        if reference:
            sides.append(_side(REFERENCE, dtype, reference, 1, 0, tokens, flops))
            reference_precision[dtype] = precisions[0]
        best = max(s["achieved_flops_per_s"] for s in sides)
        peaks[dtype], ceilings[dtype] = peak.mfu_ceiling(dtype, measured_peak, best)
        for s in sides:
            achieved = s.pop("achieved_flops_per_s")
            results.append(
                SideResult(**s, gflops_per_s=achieved / 1e9, mfu=achieved / peaks[dtype])
            )

    ratios = {}
    for dtype in dtypes:
        mine = {r.side: r for r in results if r.dtype == dtype}
        ratios[dtype] = {
            other: {
                "tokens_per_s": mine[STACKED].tokens_per_s / mine[other].tokens_per_s,
                "wall_time": mine[other].wall_s / mine[STACKED].wall_s,
            }
            for other in BASELINES
            if other in mine
        }
    machine = forward.machine_info()
    machine["persistent_compilation_cache"] = jax.config.jax_compilation_cache_dir or None
    return {
        "workload": "stacked",
        "preset": preset,
        "lora": dataclasses.asdict(lora_config),
        "adapters": adapters,
        "steps": steps,
        "batch": batch,
        "seq_len": seq_len,
        "loss_tokens_per_row": seq_len - seq_len // 2,
        "flops_per_adapter_step": flops,
        "peak_flops_per_s": peaks,
        "mfu_ceiling": ceilings,
        "results": [dataclasses.asdict(r) for r in results],
        # Stacked over each baseline: tokens/s (steady state), and the baseline's wall time
        # over the stacked one's (how many times faster stacked trains all K, compiles in).
        "stacked_vs": ratios,
        "reference_precision": reference_precision,
        "machine": machine,
    }


def format_table(report: dict) -> str:
    lora_config = report["lora"]
    k, n = report["adapters"], report["steps"]
    lines = [
        f"{k} LoRA adapters, {n} steps each: stacked against sequential, {report['preset']}, "
        f"rank {lora_config['rank']}, targets {lora_config['targets']!r}, "
        f"{report['batch']} x {report['seq_len']} tokens per adapter per step "
        f"({report['flops_per_adapter_step'] / 1e9:.1f} GFLOP per adapter step)",
        f"| side | dtype | compiles | step of all {k} s | tokens/s | GFLOP/s | MFU "
        f"| wall s, {n} steps x {k} adapters, compiles in | first steps s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['side']} | {r['dtype']} | {r['compiles']} | {r['step_s']:.3f} "
            f"| {r['tokens_per_s']:.0f} | {r['gflops_per_s']:.1f} | {100 * r['mfu']:.1f}% "
            f"| {r['wall_s']:.1f} | {r['first_steps_s']:.1f} |"
        )
    for dtype, flops in report["peak_flops_per_s"].items():
        lines.append(
            f"MFU ceiling ({dtype}): {flops / 1e9:.1f} GFLOP/s, {report['mfu_ceiling'][dtype]}"
        )
    for dtype, versus in report["stacked_vs"].items():
        for other, ratio in versus.items():
            lines.append(
                f"stacked / {other} ({dtype}): {ratio['tokens_per_s']:.2f}x tokens/s, "
                f"wall time {other} / stacked {ratio['wall_time']:.2f}x"
            )
    for dtype, precision in report["reference_precision"].items():
        lines.append(
            f"{train.REFERENCE} {dtype}: base weights {precision['base']}, "
            f"adapters {precision['adapters']}"
        )
    machine = report["machine"]
    versions = ", ".join(f"{p} {v}" for p, v in machine["versions"].items() if v)
    lines.append(
        f"machine: {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"devices {machine['devices']}, commit {_commit_of(machine)}; {versions}"
    )
    if machine["persistent_compilation_cache"]:
        lines.append(
            f"note: JAX's persistent compilation cache is on "
            f"({machine['persistent_compilation_cache']}): a repeated compile may be a cache hit"
        )
    return "\n".join(lines)


def _commit_of(machine: dict) -> str:
    git = machine["provenance"].get("git") or {}
    if not git:
        return "none (not a git checkout)"
    return git["commit"][:12] + (" (with uncommitted changes)" if git["dirty"] else "")
