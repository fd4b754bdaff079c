"""Builds the probe report from per-item records: every section in one named order, then the
files (`write_report`; the package's entry point re-exports it, see `__init__`).

Each section is a function of the shared `ReportContext` (`context`) in its own module:
`effects` (headline shifts vs B and vs C, every metric's shift, levels, P5 totals and orders),
`targets` (P1), `specificity` (matrix and S), `dose`, `curve` (the training-time learning
curve, from metadata) and `leakage` (lexical leakage). A section that needs what another
derived takes it as an argument (`all_effects` takes the Holm-adjusted headline rows); shifts
both ask for are computed once by the context. The Markdown pages (`markdown`, `generations`)
and the figures (`figures`) are functions of the finished `report.json` dict.
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils.epath import Path  # Local folders and buckets alike (gs://).

from pathjax import provenance
from pathjax.probes.records import Record, check_unique
from pathjax.probes.report import figures
from pathjax.probes.report.context import ReportContext, Settings
from pathjax.probes.report.curve import learning_curve
from pathjax.probes.report.dose import dose_response
from pathjax.probes.report.effects import all_effects, headline_rows, levels, p5_order, p5_totals
from pathjax.probes.report.formatting import jsonable
from pathjax.probes.report.generations import generations_markdown
from pathjax.probes.report.index import run_of, scores_si
from pathjax.probes.report.leakage import leakage, vocabulary_overlap
from pathjax.probes.report.markdown import markdown_report
from pathjax.probes.report.specificity import specificity
from pathjax.probes.report.targets import p1
from pathjax.probes.schema import BASE_MODEL, FAMILY_LABELS, JSD_FAMILIES, PRIMARY_METRIC, ROLES

REPORT_FORMAT = "pathjax-probe-report/1"


def build_report(
    records: Sequence[Record],
    metadata: Mapping[str, Any] | None = None,
    *,
    config: Any = None,
    **settings: Any,
) -> dict[str, Any]:
    """Every number of the report as a JSON-ready dict (`Settings` fields as keywords).

    `config`: the study's config (its `data` and `eval` sections); when given, the lexical
    leakage of its training data (`leakage.vocabulary_overlap`) becomes metadata["leakage"].
    Without it, a "leakage" entry the caller put in `metadata` is reported as given."""
    return _build(records, _with_leakage(metadata, config), Settings(**settings))[0]


def _with_leakage(metadata: Mapping[str, Any] | None, config: Any) -> dict[str, Any]:
    metadata = dict(metadata or {})
    if config is not None:
        metadata["leakage"] = vocabulary_overlap(config)
    return metadata


def _build(records, metadata, cfg: Settings) -> tuple[dict[str, Any], ReportContext]:
    start = time.perf_counter()
    records = list(records)
    check_unique(records)
    ctx = ReportContext(records, metadata, cfg)
    # The sections in the order their notes read best (the notes keep the order they were
    # made in); no section reads what another left behind.
    inventory = _inventory(ctx)
    headline = headline_rows(ctx)
    effects = all_effects(ctx, headline)
    p1_section = p1(ctx)
    matrix, dissociation = specificity(ctx)
    report = {
        "format": REPORT_FORMAT,
        "metadata": dict(metadata),
        "settings": dataclasses.asdict(cfg),
        "n_records": len(records),
        **inventory,
        "roles": {r: (ctx.rx.role(r) if r != BASE_MODEL else BASE_MODEL) for r in ROLES},
        "headline": headline,
        "p1": p1_section,
        "learning_curve": learning_curve(metadata),
        "specificity": matrix,
        "dissociation": dissociation,
        "effects": effects,
        "levels": levels(ctx),
        "p5_totals": p5_totals(ctx),
        "p5_order": p5_order(ctx),
        "dose_response": dose_response(ctx),
        "lexical_leakage": leakage(ctx),
        "notes": ctx.notes,
    }
    report["seconds"] = round(time.perf_counter() - start, 3)
    return jsonable(report), ctx


def _inventory(ctx: ReportContext) -> dict[str, Any]:
    """What the records hold: each model's condition, seeds and runs, each family's metrics and
    items; a note for each family, the base model or the control adapter that is missing."""
    rx = ctx.rx
    models = {
        m: {
            "condition": rx.condition.get(m),
            "seeds": sorted(rx.seeds[m], key=lambda s: (s is not None, s)),
            "steps": sorted({s for s, _ in rx.runs[m]}, key=lambda s: (s is not None, s)),
            "multipliers": sorted({x for _, x in rx.runs[m]}),
            "target_class": ctx.target(m),
        }
        for m in rx.models
    }
    families = {}
    for f in rx.families:
        items = {r.item_id for m in rx.metrics(f) for r in rx.get(f, m)}
        families[f] = {
            "name": FAMILY_LABELS.get(f, f),
            "primary_metric": PRIMARY_METRIC.get(f),
            "metrics": rx.metrics(f),
            "n_items": len(items),
            "items_by_key": rx.keys_of(f) if f != "P1" else {},
        }
    for f, label in FAMILY_LABELS.items():
        if f not in families:
            ctx.note(f"{f} ({label}): no records; skipped.")
    if not ctx.has_base:
        ctx.note("No base-model records: no paired deltas, effects or contrasts.")
    if ctx.control is None:
        ctx.note(
            "No control adapter: control-relative statements (X-C, multiples of the "
            "control shift) are not available."
        )
    return {"models": models, "families": families}


# --------------------------------------------------------------------------------------------
# Figures and the files.


def _jsd_values(ctx: ReportContext) -> dict[str, dict[str, np.ndarray]]:
    """Per JSD family, each model's per-item JSD from B (mean over seeds): the figures' input."""
    out = {}
    for f in JSD_FAMILIES:
        recs = ctx.rx.get(f, "jsd_bits")
        panel = {}
        for m in ctx.rx.models:
            _, _, s_si = scores_si(recs, m, run_of(m))
            if s_si.size and np.isfinite(s_si).all():
                panel[m] = s_si.mean(axis=0)
        if panel:
            out[f"{f} {FAMILY_LABELS[f]}"] = panel
    return out


def write_report(
    records: Sequence[Record],
    generations: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any],
    out_dir: str | Path,
    *,
    config: Any = None,
    **settings: Any,
) -> dict[str, Path | pathlib.Path]:
    """Write report.json, report.md, figures/*.png, generations.md, provenance.json and (with
    `config`) config.json into `out_dir`; return
    {name: path} ("report.json", "report.md", "generations.md", "figures/<name>.png").
    `config` as in `build_report`; keywords: the `Settings` fields (n_resamples,
    n_permutations, ci, seed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = list(records)
    report, ctx = _build(records, _with_leakage(metadata, config), Settings(**settings))
    start = time.perf_counter()
    figs = figures.report_figures(report, _jsd_values(ctx), out_dir / "figures")
    report["figures"] = {k: str(p.relative_to(out_dir)) for k, p in figs.items()}
    report["seconds_figures"] = round(time.perf_counter() - start, 3)
    report["provenance"] = provenance.collect()
    provenance.write(str(out_dir), config)
    paths = {
        "report.json": out_dir / "report.json",
        "report.md": out_dir / "report.md",
        "generations.md": out_dir / "generations.md",
    }
    paths["report.json"].write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    paths["report.md"].write_text(markdown_report(report, list(report["figures"].values())))
    paths["generations.md"].write_text(generations_markdown(list(generations or []), records))
    paths.update({str(p.relative_to(out_dir)): p for p in figs.values()})
    # Local files as pathlib paths, as callers know them; a bucket's as epath paths.
    return {k: p if "://" in str(p) else pathlib.Path(p) for k, p in paths.items()}
