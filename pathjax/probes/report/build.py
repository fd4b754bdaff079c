"""The probe report: every number the study states, computed from per-item records only.

`write_report(records, generations, metadata, out_dir)` writes

- `report.json`: every number with its CI and n (`build_report` returns the same dict),
- `report.md`: the tables a person reads first, headline first (`markdown_report(report)`,
  a pure function of the JSON),
- `figures/*.png` (`pathjax.probes.figures`),
- `generations.md`: P6 completions side by side (`generations_markdown`).

The Markdown lives in `pathjax.probes.report_md` (report.md), `pathjax.probes.generations_md`
(generations.md) and `pathjax.probes.summary_md` (summary.md: several architectures' reports side
by side, `cross_architecture_summary`), over the formatting in `pathjax.probes.md_format`.
This module assembles the report; the sections are computed in
`report_effects` (shifts vs B and vs C, levels, P5 totals, lexical leakage), `report_targets`
(P1), `report_specificity` (matrix and S) and `report_dose`, all over one `ReportContext`
(`report_context`: records indexed by `report_records`, settings, notes, cached effects).

All statistics come from `pathjax.probes.stats` and `pathjax.probes.contrasts` (docs/PROBES.md,
"Statistics"): per family x model the paired deltas against B with a bootstrap CI (seeds then
items), the sign-flip p, d_z and the noise floors; Holm across the headline rows of each model;
the specificity matrix and the dissociation contrast S; dose-response when the records hold
several checkpoints or multipliers. The one statistic added here is the difference of an
adapter's shift from the control adapter's on the same items (crossed bootstrap: each model's
seeds drawn independently, one item draw shared), which the headline shows as "X-C".

Graceful degradation: whatever cannot be computed (a family absent, no control adapter, too
few items, a non-finite delta) is skipped and a note says why; the rest of the report stands.
Model roles follow the adapter conditions: "control", "depression", "paranoia" (the model of
that name, else the first whose condition it is); any other adapter (e.g. "shuffled") is
reported as itself.
"""

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pathjax.probes import figures
from pathjax.probes.generations_md import generations_markdown
from pathjax.probes.md_format import jsonable
from pathjax.probes.records import BASE_MODEL, Record, check_unique
from pathjax.probes.report_context import ReportContext, Settings
from pathjax.probes.report_curve import learning_curve
from pathjax.probes.report_dose import dose_response
from pathjax.probes.report_effects import (
    all_effects,
    headline_rows,
    leakage,
    levels,
    p5_order,
    p5_totals,
)
from pathjax.probes.report_md import markdown_report
from pathjax.probes.report_records import _run_of, _scores_si
from pathjax.probes.report_specificity import specificity
from pathjax.probes.report_targets import p1
from pathjax.probes.schema import FAMILY_LABELS as FAMILIES
from pathjax.probes.schema import JSD_FAMILIES, PRIMARY_METRIC, ROLES

REPORT_FORMAT = "pathjax-probe-report/1"


def build_report(
    records: Sequence[Record], metadata: Mapping[str, Any] | None = None, **settings: Any
) -> dict[str, Any]:
    """Every number of the report as a JSON-ready dict (`Settings` fields as keywords)."""
    return _build(records, metadata or {}, Settings(**settings))[0]


def _build(records, metadata, cfg: Settings) -> tuple[dict[str, Any], ReportContext]:
    start = time.perf_counter()
    records = list(records)
    check_unique(records)
    ctx = ReportContext(records, metadata, cfg)
    # The order matters: the headline's Holm-adjusted summaries enter the effect cache that
    # `all_effects` and `leakage` read, and the notes keep the order they were made in.
    inventory = _inventory(ctx)
    headline = headline_rows(ctx)
    effects = all_effects(ctx)
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
            "name": FAMILIES.get(f, f),
            "primary_metric": PRIMARY_METRIC.get(f),
            "metrics": rx.metrics(f),
            "n_items": len(items),
            "items_by_key": rx.keys_of(f) if f != "P1" else {},
        }
    for f in FAMILIES:
        if f not in families:
            ctx.note(f"{f} ({FAMILIES[f]}): no records; skipped.")
    if not ctx.has_base:
        ctx.note("No base-model records: no paired deltas, effects or contrasts.")
    if ctx.control is None:
        ctx.note(
            "No control adapter: control-relative statements (X-C, multiples of the "
            "control shift) are not available."
        )
    return {"models": models, "families": families}


# --------------------------------------------------------------------------------------------
# Figures and the entry point.


def _jsd_values(ctx: ReportContext) -> dict[str, dict[str, np.ndarray]]:
    """Per JSD family, each model's per-item JSD from B (mean over seeds): the figures' input."""
    out = {}
    for f in JSD_FAMILIES:
        recs = ctx.rx.get(f, "jsd_bits")
        panel = {}
        for m in ctx.rx.models:
            _, _, s_si = _scores_si(recs, m, _run_of(m))
            if s_si.size and np.isfinite(s_si).all():
                panel[m] = s_si.mean(axis=0)
        if panel:
            out[f"{f} {FAMILIES[f]}"] = panel
    return out


def write_report(
    records: Sequence[Record],
    generations: Sequence[Mapping[str, Any]],
    metadata: Mapping[str, Any],
    out_dir: str | Path,
    **settings: Any,
) -> dict[str, Path]:
    """Write report.json, report.md, figures/*.png and generations.md into `out_dir`; return
    {name: path} ("report.json", "report.md", "generations.md", "figures/<name>.png").
    Keywords: the `Settings` fields (n_resamples, n_permutations, ci, seed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = list(records)
    report, ctx = _build(records, metadata or {}, Settings(**settings))
    start = time.perf_counter()
    figs = figures.report_figures(report, _jsd_values(ctx), out_dir / "figures")
    report["figures"] = {k: str(p.relative_to(out_dir)) for k, p in figs.items()}
    report["seconds_figures"] = round(time.perf_counter() - start, 3)
    paths = {
        "report.json": out_dir / "report.json",
        "report.md": out_dir / "report.md",
        "generations.md": out_dir / "generations.md",
    }
    paths["report.json"].write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    paths["report.md"].write_text(markdown_report(report, list(report["figures"].values())))
    paths["generations.md"].write_text(generations_markdown(list(generations or []), records))
    paths.update({str(p.relative_to(out_dir)): p for p in figs.values()})
    return paths
