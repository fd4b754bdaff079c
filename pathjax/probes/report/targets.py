"""The report's P1 section: did training take? Per split, every model's rate of choosing each
class, and each adapter's shift against B on its own target class (TARGET_CLASS)."""

from typing import Any

from pathjax.probes.report.context import ReportContext
from pathjax.probes.report.index import split_of
from pathjax.probes.schema import ACTION_CLASSES as P1_CLASSES
from pathjax.probes.schema import BASE_MODEL, HEADLINE_SPLIT, P1_SPLITS
from pathjax.probes.schema import OPTION_POSITIONS as POSITIONS


def p1(ctx: ReportContext) -> dict[str, Any] | None:
    rx = ctx.rx
    if "P1" not in rx.families:
        return None
    splits = sorted(
        {split_of(r.item_id) for m in rx.metrics("P1") for r in rx.get("P1", m)},
        key=lambda s: (P1_SPLITS.index(s) if s in P1_SPLITS else len(P1_SPLITS), s),
    )
    classes = [c for c in P1_CLASSES if ("P1", f"top_{c}") in rx.by_fm]
    models = [m for m in rx.models if m == BASE_MODEL or m in ctx.adapters]
    rates = []
    for split in splits:
        for m in models:
            for cls in classes:
                for kind in ("top", "p"):
                    recs = rx.get("P1", f"{kind}_{cls}", split=split)
                    lv = ctx.level(recs, m, what=f"P1/{kind}_{cls} ({split})")
                    if lv:
                        rates.append({"model": m, "split": split, "class": cls, "kind": kind, **lv})
    target = []
    for m in ctx.adapters:
        cls = ctx.target(m)
        if cls is None:
            continue
        for split in splits:
            target.append(_target_row(ctx, rates, m, cls, split))
    headline = HEADLINE_SPLIT if HEADLINE_SPLIT in splits else (splits[0] if splits else None)
    if headline != HEADLINE_SPLIT:
        ctx.note(f"P1: no {HEADLINE_SPLIT!r} split; the headline uses {headline!r}.")
    return {
        "splits": splits,
        "classes": classes,
        "headline_split": headline,
        "rates": rates,
        "target": target,
    }


def _target_row(ctx: ReportContext, rates, model: str, cls: str, split: str) -> dict[str, Any]:
    """`model`'s top-choice rate of its target class `cls` on `split`, B's, and its shifts."""

    def top_rate(m: str) -> dict[str, Any] | None:
        want = (m, split, cls, "top")
        return next(
            (r for r in rates if (r["model"], r["split"], r["class"], r["kind"]) == want), None
        )

    row = {"model": model, "class": cls, "split": split, "effects": {}}
    row["rate"] = top_rate(model)
    row["base_rate"] = top_rate(BASE_MODEL)
    metrics = (f"top_{cls}", f"top_{cls}_summed", f"p_{cls}")
    for metric in metrics + (f"p_{cls}_per_char", f"p_{cls}_calibrated"):
        got = ctx.effect(model, "P1", metric, split=split)
        if got:
            row["effects"][metric] = got[0]
    row["by_format"] = _rates_by_format(ctx, model, cls, split)
    return row


def item_format(item_id: str) -> str | None:
    """The format in a P1 item id `split/format/i`; None for ids without one (`split/i`)."""
    parts = item_id.split("/")
    return parts[1] if len(parts) == 3 else None


def _rates_by_format(ctx: ReportContext, model: str, cls: str, split: str) -> dict[str, Any]:
    """`model`'s and B's top-choice rate of `cls` per item format on `split`.

    A split mixes the lettered `choice` format with `narrative`; a small model can learn the
    narrative decision long before it learns to name the letter, which the pooled rate hides.
    """
    recs = ctx.rx.get("P1", f"top_{cls}", split=split)
    summed = ctx.rx.get("P1", f"top_{cls}_summed", split=split)
    out = {}
    for fmt in sorted({f for r in recs if (f := item_format(r.item_id))}):
        subset = [r for r in recs if item_format(r.item_id) == fmt]
        subset_summed = [r for r in summed if item_format(r.item_id) == fmt]
        what = f"P1/top_{cls} ({split}, {fmt})"
        out[fmt] = {
            "rate": ctx.level(subset, model, what=what),
            "base_rate": ctx.level(subset, BASE_MODEL, what=what),
            "rate_summed": ctx.level(subset_summed, model, what=what + " summed"),
            "base_rate_summed": ctx.level(subset_summed, BASE_MODEL, what=what + " summed"),
        }
        positions = _positions(ctx, model, cls, split, fmt)
        if positions:
            out[fmt]["positions"] = positions
    return out


def _positions(ctx: ReportContext, model: str, cls: str, split: str, fmt: str):
    """For a listed format: how often `model` and B pick each position (the letter
    histogram), and the best score of always answering one position for target `cls`."""

    def share(metric: str, who: str, value=None) -> list[float]:
        recs = [
            r
            for r in ctx.rx.get("P1", metric, split=split)
            if item_format(r.item_id) == fmt
            and r.model == who
            and r.step is None
            and r.multiplier in (0.0, 1.0)
        ]
        if value is None:
            return [r.score for r in recs]
        return [float(r.score == value) for r in recs]

    hist = {}
    for who in (model, BASE_MODEL):
        rates = [share(f"position_{k}", who) for k in range(POSITIONS)]
        if not all(rates):
            return None
        hist[who] = [sum(x) / len(x) for x in rates]
    slots = [share(f"slot_{cls}", model, float(k)) for k in range(POSITIONS)]
    if not all(slots):
        return None
    target_share = [sum(x) / len(x) for x in slots]
    return {
        "letters": list("ABCD"[:POSITIONS]),
        "model_picks": hist[model],
        "base_picks": hist[BASE_MODEL],
        "target_at": target_share,
        "same_position_baseline": max(target_share),
    }
