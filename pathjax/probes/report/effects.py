"""The report's per-family sections: shifts against B (and the headline's shifts against the
control, Holm-adjusted per model), raw levels, P5 scale totals and P5 by the scale's order.

Each function takes the shared `ReportContext`, whose shifts are computed once however many
sections ask for them. The one derived value, the headline's Holm adjustment, travels in the
headline rows: `all_effects` takes them as its argument.
"""

from typing import Any

from pathjax.probes import stats
from pathjax.probes.report.context import ReportContext
from pathjax.probes.report.index import framing_of
from pathjax.probes.schema import PRIMARY_METRIC, TRAIT_KEYS


def headline_rows(ctx: ReportContext) -> list[dict[str, Any]]:
    """Per family x trait key, each adapter's shift against B and against the control; p_holm
    adjusted across the rows, per model."""
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
        if m:
            r["adapters"][m]["effect"] = s
        else:
            r["control"] = s
    return out


def all_effects(ctx: ReportContext, headline: list[dict[str, Any]]) -> list[stats.EffectSummary]:
    """Every adapter's shift against B on every metric of P2-P7 on all items, and the keyed
    subsets of the headline: the `headline` rows' summaries first (with their p_holm), then
    the rest, family by family."""
    out: dict[tuple[str, str, str, str | None], stats.EffectSummary] = {}
    for row in headline:
        control = [row["control"]] if row["control"] is not None else []
        for s in control + [a["effect"] for a in row["adapters"].values()]:
            out[s.model, s.family, s.metric, s.key] = s
    for f in ctx.rx.families:
        if f == "P1":
            continue
        for metric in ctx.rx.metrics(f):
            for m in ctx.adapters:
                got = ctx.effect(m, f, metric)
                if got is not None:
                    out.setdefault((m, f, metric, None), got[0])
    return list(out.values())


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
    framings = sorted({framing_of(r.item_id) for r in ctx.rx.get("P5", metric)})
    out = []
    for key in TRAIT_KEYS:
        for framing in framings:
            recs = ctx.rx.get("P5", metric, key=key, framing=framing)
            for m in ctx.rx.models:
                lv = ctx.level(recs, m, total=True, what=f"P5 total {key}/{framing}")
                if lv:
                    out.append({"key": key, "framing": framing, "model": m, **lv})
    return out


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
