"""The probe report in Markdown: `report.md` and `generations.md`, and the summary across
architectures; pure functions of the `report.json` dict that `pathjax.probes.report` builds.

`pathjax.probes.report` re-exports every public name here. The family names, the role order
and the JSON conversion live here because both modules use them and this one must not import
the builder (which imports it).
"""

import dataclasses
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pathjax.probes.records import BASE_MODEL, Record

FAMILIES = {
    "P1": "held-out decisions",
    "P2": "ambiguous situations",
    "P3": "minimal pairs",
    "P4": "open stems, lexicon mass",
    "P5": "Likert items",
    "P6": "free generations",
    "P7": "generic drift",
}
ROLES = (BASE_MODEL, "control", "depression", "paranoia")


def _model_order(models) -> list[str]:
    return sorted(models, key=lambda m: (ROLES.index(m) if m in ROLES else len(ROLES), m))


def _jsonable(x: Any) -> Any:
    """Plain JSON: dataclasses and numpy to Python, non-finite floats to null."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, bool | int | str):
        return x
    return str(x)


# --------------------------------------------------------------------------------------------
# Markdown.


def _f(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:+.0f}" if signed else f"{x:.0f}"
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def _iv(est: Any, low: Any, high: Any, signed: bool = True) -> str:
    return f"{_f(est, signed)} [{_f(low, signed)}, {_f(high, signed)}]"


def _ci(d: Mapping[str, Any] | None, est: str = "mean_delta", signed: bool = True) -> str:
    return "-" if not d else _iv(d[est], d["ci_low"], d["ci_high"], signed)


def _p(p: Any) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3g}")


def _table(header: str | Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; `header` may be one "a|b|c" string."""
    header = header.split("|") if isinstance(header, str) else header
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", "<br>")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _label(row: Mapping[str, Any]) -> str:
    key = f", {row['key']}-keyed" if row.get("key") else ""
    return f"{row['family']} {FAMILIES.get(row['family'], '')}{key}"


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
        table = []
        for r in rows:
            models = ([(control, r["control"], None)] if r["control"] else []) + [
                (m, a["effect"], a["vs_control"]) for m, a in r["adapters"].items()
            ]
            for i, (m, e, v) in enumerate(models):
                line = [
                    _label(r) if i == 0 else "",
                    r["metric"] if i == 0 else "",
                    r["n_items"] if i == 0 else "",
                    m,
                    _ci(e),
                    _f(e["d_z"], True),
                    _p(e["p_holm"]),
                ]
                if control:
                    line += [
                        _f(e["control_multiple"]),
                        _ci(v, "mean_difference"),
                        _p(v["p"]) if v else "-",
                    ]
                if with_seeds:
                    line += [_f(e["seed_sd"]), _f(e["seed_sd_multiple"])]
                table.append(line)
        out += _table(header, table) + [""]
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
                _ci(r["rate"], "mean", False),
                _ci(r["base_rate"], "mean", False),
                _ci(r["effects"].get(f"top_{r['class']}")),
                (r["rate"] or {}).get("n_items", "-"),
                (r["rate"] or {}).get("n_seeds", "-"),
            ]
            for r in p1["target"]
            if r["split"] == split
        ]
        out += _table("adapter|target class|rate [CI]|B rate [CI]|shift vs B [CI]|n|seeds", t)
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
                _iv(m["d_z"][i][k], m["ci_low"][i][k], m["ci_high"][i][k])
                for k in range(len(m["keys"]))
            ]
            + [m["n_seeds"][i]]
            for i, model in enumerate(m["models"])
        ]
        rows.append(["n items"] + m["n_items"] + [""])
        out += _table(["model"] + [f"{k}-keyed" for k in m["keys"]] + ["seeds"], rows) + [""]
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
            f"**S = {_ci(s, 's')}**, permutation p {_p(s['p'])}; items "
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
            f"{m} on {_label(r)} ({_f(e['control_multiple'])}xC)"
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
            f"Lexical leakage: {_f(leak.get('fraction'))} of the probe words occur in the training "
            f"data ({len(words)} words, listed in report.json); P4 lexicon metrics are also given "
            "over unseen words only (`*_unseen`)."
        )
    else:
        out.append("Lexical leakage: no training-vocabulary overlap was supplied in the metadata.")
    for c in leak.get("lexicon_metrics_with_and_without") or []:
        out.append(
            f"{c['model']} P4 {c['metric']}: {_ci(c['all_words'])} with all lexicon words, "
            f"{_ci(c['unseen_words_only'])} with unseen words only."
        )
    out.append(
        f"CIs from {report['settings']['n_resamples']} bootstrap resamples, p from "
        f"{report['settings']['n_permutations']} permutations (exact below 17 items)."
    )
    return out


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
    out += _effects_md(report)
    out += _levels_md(report)
    out += _dose_md(report.get("dose_response") or [])
    out += ["## Run", ""] + _metadata_md(md) + [""]
    if figure_paths:
        out += ["## Figures", ""] + [f"![{Path(p).stem}]({p})" for p in figure_paths] + [""]
    out += ["## Notes", ""] + ([f"- {n}" for n in report["notes"]] or ["None."]) + [""]
    return "\n".join(out)


def _p1_md(p1: Mapping[str, Any] | None) -> list[str]:
    if not p1:
        return ["## P1 held-out decisions", "", "No P1 records.", ""]
    out = ["## P1 held-out decisions", "", "Target-class rate of each adapter, every split:", ""]
    rows = [
        [
            r["model"],
            r["class"],
            r["split"],
            _ci(r["rate"], "mean", False),
            _ci(r["base_rate"], "mean", False),
            _ci(r["effects"].get(f"top_{r['class']}")),
            _ci(r["effects"].get(f"p_{r['class']}")),
            (r["rate"] or {}).get("n_items", "-"),
        ]
        for r in p1["target"]
    ]
    header = "adapter|target|split|top rate|B top rate|top rate shift|probability shift|n"
    out += _table(header, rows) + [""]
    out += ["Top-choice rate of every class, every model:", ""]
    rows = []
    cells = {(r["model"], r["split"], r["class"]): r for r in p1["rates"] if r["kind"] == "top"}
    for split in p1["splits"]:
        for m in dict.fromkeys(r["model"] for r in p1["rates"]):
            got = [cells.get((m, split, c)) for c in p1["classes"]]
            if any(got):
                n = next(g for g in got if g)["n_items"]
                rows.append([m, split] + [_ci(g, "mean", False) for g in got] + [n])
    return out + _table(["model", "split"] + list(p1["classes"]) + ["n"], rows) + [""]


def _effects_md(report: Mapping[str, Any]) -> list[str]:
    out = ["## Effects by family (every metric, all items, final checkpoints)", ""]
    by_family: dict[str, list] = defaultdict(list)
    for e in report["effects"]:
        by_family[e["family"]].append(e)
    for f in sorted(by_family):
        out += [f"### {f} {FAMILIES.get(f, '')}", ""]
        rows = [
            [
                e["metric"],
                e["key"] or "all",
                e["model"],
                _ci(e),
                e["n_items"],
                e["n_seeds"],
                _p(e["p"]),
                _p(e["p_holm"]),
                _f(e["d_z"], True),
                _f(e["control_shift"]),
                _f(e["control_multiple"]),
                _f(e["seed_sd"]),
                _f(e["seed_sd_multiple"]),
            ]
            for e in sorted(by_family[f], key=lambda e: (e["metric"], e["key"] or "", e["model"]))
        ]
        header = "metric|items|model|shift vs B [CI]|n|seeds|p|p_Holm|d_z|control floor|xC"
        header += "|seed sd|x seed sd"
        out += _table(header, rows) + [""]
    if not by_family:
        out += ["No effects (see the notes).", ""]
    return out


def _levels_md(report: Mapping[str, Any]) -> list[str]:
    out = []
    p4 = [lv for lv in report["levels"] if lv["family"] == "P4" and lv["metric"] != "kl_model_base"]
    if p4:
        out += ["## Lexicon mass on open stems (P4), levels", ""]
        out += _table(
            ["metric", "model", "mean [CI]", "n"],
            [[lv["metric"], lv["model"], _ci(lv, "mean", False), lv["n_items"]] for lv in p4],
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
        out += _table(
            ["key", "framing", "model", "total [CI]", "items"],
            [
                [t["key"], t["framing"], t["model"], _ci(t, "mean", False), t["n_items"]]
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
                f"{_f(x)}: {_f(y, True)}"
                for x, y in zip(d["levels_l"], d["mean_delta_l"], strict=True)
            ),
            _iv(d["slope"], d["slope_ci_low"], d["slope_ci_high"]),
            _iv(d["spearman_rho"], d["rho_ci_low"], d["rho_ci_high"]),
            _p(d["p_trend"]),
            d["n_items"],
        ]
        for d in doses
    ]
    header = "model|by|probe|items|level: mean shift|slope [CI]|Spearman rho [CI]|p trend|n"
    return out + _table(header, rows) + [""]


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
            out += _table(
                [""] + cols, [[name] + [_short(x.get(c)) for c in cols] for name, x in v.items()]
            )
            out.append("")
        else:
            out.append(f"- **{k}**: {_short(v)}")
    return out


def _short(v: Any, limit: int = 300) -> str:
    if isinstance(v, float):
        return _f(v)
    if isinstance(v, list | tuple) and all(not isinstance(x, Mapping | list) for x in v):
        text = ", ".join(map(str, v))
    else:
        text = v if isinstance(v, str) else json.dumps(_jsonable(v))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Generations.


def generations_markdown(
    generations: Sequence[Mapping[str, Any]], records: Sequence[Record] = ()
) -> str:
    """P6 completions side by side: per prompt, a table of samples x models (B, and every
    adapter's final checkpoint at multiplier 1; several seeds get a column each)."""
    keys = {r.item_id: r.key for r in records if r.family == "P6"}
    out = ["# Generations", ""]
    kept = [
        g
        for g in generations
        if g.get("model")
        and (
            g["model"] == BASE_MODEL or (g.get("step") is None and g.get("multiplier", 1.0) == 1.0)
        )
    ]
    if not kept:
        return "\n".join(out + ["No generations.", ""])
    column = lambda g: g["model"] + (f" (seed {g['seed']})" if g.get("seed") is not None else "")
    seeds = defaultdict(set)
    for g in kept:
        seeds[g["model"]].add(g.get("seed"))
    label = lambda g: column(g) if len(seeds[g["model"]]) > 1 else g["model"]
    order = {m: i for i, m in enumerate(_model_order(seeds))}
    columns = sorted(
        {label(g): (order[g["model"]], str(g.get("seed"))) for g in kept}.items(),
        key=lambda x: x[1],
    )
    columns = [c for c, _ in columns]
    out += [f"Final checkpoints at multiplier 1; columns: {', '.join(columns)}.", ""]
    by_prompt: dict[str, list] = defaultdict(list)
    for g in kept:
        by_prompt[str(g.get("item_id"))].append(g)
    for pid in sorted(by_prompt):
        gs = by_prompt[pid]
        key = f" ({keys[pid]}-keyed)" if pid in keys else ""
        prompt = next((g.get("prompt") for g in gs if g.get("prompt")), "")
        out += [f"## {pid}{key}", ""] + [f"> {line}" for line in str(prompt).splitlines()] + [""]
        cells = {(g.get("sample"), label(g)): str(g.get("text", "")).strip() for g in gs}
        samples = sorted({s for s, _ in cells}, key=lambda s: (s is None, str(s).zfill(8)))
        rows = [[s] + [cells.get((s, c), "") for c in columns] for s in samples]
        out += _table(["sample"] + columns, rows) + [""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Across architectures.

_MAIN_ROLES = ("depression", "paranoia")  # whose own-probe shifts are the main effects
# (what, {architecture: interval dict or None}): one effect whose direction is compared.
_Main = tuple[str, dict[str, Mapping[str, Any] | None]]


def cross_architecture_summary(reports: Mapping[str, str | Path]) -> str:
    """`summary.md`: several architectures' reports side by side.

    `reports` maps an architecture's name to the path of its `report.json`. Adapters are matched
    across architectures by role (control, depression, paranoia; any other adapter by name).
    The tables: each headline row (primary metric per family and key) with every adapter's shift
    vs B [CI] per architecture; the P1 target-class top-choice rate on the headline split
    (test_domains); the dissociation contrast S. Then whether the main effects point the same
    way everywhere: the depression and paranoia adapters on their own probes (divergences, never
    negative, left out), every adapter's P1 target-rate shift, and S; a direction counts where
    the CI excludes 0. Whatever an architecture's report lacks shows as "-".
    """
    loaded = {name: json.loads(Path(path).read_text()) for name, path in reports.items()}
    out = ["# Probe reports across architectures", ""]
    if not loaded:
        return "\n".join(out + ["No reports.", ""])
    shifts, main = _shifts_across(loaded)
    p1, p1_main = _p1_across(loaded)
    s, s_main = _dissociation_across(loaded)
    out += _architectures_md(loaded) + shifts + p1 + s
    out += ["## Do the directions agree?", ""]
    out += [_agreement_sentence(main + p1_main + s_main, len(loaded)), ""]
    return "\n".join(out)


def _architectures_md(loaded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    every = sorted({f for rep in loaded.values() for f in rep.get("families") or {}})
    rows = []
    for a, rep in loaded.items():
        md = rep.get("metadata") or {}
        base = md.get("base_model") or md.get("base") or md.get("model") or "-"
        adapters = [m for m in rep.get("models") or {} if m != BASE_MODEL]
        seeds = max((len(rep["models"][m]["seeds"]) for m in adapters), default=0)
        missing = [f for f in every if f not in (rep.get("families") or {})]
        rows.append([a, base, ", ".join(adapters) or "none", seeds, ", ".join(missing) or "none"])
    header = "architecture|base model|adapters|seeds per adapter|families missing"
    return ["## Architectures", ""] + _table(header, rows) + [""]


def _shifts_across(loaded: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[_Main]]:
    """Headline rows (family, metric, key) x adapter role, one column per architecture."""
    archs = list(loaded)
    cells: dict[tuple[str, str, str | None], dict[str, dict[str, Any]]] = defaultdict(dict)
    for a, rep in loaded.items():
        for r in rep.get("headline") or []:
            got = [(m, x["effect"]) for m, x in r["adapters"].items()]
            if r.get("control"):
                got.insert(0, (rep["roles"].get("control"), r["control"]))
            for m, e in got:
                cells[r["family"], r["metric"], r["key"]].setdefault(_role(rep, m), {})[a] = e
    out = ["## Shifts against B per probe family (primary metric)", ""]
    if not cells:
        return out + ["No architecture has a probe family compared with B.", ""], []
    rows, main = [], []
    for f, metric, key in sorted(cells, key=lambda x: (x[0], x[2] or "", x[1])):
        label = _label({"family": f, "key": key})
        for i, role in enumerate(_model_order(cells[f, metric, key])):
            es = [cells[f, metric, key][role].get(a) for a in archs]
            first = i == 0
            rows.append(
                [label if first else "", metric if first else "", role]
                + [_ci(e) for e in es]
                + [_agree(es)]
            )
            if role in _MAIN_ROLES and key in (role, None) and not _divergence(metric):
                main.append((f"{role} on {label}", dict(zip(archs, es, strict=True))))
    out += _table(["probe", "metric", "adapter"] + archs + ["direction"], rows)
    note = "Cells: mean paired shift vs B [CI]; '-': not in that architecture's report."
    return out + ["", note, ""], main


def _p1_across(loaded: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[_Main]]:
    """Each adapter's target-class top-choice rate on the headline split, per architecture."""
    archs = list(loaded)
    rows_by: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    other_split = {}
    for a, rep in loaded.items():
        p1 = rep.get("p1") or {}
        split = p1.get("headline_split")
        if split and split != "test_domains":
            other_split[a] = split
        for r in p1.get("target") or []:
            if r["split"] == split:
                rows_by[_role(rep, r["model"]), r["class"]][a] = r
    out = ["## P1 target-class top-choice rate (test_domains)", ""]
    if not rows_by:
        return out + ["No architecture has P1 target-class records.", ""], []
    if other_split:
        where = ", ".join(f"{a} on {s}" for a, s in other_split.items())
        out += [f"Without a test_domains split: {where}.", ""]
    order = _model_order({role for role, _ in rows_by})
    rows, main = [], []
    for role, cls in sorted(rows_by, key=lambda x: (order.index(x[0]), x[1])):
        rs = [rows_by[role, cls].get(a) for a in archs]
        shifts = [r["effects"].get(f"top_{cls}") if r else None for r in rs]
        rows.append([role, cls] + [_rate(r) for r in rs] + [_agree(shifts)])
        main.append((f"{role} P1 {cls} rate", dict(zip(archs, shifts, strict=True))))
    out += _table(["adapter", "target class"] + archs + ["direction of shift vs B"], rows)
    note = "Cells: top-choice rate [CI] (B's rate). P1 is in the training format."
    return out + ["", note, ""], main


def _rate(r: Mapping[str, Any] | None) -> str:
    if not r or not r.get("rate"):
        return "-"
    return f"{_ci(r['rate'], 'mean', False)} (B {_f((r['base_rate'] or {}).get('mean'))})"


def _dissociation_across(loaded: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[_Main]]:
    rows, by_arch = [], {}
    for a, rep in loaded.items():
        s = by_arch[a] = rep.get("dissociation")
        if s:
            items = ", ".join(f"{n} {k}-keyed" for k, n in s["n_items"].items())
            rows.append([a, _ci(s, "s"), _p(s["p"]), items])
        else:
            rows.append([a, "-", "-", "not computed"])
    out = ["## Dissociation contrast S", ""]
    out += _table(["architecture", "S [CI]", "p", "items"], rows)
    out += ["", "S > 0: each adapter moves its own probes more than the other's.", ""]
    return out, [("S", by_arch)]


def _role(report: Mapping[str, Any], model: str) -> str:
    """The role `model` plays in `report` (control, depression, paranoia), else its name."""
    return next((r for r, m in report["roles"].items() if m == model), model)


def _divergence(metric: str) -> bool:
    return metric.startswith(("jsd", "kl"))


def _direction(e: Mapping[str, Any] | None) -> str | None:
    """ "+" or "-" where the CI excludes 0, "0" where it includes 0, None where absent."""
    if not e or e.get("ci_low") is None or e.get("ci_high") is None:
        return None
    return "+" if e["ci_low"] > 0 else "-" if e["ci_high"] < 0 else "0"


def _agree(es: Sequence[Mapping[str, Any] | None]) -> str:
    """Across architectures: "agree (+)", "opposite", "partly (+ in 1 of 2)", "none clear",
    "one architecture" or "-" (nowhere)."""
    ds = [d for d in map(_direction, es) if d is not None]
    if len(ds) < 2:
        return "one architecture" if ds else "-"
    clear = sorted(set(ds) - {"0"})
    if len(clear) > 1:
        return "opposite"
    if not clear:
        return "none clear"
    sign = clear[0]
    return (
        f"agree ({sign})" if "0" not in ds else f"partly ({sign} in {ds.count(sign)} of {len(ds)})"
    )


def _agreement_sentence(main: Sequence[_Main], n_archs: int) -> str:
    if n_archs < 2:
        return "One architecture: nothing to compare."
    verdicts = {what: _agree(list(es.values())) for what, es in main}
    compared = {w: v for w, v in verdicts.items() if v not in ("-", "one architecture")}
    opposite = [w for w, v in compared.items() if v == "opposite"]
    agree = [w for w, v in compared.items() if v.startswith("agree")]
    if opposite:
        verdict = "The directions do not agree across architectures: " + "; ".join(opposite)
        verdict += " point opposite ways."
    elif agree:
        verdict = "The directions agree across architectures: no main effect points opposite ways."
    else:
        verdict = "No main effect is clear in two architectures: agreement cannot be judged."
    return (
        f"{verdict} Main effects: the depression and paranoia adapters on their own probes, every "
        "adapter's P1 target-rate shift, and S; a direction counts where the CI excludes 0. "
        f"Of the {len(main)}, {len(compared)} are in two or more architectures: {len(agree)} "
        f"point the same way in all of them, {len(opposite)} point opposite ways, and "
        f"{len(compared) - len(agree) - len(opposite)} are clear in only some of them or none."
    )
