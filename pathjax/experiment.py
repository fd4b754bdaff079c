"""The main job: data, the adapters of every condition, the probe suite, the report.

Every stage leaves its result on disk and is skipped when a rerun finds it: datasets (TFDS
skips a finished build), training runs (a run with its final adapter is done; an interrupted
one resumes from its last checkpoint), probe scores (per family), and the report, which is
rewritten from the records each time. With several model configs, each gets its own folder
and a cross-architecture summary compares their headline numbers.

Layout of `workdir`:

    <arch>/data/                      the behavioral datasets (unless data_dir is absolute)
    <arch>/runs/<condition>-seed<s>/  training runs (checkpoints, metrics, adapter/)
    <arch>/eval/records/...           per-family probe records
    <arch>/report/                    report.json, report.md, figures/, generations.md
    summary.md                        across architectures (when there are several)
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import tqdm
from etils import epath

from pathjax import data as data_lib
from pathjax import storage
from pathjax.probes import run as run_lib
from pathjax.train import loop, metrics, restore, stacking


def say(message: str) -> None:
    """A stage line that plays well with the progress bars."""
    tqdm.tqdm.write(message)


def architecture_name(config) -> str:
    name = config.experiment.name or config.model.source or config.model.preset
    return re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(str(name).rstrip("/"))).strip("-")


def _run_config(config, condition: str, seed: int, data_dir: str):
    run_config = config.copy_and_resolve_references()
    run_config.data.condition = condition
    run_config.data.data_dir = data_dir
    run_config.train.seed = seed
    return run_config


def _finished(run_config, run_dir: str) -> bool:
    adapter = epath.Path(run_dir) / "adapter" / "adapter_config.json"
    steps = restore.checkpoint_steps(run_dir)
    return adapter.is_file() and bool(steps) and steps[-1] >= run_config.train.num_steps


def _evaluation_rows(run_dir: str) -> list[dict[str, Any]]:
    """Every evaluation row of a run's metrics.jsonl (validation and held-out splits): the
    report's learning curve. A resumed run may repeat a step; the last row of each wins."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for row in metrics.read_metrics(run_dir):
        if row.get("split") != "train":
            rows[(int(row["step"]), row["split"])] = row
    return [rows[k] for k in sorted(rows)]


def _last_validation(run_dir: str) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for row in metrics.read_metrics(run_dir):
        if row.get("split") == "validation":
            last = row
    return last


class _Timer:
    """Wall time per stage, kept across reruns in `timings.json`."""

    def __init__(self, path: str):
        self.path = epath.Path(path)
        self.times: dict[str, float] = {}
        if self.path.exists():
            self.times = json.loads(self.path.read_text())

    def record(self, stage: str, seconds: float) -> None:
        self.times[stage] = self.times.get(stage, 0.0) + seconds
        storage.write_text_atomic(self.path, json.dumps(self.times, indent=1))


def run_architecture(config, workdir: str) -> dict[str, Any]:
    """The whole study for one model config; returns the report's paths and summary."""
    from pathjax.probes import report as report_lib

    name = architecture_name(config)
    arch_dir = os.path.join(os.fspath(workdir), name)
    storage.check_writable(arch_dir)
    timer = _Timer(os.path.join(arch_dir, "timings.json"))
    d = config.data
    absolute = os.path.isabs(d.data_dir) or storage.is_remote(d.data_dir)
    data_dir = d.data_dir if absolute else os.path.join(arch_dir, d.data_dir)
    e = config.experiment
    say(f"[{name}] stage 1/4: data for {', '.join(e.conditions)}")
    start = time.time()
    for condition in e.conditions:
        data_lib.build(condition, data_dir, **data_lib.options_of(d))
    timer.record("data", time.time() - start)

    adapter_runs = stacking.adapter_runs(
        config, e.conditions, e.seeds, os.path.join(arch_dir, "runs"), data_dir
    )
    unfinished = [r for r in adapter_runs if not _finished(r.config, r.workdir)]
    if not unfinished:
        say(f"[{name}] stage 2/4: {len(adapter_runs)} adapters already trained")
    else:
        # Every adapter in one stacked run (one compile, the base read once per step); a
        # rerun resumes it as one. Finished adapters are not retrained on their own: the
        # run resumes all of them together or none.
        say(
            f"[{name}] stage 2/4: training {len(adapter_runs)} adapters stacked "
            f"({', '.join(r.name for r in adapter_runs)})"
        )
        start = time.time()
        loop.train_stacked(adapter_runs, os.path.join(arch_dir, "runs", "stacked"))
        timer.record("train", time.time() - start)
    runs = [
        (r.config.data.condition, int(r.config.train.seed), r.config, r.workdir)
        for r in adapter_runs
    ]

    say(f"[{name}] stage 3/4: probes on the base model and {len(runs)} adapters")
    start = time.time()
    eval_config = _run_config(config, e.conditions[0], 0, data_dir)
    several_seeds = len(e.seeds) > 1
    sources = [
        run_lib.AdapterSource(cond, run_dir, cond, seed if several_seeds else None, None, rc)
        for cond, seed, rc, run_dir in runs
    ]
    eval_dir = os.path.join(arch_dir, "eval")
    families = [f for f in config.eval.families.split(",") if f]
    records, generations = run_lib.score_models(eval_config, sources, eval_dir, families=families)
    dose_records = _dose_response(eval_config, runs, eval_dir, several_seeds)
    timer.record("evaluate", time.time() - start)

    say(f"[{name}] stage 4/4: report")
    metadata = {
        "architecture": name,
        "base_model": config.model.source or config.model.preset,
        "dtype": config.model.dtype,
        "conditions": list(e.conditions),
        "seeds": [int(s) for s in e.seeds],
        "lora": config.lora.to_dict(),
        "training": {
            "num_steps": config.train.num_steps,
            "global_batch_size": config.train.global_batch_size,
            "learning_rate": config.train.learning_rate,
            "final_validation": {
                f"{cond}-seed{seed}": _last_validation(run_dir) for cond, seed, _, run_dir in runs
            },
            "curves": {
                f"{cond}-seed{seed}": _evaluation_rows(run_dir) for cond, seed, _, run_dir in runs
            },
        },
        "data": {
            "train_size": d.train_size,
            "eval_size": d.eval_size,
            "seed": d.seed,
            "version": str(data_lib.VERSION),
        },
        "eval": config.eval.to_dict(),
        "timings_s": timer.times,
        "final_step": int(config.train.num_steps),
    }
    # The report computes the lexical leakage of the training data of `eval_config` itself.
    paths = report_lib.write_report(
        records + dose_records,
        generations,
        metadata,
        os.path.join(arch_dir, "report"),
        config=eval_config,
    )
    return {"name": name, "paths": {k: str(v) for k, v in paths.items()}, "dir": arch_dir}


def _dose_response(eval_config, runs, eval_dir: str, several_seeds: bool):
    """The dose families at intermediate checkpoints and at other multipliers, in one pass."""
    ev = eval_config.eval
    families = [f for f in ev.dose_families.split(",") if f]
    multipliers = tuple(float(m) for m in ev.dose_multipliers if float(m) != 1.0)
    sources = []
    for cond, seed, rc, run_dir in runs:
        if cond == "control" and len(runs) > 1:
            continue  # Dose-response is asked of the trained conditions.
        steps = [s for s in restore.checkpoint_steps(run_dir) if s < rc.train.num_steps]
        if ev.dose_steps:
            steps = [s for s in steps if s in set(ev.dose_steps)]
        tag = seed if several_seeds else None
        sources += [run_lib.AdapterSource(cond, run_dir, cond, tag, s, rc) for s in steps]
        if multipliers:
            sources.append(run_lib.AdapterSource(cond, run_dir, cond, tag, None, rc, multipliers))
    if not families or not sources:
        return []
    records, _ = run_lib.score_models(
        eval_config, sources, eval_dir, families=families, keep_base=False
    )
    return records


def run_experiment(configs: Sequence[Any], workdir: str) -> list[dict[str, Any]]:
    """Every architecture in `configs`; a cross-architecture summary when there are several."""
    results = [run_architecture(config, workdir) for config in configs]
    if len(results) > 1:
        from pathjax.probes import report as report_lib

        summary = report_lib.cross_architecture_summary(
            {r["name"]: r["paths"]["report.json"] for r in results}
        )
        path = os.path.join(os.fspath(workdir), "summary.md")
        epath.Path(path).write_text(summary)
        results.append({"name": "summary", "paths": {"summary.md": path}, "dir": workdir})
    return results
