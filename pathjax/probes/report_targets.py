"""The report's P1 section: did training take? Per split, every model's rate of choosing each
class, and each adapter's shift against B on its own target class (TARGET_CLASS)."""

from typing import Any

from pathjax.probes.records import BASE_MODEL
from pathjax.probes.report_context import ReportContext
from pathjax.probes.report_records import _split

P1_SPLITS = ("test_templates", "test_domains", "test_format")
HEADLINE_SPLIT = "test_domains"
P1_CLASSES = ("withdrawal", "suspicion", "adaptive", "neutral")


def p1(ctx: ReportContext) -> dict[str, Any] | None:
    rx = ctx.rx
    if "P1" not in rx.families:
        return None
    splits = sorted(
        {_split(r.item_id) for m in rx.metrics("P1") for r in rx.get("P1", m)},
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
    for metric in (f"top_{cls}", f"p_{cls}", f"p_{cls}_per_char", f"p_{cls}_calibrated"):
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
    out = {}
    for fmt in sorted({f for r in recs if (f := item_format(r.item_id))}):
        subset = [r for r in recs if item_format(r.item_id) == fmt]
        what = f"P1/top_{cls} ({split}, {fmt})"
        out[fmt] = {
            "rate": ctx.level(subset, model, what=what),
            "base_rate": ctx.level(subset, BASE_MODEL, what=what),
        }
    return out
