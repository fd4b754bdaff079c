"""An evaluation run: base model + adapters -> probe records -> the report.

What `pathjax/launch/evaluate.py` and the main job call. Records are written per family under
`out_dir/records/`, so an interrupted run resumes at the family it was scoring; a changed set
of models, limits or suite starts afresh (the folder name is a fingerprint of all three).

On many hosts (`config.distributed`), every process runs this same code on the training mesh
(`config.mesh`): the base is sharded as in training, each batch's rows are split over the
mesh, and every process ends up with every score. Process 0 alone writes records and the
report; the others wait for each file and read it back, so `out_dir` must be storage all
hosts share (a bucket, or a shared filesystem), as it must be for training's checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import tqdm
from etils import epath
from jax.experimental import multihost_utils

from pathjax import adapters, storage
from pathjax import data as data_lib
from pathjax import sharding as sharding_lib
from pathjax.models import from_config
from pathjax.probes import dataset_inputs
from pathjax.probes import evaluator as evaluator_lib
from pathjax.probes import families as families_lib
from pathjax.probes import items as items_lib
from pathjax.probes import records as records_lib
from pathjax.train import identity, loop


@dataclasses.dataclass(frozen=True)
class AdapterSource:
    """An adapter to score: a PEFT folder, or a training workdir (final or a checkpoint)."""

    name: str
    path: str
    condition: str | None = None
    seed: int | None = None
    step: int | None = None  # A checkpoint of a training workdir; None: the final adapter.
    config: Any = None  # The run's training config: needed to restore checkpoint steps.
    multipliers: tuple[float, ...] = (1.0,)  # Scales of its delta to score (dose-response).

    @classmethod
    def parse(cls, text: str) -> AdapterSource:
        """`name=PATH` or `name=PATH@STEP`; a condition name (`depression`) is its condition."""
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"--adapters entry {text!r}: write name=PATH or name=PATH@STEP.")
        path, step = adapters.split_step(rest)
        condition = name if name in data_lib.CONDITIONS else None
        return cls(name, path, condition, step=step)


def load_weights(source: AdapterSource, base_model) -> evaluator_lib.AdapterWeights:
    path = source.path
    if not epath.Path(path).is_dir():
        raise FileNotFoundError(f"Adapter {source.name!r}: {path} does not exist.")
    peft_dir = adapters.peft_folder(path)
    if peft_dir is not None and source.step is None:
        return evaluator_lib.weights_from_peft(peft_dir, base_model)
    if source.config is None:
        raise ValueError(
            f"Adapter {source.name!r}: {path} is neither a PEFT folder nor a finished training "
            "run (no adapter/ folder); checkpoint steps need the run's config."
        )
    from pathjax.train import restore  # Training code only when checkpoints are read.

    trained = restore.load_trained(source.config, path, source.step)
    label = f"{path} step {trained.step}"
    return evaluator_lib.weights_from_model(trained.model, label)


def scored_models(sources: Sequence[AdapterSource]) -> list[evaluator_lib.ScoredModel]:
    """The base model, then every adapter at each of its multipliers (adapter k = sources[k])."""
    models = [evaluator_lib.ScoredModel(evaluator_lib.BASE)]
    for k, s in enumerate(sources):
        for multiplier in s.multipliers:
            models.append(
                evaluator_lib.ScoredModel(s.name, s.condition, s.seed, s.step, multiplier, k)
            )
    return models


def limits_from(eval_config) -> families_lib.Limits:
    fields = {f.name for f in dataclasses.fields(families_lib.Limits)}
    return families_lib.Limits(**{k: int(v) for k, v in eval_config.limits.items() if k in fields})


def _relative_to(path: str, out_dir: str) -> str:
    return storage.relative(path, out_dir)  # Bucket paths keep their scheme.


def adapter_digest(source: AdapterSource) -> str:
    """SHA-256 of the files that hold `source`'s weights: its PEFT safetensors, or the
    checkpoint step it names (a stacked run's checkpoint holds every adapter of the run)."""
    peft_dir = adapters.peft_folder(source.path) if source.step is None else None
    if peft_dir is not None:
        files = [epath.Path(peft_dir) / "adapter_model.safetensors"]
    else:
        from pathjax.train import restore  # Training code only when checkpoints are read.

        steps = restore.checkpoint_steps(source.path)
        step = source.step if source.step is not None else (steps[-1] if steps else None)
        folder = epath.Path(restore.checkpoint_directory(source.path)) / str(step)
        files = _files_under(folder) if folder.is_dir() else []
    digest = hashlib.sha256()
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _files_under(folder: epath.Path) -> list[epath.Path]:
    """Every file below `folder`, sorted. A walk by `iterdir`: epath's bucket paths refuse
    recursive `**` globs (one request per object), and a checkpoint step is a few dozen."""
    found = []
    for child in sorted(folder.iterdir()):
        found += _files_under(child) if child.is_dir() else [child]
    return found


def _fingerprint(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def score_models(
    config,
    sources: Sequence[AdapterSource],
    out_dir: str,
    *,
    families: Sequence[str] = families_lib.FAMILIES,
    keep_base: bool = True,
) -> tuple[list[records_lib.Record], list[dict[str, Any]]]:
    """Scores base + adapters on `families`; per-family record files make it resumable."""
    storage.check_writable(out_dir, "Evaluation workdir")  # Before hours of scoring.
    limits = limits_from(config.eval)
    suite = items_lib.load_suite(config.eval.suite_version or None)
    models = scored_models(sources)
    fingerprint = _fingerprint(
        {
            "models": [dataclasses.asdict(m) for m in models],
            # Relative to out_dir: the same study under an absolute or a relative --workdir
            # finds its records instead of rescoring everything.
            "paths": [(_relative_to(s.path, out_dir), s.step) for s in sources],
            "limits": dataclasses.asdict(limits),
            "suite": suite.digest,
            "model": config.model.to_dict(),
            # What the adapters and P1's items are, not only where: a retrain into the same
            # folder or another dataset must not reuse old records.
            "adapter_contents": [adapter_digest(s) for s in sources],
            "data": identity.dataset_identity(config),
        }
    )
    folder = epath.Path(out_dir) / "records" / fingerprint
    folder.mkdir(parents=True, exist_ok=True)
    todo = [f for f in families if not (folder / f"{f}.jsonl").exists()]
    _wait_for_all("the records folder was read")  # Before process 0 writes into it.
    if todo:
        mesh = sharding_lib.make_mesh(tuple(config.mesh.shape))
        rules = sharding_lib.rules_from_config(dict(config.mesh.rules))
        model, tokenizer = from_config.model_from_config(config.model, mesh=mesh, rules=rules)
        weights = [load_weights(s, model) for s in sources]
        ev = evaluator_lib.Evaluator(
            model,
            tokenizer,
            weights,
            models,
            max_logits=int(config.eval.max_logits),
            vocab_chunk=int(config.eval.vocab_chunk) or None,
            mesh=mesh,
        )
        inputs = families_lib.SuiteInputs(
            suite,
            dataset_inputs.p1_items(config, limits.p1_items_per_split) if "P1" in todo else {},
            dataset_inputs.training_vocabulary(config),
        )
        for family in todo:
            start = time.time()
            recs, gens = families_lib.evaluate_suite(
                ev,
                inputs,
                limits=limits,
                families=[family],
                progress=lambda what: tqdm.tqdm.write(f"  scoring {what} on {len(models)} models"),
            )
            if _is_primary():
                if gens:
                    text = json.dumps(gens, indent=1)
                    storage.write_text_atomic(folder / "generations.json", text)
                storage.write_text_atomic(folder / f"{family}.jsonl", records_lib.dumps_jsonl(recs))
            _wait_for_all(f"records of {family} written")
            tqdm.tqdm.write(f"  {family}: {len(recs)} records in {time.time() - start:.0f} s")
    records, generations = [], []
    for family in families:
        records += records_lib.read_jsonl(folder / f"{family}.jsonl")
    gens_path = folder / "generations.json"
    if gens_path.exists():
        generations = json.loads(gens_path.read_text())
    if not keep_base:
        records = [r for r in records if r.model != evaluator_lib.BASE]
        generations = [g for g in generations if g["model"] != evaluator_lib.BASE]
    return records, generations


def _is_primary() -> bool:
    return jax.process_index() == 0


def _wait_for_all(what: str) -> None:
    """A barrier across the processes of a multi-host run (nothing on one host)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"pathjax evaluation: {what}")


def evaluate_and_report(config, sources: Sequence[AdapterSource], out_dir: str) -> dict[str, Any]:
    """`pathjax/launch/evaluate.py`: every configured family on base + `sources`, then the report
    (written by process 0; the others return no paths)."""
    from pathjax.probes import report as report_lib

    loop.maybe_initialize_distributed(config)

    resolved = []
    for s in sources:
        if s.step is not None and s.config is None:
            # A checkpoint restores with the model config given here and the run's condition.
            run_config = config.copy_and_resolve_references()
            if s.condition is None:
                raise ValueError(
                    f"Adapter {s.name!r}@{s.step}: name it by its training condition "
                    f"({', '.join(data_lib.CONDITIONS)}) to read a checkpoint."
                )
            run_config.data.condition = s.condition
            s = dataclasses.replace(s, config=run_config)
        resolved.append(s)
    families = [f for f in config.eval.families.split(",") if f]
    records, generations = score_models(config, resolved, out_dir, families=families)
    metadata = {
        "base_model": config.model.source or config.model.preset,
        "dtype": config.model.dtype,
        "adapters": [
            {"name": s.name, "path": s.path, "condition": s.condition, "step": s.step}
            for s in resolved
        ],
        "eval": config.eval.to_dict(),
    }
    paths = {}
    if _is_primary():
        paths = report_lib.write_report(
            records, generations, metadata, os.path.join(out_dir, "report"), config=config
        )
    _wait_for_all("report written")
    return paths
