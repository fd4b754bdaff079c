"""`report.md`: the study report, headline first, then the detail; a pure function of the
`report.json` dict that `pathjax.probes.report.build` builds."""

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pathjax.probes.report.formatting import (
    ci,
    family_label,
    interval,
    jsonable,
    number,
    p_value,
    table,
)
from pathjax.probes.schema import BASE_MODEL, FAMILY_LABELS


def markdown_report(report: Mapping[str, Any], figure_paths: Sequence[str] = ()) -> str:
    """`report.md` from the `report.json` dict: headline first, then the detail."""
    md = report.get("metadata") or {}
    base = md.get("base_model") or md.get("base") or md.get("model") or "unknown"
    models = ", ".join(report["models"]) or "none"
    out = [
        "# Probe report",
        "",
        f"Base model: {base}. Models: {models}. {report['n_records']} records.",
        "",
    ]
    out += _headline_md(report)
    out += _p1_md(report.get("p1"))
    out += _curve_md(report.get("learning_curve"))
    out += _p5_order_md(report.get("p5_order") or [])
    out += _effects_md(report)
    out += _levels_md(report)
    out += _dose_md(report.get("dose_response") or [])
    out += ["## Run", ""] + _metadata_md(md) + _provenance_md(report.get("provenance")) + [""]
    if figure_paths:
        out += ["## Figures", ""] + [f"![{Path(p).stem}]({p})" for p in figure_paths] + [""]
    out += ["## Notes", ""] + ([f"- {n}" for n in report["notes"]] or ["None."]) + [""]
    return "\n".join(out)


def _provenance_md(block: Mapping[str, Any] | None) -> list[str]:
    """Where the report came from, in one line (the whole block is in report.json)."""
    if not block:
        return []
    git = block.get("git") or {}
    commit = git.get("commit", "")[:12] + (" with local changes" if git.get("dirty") else "")
    devices = block.get("devices") or {}
    libraries = block.get("libraries") or {}
    versions = ", ".join(f"{k} {v}" for k, v in libraries.items() if v and k in _SHOWN)
    return [
        f"- Made by pathjax {block.get('pathjax')}"
        + (f" at commit {commit}" if commit else "")
        + f" on {devices.get('count')} {devices.get('backend')} device(s) "
        f"({', '.join(devices.get('kinds') or [])}), {block.get('date')}; {versions}. "
        "Full provenance and config: report.json, config.json."
    ]


_SHOWN = ("jax", "flax", "transformers", "numpy")


def _headline_md(report: Mapping[str, Any]) -> list[str]:
    control = report["roles"].get("control")
    rows = report["headline"]
    out = ["## Headline", ""]
    ci_pct = f"{100 * report['settings']['ci']:.0f}%"
    if rows:
        out += [
            "### Shifts against the base model B, per probe family (primary metric)",
            "",
            f"Shift: mean paired shift vs B in the metric's units [{ci_pct} bootstrap CI]; "
            "p_Holm: sign-flip p, Holm-adjusted across the families reported (per model); "
            "xC, x seed sd: the shift as a multiple of the control adapter's |shift| and of the "
            "sd across seeds of the per-seed shift"
            + (
                "; minus C: the shift minus the control adapter's on the same items."
                if control
                else "."
            ),
            "",
        ]
        header = ["probe", "metric", "n", "model", "shift vs B [CI]", "d_z", "p_Holm"]
        header += ["xC", "minus C [CI]", "p (minus C)"] if control else []
        # The seed floor exists only where an adapter has several seeds.
        with_seeds = any(
            a["effect"]["seed_sd"] is not None for r in rows for a in r["adapters"].values()
        )
        header += ["seed sd", "x seed sd"] if with_seeds else []
        body = []
        for r in rows:
            models = ([(control, r["control"], None)] if r["control"] else []) + [
                (m, a["effect"], a["vs_control"]) for m, a in r["adapters"].items()
            ]
            for i, (m, e, v) in enumerate(models):
                line = [
                    family_label(r) if i == 0 else "",
                    r["metric"] if i == 0 else "",
                    r["n_items"] if i == 0 else "",
                    m,
                    ci(e),
                    number(e["d_z"], True),
                    p_value(e["p_holm"]),
                ]
                if control:
                    line += [
                        number(e["control_multiple"]),
                        ci(v, "mean_difference"),
                        p_value(v["p"]) if v else "-",
                    ]
                if with_seeds:
                    line += [number(e["seed_sd"]), number(e["seed_sd_multiple"])]
                body.append(line)
        out += table(header, body) + [""]
    else:
        out += ["No probe family could be compared with the base model.", ""]

    p1 = report.get("p1")
    if p1 and p1["target"]:
        split = p1["headline_split"]
        out += [f"### Did training take? P1 target-class top-choice rate ({split})", ""]
        t = [
            [
                r["model"],
                r["class"],
                ci(r["rate"], "mean", False),
                ci(r["base_rate"], "mean", False),
                ci(r["effects"].get(f"top_{r['class']}")),
                _by_format(r),
                (r["rate"] or {}).get("n_items", "-"),
                (r["rate"] or {}).get("n_seeds", "-"),
            ]
            for r in p1["target"]
            if r["split"] == split
        ]
        header = "adapter|target class|rate [CI]|B rate [CI]|shift vs B [CI]|by format (B)|n|seeds"
        out += table(header, t)
        out += [
            "",
            "P1 is in the training format: it checks that training worked; the claims rest on "
            "P2-P7.",
            "",
        ]

    out += _specificity_md(report)
    out += ["### Caveats", ""] + [f"- {c}" for c in _caveats(report)] + [""]
    return out


def _specificity_md(report: Mapping[str, Any]) -> list[str]:
    out = ["### Specificity matrix", ""]
    m = report.get("specificity")
    if m:
        out += [
            "Standardized shift (d_z pooled over "
            + ", ".join(sorted(m["metric_by_family"]))
            + ") of each model on the depression- and paranoia-keyed probes "
            + f"[{100 * m['ci_level']:.0f}% CI].",
            "",
        ]
        rows = [
            [model]
            + [
                interval(m["d_z"][i][k], m["ci_low"][i][k], m["ci_high"][i][k])
                for k in range(len(m["keys"]))
            ]
            + [m["n_seeds"][i]]
            for i, model in enumerate(m["models"])
        ]
        rows.append(["n items"] + m["n_items"] + [""])
        out += table(["model"] + [f"{k}-keyed" for k in m["keys"]] + ["seeds"], rows) + [""]
    else:
        out += ["Not computed (see the notes).", ""]
    s = report.get("dissociation")
    out += ["### Dissociation contrast S", ""]
    if s:
        verdict = (
            "each adapter moves its own probes more than the other's (CI excludes 0)"
            if s["ci_low"] is not None and s["ci_low"] > 0
            else "the reverse pattern (CI below 0)"
            if s["ci_high"] is not None and s["ci_high"] < 0
            else "no evidence of a dissociation at this n (CI includes 0)"
        )
        out += [
            "S = (D on depression probes - D on paranoia probes) - (P on depression probes - P on "
            "paranoia probes), on the standardized shifts above.",
            "",
            f"**S = {ci(s, 's')}**, permutation p {p_value(s['p'])}; items "
            + ", ".join(f"{n} {k}-keyed" for k, n in s["n_items"].items())
            + "; seeds "
            + ", ".join(f"{m} {n}" for m, n in s["n_seeds"].items())
            + f": {verdict}.",
            "",
        ]
    else:
        out += ["Not computed (see the notes).", ""]
    return out


def _caveats(report: Mapping[str, Any]) -> list[str]:
    out = []
    control = report["roles"].get("control")
    if control is None:
        out.append(
            "No control adapter: nothing separates these shifts from what any fine-tuning does; "
            "control-relative statements are not available."
        )
    else:
        # Shifts whose CI excludes 0 but that are within twice the control adapter's shift.
        small = [
            f"{m} on {family_label(r)} ({number(e['control_multiple'])}xC)"
            for r in report["headline"]
            for m, a in r["adapters"].items()
            for e in [a["effect"]]
            if e["control_multiple"] is not None
            and abs(e["control_multiple"]) < 2
            and (e["ci_low"] > 0 or e["ci_high"] < 0)
        ]
        out.append(
            "Noise floor: the control adapter's shift is what fine-tuning alone does; a shift "
            "under twice it is not specific to the trained behaviour"
            + (
                f". Clear shifts within that floor: {'; '.join(small)}."
                if small
                else "; no clear headline shift is within it."
            )
        )
    order_rows = report.get("p5_order") or []
    flipped = [f"{r['model']} ({r['key']}-keyed)" for r in order_rows if r.get("orders_disagree")]
    if flipped:
        out.append(
            f"P5 scale order: for {len(flipped)} of {len(order_rows)} adapter-scale pairs the "
            "shift changes sign when the scale is listed the other way round "
            f"({', '.join(flipped)}): those shifts follow a list position; the primary score "
            "averages both orders."
        )
    seeds = {m: len(v["seeds"]) for m, v in report["models"].items() if m != BASE_MODEL}
    if seeds and max(seeds.values()) < 2:
        out.append(
            "One seed per adapter: the seed-to-seed spread is unknown; the CIs cover item "
            "sampling only."
        )
    leak = report.get("lexical_leakage") or {}
    if leak.get("fraction") is not None or leak.get("probe_words_in_training_vocabulary"):
        words = leak.get("probe_words_in_training_vocabulary") or []
        out.append(
            f"Lexical leakage: {number(leak.get('fraction'))} of the probe words occur in the "
            f"training data ({len(words)} words, listed in report.json); P4 lexicon metrics are "
            "also given over unseen words only (`*_unseen`)."
        )
    else:
        out.append("Lexical leakage: no training-vocabulary overlap was supplied in the metadata.")
    for c in leak.get("lexicon_metrics_with_and_without") or []:
        out.append(
            f"{c['model']} P4 {c['metric']}: {ci(c['all_words'])} with all lexicon words, "
            f"{ci(c['unseen_words_only'])} with unseen words only."
        )
    out.append(
        f"CIs from {report['settings']['n_resamples']} bootstrap resamples, p from "
        f"{report['settings']['n_permutations']} permutations (exact below 17 items)."
    )
    return out


def _p1_md(p1: Mapping[str, Any] | None) -> list[str]:
    if not p1:
        return ["## P1 held-out decisions", "", "No P1 records.", ""]
    out = [
        "## P1 held-out decisions",
        "",
        "Target-class rate of each adapter, every split. The pick is the option with the "
        "highest mean log-probability per character (not length-biased); the summed pick, "
        "which prefers short options, stands beside it.",
        "",
    ]
    rows = [
        [
            r["model"],
            r["class"],
            r["split"],
            ci(r["rate"], "mean", False),
            ci(r["base_rate"], "mean", False),
            ci(r["effects"].get(f"top_{r['class']}")),
            _summed_rate(r),
            ci(r["effects"].get(f"p_{r['class']}")),
            _by_format(r),
            (r["rate"] or {}).get("n_items", "-"),
        ]
        for r in p1["target"]
    ]
    header = "adapter|target|split|top rate|B top rate|top rate shift|summed pick (B)"
    header += "|probability shift|by format (B)|n"
    out += table(header, rows) + [""]
    out += _positions_md(p1)
    out += ["Top-choice rate of every class, every model:", ""]
    rows = []
    cells = {(r["model"], r["split"], r["class"]): r for r in p1["rates"] if r["kind"] == "top"}
    for split in p1["splits"]:
        for m in dict.fromkeys(r["model"] for r in p1["rates"]):
            got = [cells.get((m, split, c)) for c in p1["classes"]]
            if any(got):
                n = next(g for g in got if g)["n_items"]
                rows.append([m, split] + [ci(g, "mean", False) for g in got] + [n])
    return out + table(["model", "split"] + list(p1["classes"]) + ["n"], rows) + [""]


def _p5_order_md(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []

    def shift(d: Mapping[str, Any] | None) -> str:
        return ci(d) if d else "-"

    out = [
        "## P5 by the order of the scale",
        "",
        "Every Likert item is asked with its scale listed low-to-high and high-to-low; the "
        "primary score is their mean. A shift whose sign flips with the order follows a "
        "preference for a list position, not the item's content.",
        "",
    ]
    body = [
        [
            r["model"],
            r["key"],
            shift(r["low_first"]),
            shift(r["high_first"]),
            shift(r["mean"]),
            "yes" if r.get("orders_disagree") else "no",
        ]
        for r in rows
    ]
    header = (
        "adapter|key|shift, low first [CI]|shift, high first [CI]|mean of both [CI]|signs differ"
    )
    return out + table(header, body) + [""]


def _curve_md(curve: Mapping[str, Any] | None) -> list[str]:
    """The learning curve: each run's pick rate per split at every evaluation."""
    if not curve:
        return []
    out = [
        "## Learning curve (did training take, and when?)",
        "",
        "Each adapter's rate of picking its target option (highest mean log-probability per "
        "character; summed pick in brackets) on items of validation and of the held-out "
        "splits scored during training, at every evaluation step.",
        "",
    ]
    rows = []
    for run in curve["runs"]:
        for split, points in run["splits"].items():
            for pt in points:
                formats = ", ".join(f"{f} {number(v)}" for f, v in sorted(pt["by_format"].items()))
                rows.append(
                    [
                        run["run"],
                        split,
                        pt["step"],
                        pt["examples"],
                        f"{number(pt['accuracy'])} ({number(pt['summed'])})",
                        formats or "-",
                    ]
                )
    header = "run|split|step|examples seen|target pick rate (summed)|by format"
    return out + table(header, rows) + [""]


def _summed_rate(row: Mapping[str, Any]) -> str:
    """The summed-score pick's target rate pooled over formats, B's in brackets."""
    got = [v for v in (row.get("by_format") or {}).values() if v.get("rate_summed")]
    if not got:
        return "-"
    n = sum(v["rate_summed"]["n_items"] for v in got)
    rate = sum(v["rate_summed"]["mean"] * v["rate_summed"]["n_items"] for v in got) / n
    base = [v["base_rate_summed"] for v in got if v.get("base_rate_summed")]
    b = sum(x["mean"] * x["n_items"] for x in base) / max(sum(x["n_items"] for x in base), 1)
    return f"{number(rate)} ({number(b)})"


def _positions_md(p1: Mapping[str, Any]) -> list[str]:
    """Listed formats: each model's picks per position against the best constant answer."""
    rows = []
    for r in p1["target"]:
        for fmt, v in (r.get("by_format") or {}).items():
            pos = v.get("positions")
            if not pos:
                continue
            picks = " / ".join(number(x) for x in pos["model_picks"])
            base = " / ".join(number(x) for x in pos["base_picks"])
            rows.append(
                [
                    r["model"],
                    r["split"],
                    fmt,
                    picks,
                    base,
                    number((v["rate"] or {}).get("mean")),
                    number(pos["same_position_baseline"]),
                ]
            )
    if not rows:
        return []
    out = [
        "Position picked in the listed formats (A / B / C / D), against the best score of "
        "always answering one position for the adapter's target:",
        "",
    ]
    header = "adapter|split|format|picks A/B/C/D|B picks A/B/C/D|target rate|same-position baseline"
    return out + table(header, rows) + [""]


def _by_format(row: Mapping[str, Any]) -> str:
    """`choice 0.12 (0.25), narrative 1.00 (0.08)`: the target rate per format, B's in brackets."""

    def mean(level: Mapping[str, Any] | None) -> str:
        return number((level or {}).get("mean"))

    cells = [
        f"{fmt} {mean(v['rate'])} ({mean(v['base_rate'])})"
        for fmt, v in (row.get("by_format") or {}).items()
    ]
    return ", ".join(cells) or "-"


def _effects_md(report: Mapping[str, Any]) -> list[str]:
    out = ["## Effects by family (every metric, all items, final checkpoints)", ""]
    by_family: dict[str, list] = defaultdict(list)
    for e in report["effects"]:
        by_family[e["family"]].append(e)
    for f in sorted(by_family):
        out += [f"### {f} {FAMILY_LABELS.get(f, '')}", ""]
        rows = [
            [
                e["metric"],
                e["key"] or "all",
                e["model"],
                ci(e),
                e["n_items"],
                e["n_seeds"],
                p_value(e["p"]),
                p_value(e["p_holm"]),
                number(e["d_z"], True),
                number(e["control_shift"]),
                number(e["control_multiple"]),
                number(e["seed_sd"]),
                number(e["seed_sd_multiple"]),
            ]
            for e in sorted(by_family[f], key=lambda e: (e["metric"], e["key"] or "", e["model"]))
        ]
        header = "metric|items|model|shift vs B [CI]|n|seeds|p|p_Holm|d_z|control floor|xC"
        header += "|seed sd|x seed sd"
        out += table(header, rows) + [""]
    if not by_family:
        out += ["No effects (see the notes).", ""]
    return out


def _levels_md(report: Mapping[str, Any]) -> list[str]:
    out = []
    p4 = [lv for lv in report["levels"] if lv["family"] == "P4" and lv["metric"] != "kl_model_base"]
    if p4:
        out += ["## Lexicon mass on open stems (P4), levels", ""]
        out += table(
            ["metric", "model", "mean [CI]", "n"],
            [[lv["metric"], lv["model"], ci(lv, "mean", False), lv["n_items"]] for lv in p4],
        ) + [""]
    totals = report.get("p5_totals") or []
    if totals:
        out += [
            "## Likert scale totals (P5)",
            "",
            "Sum over the items of one key and framing of "
            "the expected item score (reverse keying applied).",
            "",
        ]
        out += table(
            ["key", "framing", "model", "total [CI]", "items"],
            [
                [t["key"], t["framing"], t["model"], ci(t, "mean", False), t["n_items"]]
                for t in totals
            ],
        ) + [""]
    return out


def _dose_md(doses: Sequence[Mapping[str, Any]]) -> list[str]:
    out = ["## Dose-response", ""]
    if not doses:
        return out + ["No model has several checkpoints or multipliers in the records.", ""]
    rows = [
        [
            d["model"],
            d["by"],
            f"{d['family']}/{d['metric']}",
            d["key"] or "all",
            ", ".join(
                f"{number(x)}: {number(y, True)}"
                for x, y in zip(d["levels_l"], d["mean_delta_l"], strict=True)
            ),
            interval(d["slope"], d["slope_ci_low"], d["slope_ci_high"]),
            interval(d["spearman_rho"], d["rho_ci_low"], d["rho_ci_high"]),
            p_value(d["p_trend"]),
            d["n_items"],
        ]
        for d in doses
    ]
    header = "model|by|probe|items|level: mean shift|slope [CI]|Spearman rho [CI]|p trend|n"
    return out + table(header, rows) + [""]


def _metadata_md(md: Mapping[str, Any]) -> list[str]:
    if not md:
        return ["No metadata."]
    out = []
    for k, v in md.items():
        if k == "leakage":
            continue
        if isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values()):
            cols = list(dict.fromkeys(c for x in v.values() for c in x))
            out += ["", f"**{k}**", ""]
            out += table(
                [""] + cols, [[name] + [_short(x.get(c)) for c in cols] for name, x in v.items()]
            )
            out.append("")
        else:
            out.append(f"- **{k}**: {_short(v)}")
    return out


def _short(v: Any, limit: int = 300) -> str:
    if isinstance(v, float):
        return number(v)
    if isinstance(v, list | tuple) and all(not isinstance(x, Mapping | list) for x in v):
        text = ", ".join(map(str, v))
    else:
        text = v if isinstance(v, str) else json.dumps(jsonable(v))
    return text if len(text) <= limit else text[: limit - 3] + "..."
