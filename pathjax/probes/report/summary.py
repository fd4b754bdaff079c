"""`summary.md`: several architectures' probe reports side by side, and whether their main
effects point the same way; read from each architecture's `report.json`."""

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from etils.epath import Path  # Local folders and buckets alike (gs://).

from pathjax.probes.report.formatting import (
    ci,
    family_label,
    model_order,
    number,
    p_value,
    table,
)
from pathjax.probes.schema import BASE_MODEL, HEADLINE_SPLIT, TRAIT_KEYS

# The roles whose shifts on their own probes are the main effects: the two trait adapters.
_MAIN_ROLES = TRAIT_KEYS
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
    return ["## Architectures", ""] + table(header, rows) + [""]


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
        label = family_label({"family": f, "key": key})
        for i, role in enumerate(model_order(cells[f, metric, key])):
            es = [cells[f, metric, key][role].get(a) for a in archs]
            first = i == 0
            rows.append(
                [label if first else "", metric if first else "", role]
                + [ci(e) for e in es]
                + [_agree(es)]
            )
            if role in _MAIN_ROLES and key in (role, None) and not _divergence(metric):
                main.append((f"{role} on {label}", dict(zip(archs, es, strict=True))))
    out += table(["probe", "metric", "adapter"] + archs + ["direction"], rows)
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
        if split and split != HEADLINE_SPLIT:
            other_split[a] = split
        for r in p1.get("target") or []:
            if r["split"] == split:
                rows_by[_role(rep, r["model"]), r["class"]][a] = r
    out = [f"## P1 target-class top-choice rate ({HEADLINE_SPLIT})", ""]
    if not rows_by:
        return out + ["No architecture has P1 target-class records.", ""], []
    if other_split:
        where = ", ".join(f"{a} on {s}" for a, s in other_split.items())
        out += [f"Without a {HEADLINE_SPLIT} split: {where}.", ""]
    order = model_order({role for role, _ in rows_by})
    rows, main = [], []
    for role, cls in sorted(rows_by, key=lambda x: (order.index(x[0]), x[1])):
        rs = [rows_by[role, cls].get(a) for a in archs]
        shifts = [r["effects"].get(f"top_{cls}") if r else None for r in rs]
        rows.append([role, cls] + [_rate(r) for r in rs] + [_agree(shifts)])
        main.append((f"{role} P1 {cls} rate", dict(zip(archs, shifts, strict=True))))
    out += table(["adapter", "target class"] + archs + ["direction of shift vs B"], rows)
    note = "Cells: top-choice rate [CI] (B's rate). P1 is in the training format."
    return out + ["", note, ""], main


def _rate(r: Mapping[str, Any] | None) -> str:
    if not r or not r.get("rate"):
        return "-"
    return f"{ci(r['rate'], 'mean', False)} (B {number((r['base_rate'] or {}).get('mean'))})"


def _dissociation_across(loaded: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[_Main]]:
    rows, by_arch = [], {}
    for a, rep in loaded.items():
        s = by_arch[a] = rep.get("dissociation")
        if s:
            items = ", ".join(f"{n} {k}-keyed" for k, n in s["n_items"].items())
            rows.append([a, ci(s, "s"), p_value(s["p"]), items])
        else:
            rows.append([a, "-", "-", "not computed"])
    out = ["## Dissociation contrast S", ""]
    out += table(["architecture", "S [CI]", "p", "items"], rows)
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
