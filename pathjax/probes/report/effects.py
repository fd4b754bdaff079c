"""The report's per-family sections: shifts against B (and the headline's shifts against the
control, Holm-adjusted per model), raw levels, P5 scale totals and the lexical-leakage check.

Each function takes the shared `ReportContext`, so that an effect computed for one section
(the headline, say) is reused, not recomputed, by the next.
"""

from collections.abc import Mapping
from typing import Any

from pathjax.probes import stats
from pathjax.probes.report_context import ReportContext
from pathjax.probes.report_records import _framing
from pathjax.probes.schema import PRIMARY_METRIC, TRAIT_KEYS


def headline_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    """Per family x trait key, each adapter's shift against B and against the control."""
    rx = ctx.rx
    rows = []
    for f in rx.families:
        metric = PRIMARY_METRIC.get(f)
        if metric is None:
            continue
        if (f, metric) not in rx.by_fm:
            ctx.note(f"{f}: no records of the primary metric {metric!r}; not in the headline.")
            continue
        keys = [k for k in TRAIT_KEYS if rx.keys_of(f).get(k, 0) >= 2] or [None]
        for key in keys:
            rows.append({"family": f, "metric": metric, "key": key})
    out = []
    for row in rows:
        args = (row["family"], row["metric"], row["key"])
        ctrl = ctx.effect(ctx.control, *args) if ctx.control else None
        adapters = {}
        for m in ctx.adapters:
            if m == ctx.control:
                continue
            got = ctx.effect(m, *args)
            if got is None:
                continue
            adapters[m] = {
                "effect": got[0],
                "vs_control": ctx.vs_control(got[1], ctrl[1]) if ctrl else None,
            }
        if ctrl is None and not adapters:
            continue
        ref = ctrl[0] if ctrl else next(iter(adapters.values()))["effect"]
        out.append(
            {
                **row,
                "n_items": ref.n_items,
                "control": ctrl[0] if ctrl else None,
                "adapters": adapters,
            }
        )
    # Holm across the families reported, per model.
    flat = [(r, m) for r in out for m in r["adapters"]]
    flat += [(r, None) for r in out if r["control"] is not None]
    summaries = [r["adapters"][m]["effect"] if m else r["control"] for r, m in flat]
    adjusted = stats.holm_across_families(summaries, group_by=("model",))
    for (r, m), s in zip(flat, adjusted, strict=True):
        key = (s.model, r["family"], r["metric"], r["key"], None)
        # The cache keeps the adjusted summary: `all_effects` reports the same p_holm.
        ctx.effects[key] = (s, ctx.effects[key][1])
        if m:
            r["adapters"][m]["effect"] = s
        else:
            r["control"] = s
    return out


def all_effects(ctx: ReportContext) -> list[stats.EffectSummary]:
    """Every adapter's shift against B on every metric of P2-P7 (all items, and the keyed
    subsets the headline computed)."""
    for f in ctx.rx.families:
        if f == "P1":
            continue
        for metric in ctx.rx.metrics(f):
            for m in ctx.adapters:
                ctx.effect(m, f, metric)
    return [v[0] for k, v in ctx.effects.items() if v is not None and k[4] is None]


def levels(ctx: ReportContext) -> list[dict[str, Any]]:
    """Every model's mean score on every metric of P2-P7."""
    out = []
    for f in ctx.rx.families:
        if f == "P1":
            continue
        for metric in ctx.rx.metrics(f):
            recs = ctx.rx.get(f, metric)
            for m in ctx.rx.models:
                lv = ctx.level(recs, m, what=f"{f}/{metric}")
                if lv:
                    out.append({"family": f, "metric": metric, "key": None, "model": m, **lv})
    return out


def p5_totals(ctx: ReportContext) -> list[dict[str, Any]]:
    """P5 scale totals (sum over a scale's items) per trait key, framing and model."""
    metric = PRIMARY_METRIC["P5"]
    if ("P5", metric) not in ctx.rx.by_fm:
        return []
    framings = sorted({_framing(r.item_id) for r in ctx.rx.get("P5", metric)})
    out = []
    for key in TRAIT_KEYS:
        for framing in framings:
            recs = ctx.rx.get("P5", metric, key=key, framing=framing)
            for m in ctx.rx.models:
                lv = ctx.level(recs, m, total=True, what=f"P5 total {key}/{framing}")
                if lv:
                    out.append({"key": key, "framing": framing, "model": m, **lv})
    return out


def leakage(ctx: ReportContext) -> dict[str, Any]:
    """The P4 lexicon shifts with all words and with the words unseen in training only."""
    info = ctx.metadata.get("leakage")
    info = dict(info) if isinstance(info, Mapping) else {}
    comparison = []
    for m in ctx.adapters:
        for metric in ("neg_share", "threat_minus_sad"):
            pair = [ctx.effects.get((m, "P4", x, None, None)) for x in (metric, f"{metric}_unseen")]
            if all(pair):
                comparison.append(
                    {
                        "model": m,
                        "metric": metric,
                        "all_words": _interval(pair[0][0]),
                        "unseen_words_only": _interval(pair[1][0]),
                    }
                )
    return {
        "probe_words_in_training_vocabulary": info.get("probe_words_in_training_vocabulary"),
        "fraction": info.get("fraction"),
        "lexicon_metrics_with_and_without": comparison,
    }


def _interval(s: stats.EffectSummary) -> dict[str, Any]:
    return {
        "mean_delta": s.mean_delta,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "n_items": s.n_items,
        "n_seeds": s.n_seeds,
    }


P5_ORDERS = ("low_first", "high_first")


def p5_order(ctx: ReportContext) -> list[dict[str, Any]]:
    """Each adapter's P5 shift per trait key with the scale listed low-first, high-first, and
    their mean (the primary metric). Opposite signs mean the shift follows the list's order
    (a position preference), not the items' content."""
    if not all(("P5", f"expected_score_{o}") in ctx.rx.by_fm for o in P5_ORDERS):
        return []
    out = []
    for m in ctx.adapters:
        for key in TRAIT_KEYS:
            row: dict[str, Any] = {"model": m, "key": key}
            for name, metric in (
                ("mean", "expected_score"),
                *((o, f"expected_score_{o}") for o in P5_ORDERS),
            ):
                got = ctx.effect(m, "P5", metric, key=key)
                row[name] = (
                    None
                    if not got
                    else {
                        "mean_delta": got[0].mean_delta,
                        "ci_low": got[0].ci_low,
                        "ci_high": got[0].ci_high,
                    }
                )
            if row["low_first"] and row["high_first"]:
                lo, hi = row["low_first"]["mean_delta"], row["high_first"]["mean_delta"]
                row["orders_disagree"] = bool(lo * hi < 0)
                out.append(row)
    return out
