"""PNG figures of the probe report (docs/PROBES.md, "Report"), drawn from plain numbers.

Every plotting function takes already-computed values (means with CI bounds, per-item arrays),
writes one PNG and returns its path, or returns None when there is nothing to draw;
`report_figures` lays out all of a report's figures from the `report.json` dict. Nothing here
reads records or computes statistics: `pathjax.probes.report.build` does that.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot, so
drawing touches no global backend state and works on machines without a display.
"""

import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils.epath import Path  # Local folders and buckets alike (gs://).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pathjax.probes.schema import BASE_MODEL

# A value with its CI: (estimate, low, high); None where a model has no value.
Bar = tuple[float, float, float] | None

DPI = 110
_ROLE_COLORS = {
    BASE_MODEL: "0.55",
    "control": "tab:green",
    "depression": "tab:blue",
    "paranoia": "tab:red",
    "shuffled": "tab:purple",
}
_OTHER_COLORS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    """A fixed color per role (B gray, C green, D blue, P red), others from a cycle."""
    out, spare = {}, iter(_OTHER_COLORS * (1 + len(models) // len(_OTHER_COLORS)))
    for m in models:
        out[m] = _ROLE_COLORS.get(m) or next(spare)
    return out


def _grid(n_panels: int, ncols_max: int = 3, panel_w: float = 4.6, panel_h: float = 3.4):
    ncols = min(n_panels, ncols_max)
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(panel_w * ncols, panel_h * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Bytes, then epath: matplotlib writes local files only, epath writes buckets too.
    png = io.BytesIO()
    fig.savefig(png, dpi=DPI, format="png")
    path.write_bytes(png.getvalue())
    return path


def jsd_distributions(
    values: Mapping[str, Mapping[str, np.ndarray]], path: Path, ylabel: str = "JSD to B (bits)"
) -> Path | None:
    """Box plots of per-item values, one panel per probe (`values[panel][model] = [items]`)."""
    panels = {k: {m: np.asarray(v) for m, v in d.items() if len(v)} for k, d in values.items()}
    panels = {k: d for k, d in panels.items() if d}
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, (title, by_model) in zip(axes, panels.items(), strict=True):
        models = list(by_model)
        colors = model_colors(models)
        parts = ax.boxplot(
            [by_model[m] for m in models],
            tick_labels=models,
            showmeans=True,
            patch_artist=True,
            flierprops={"markersize": 2},
        )
        for box, m in zip(parts["boxes"], models, strict=True):
            box.set_facecolor(colors[m])
            box.set_alpha(0.6)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=20)
    return _save(fig, path)


def specificity_heatmap(
    models: Sequence[str],
    keys: Sequence[str],
    d_z_mk: np.ndarray,
    ci_low_mk: np.ndarray,
    ci_high_mk: np.ndarray,
    path: Path,
) -> Path | None:
    """Rows models, columns probe keys; color = standardized shift, text = value and CI."""
    d_z_mk = np.asarray(d_z_mk, dtype=float)
    if d_z_mk.size == 0:
        return None
    lo_mk, hi_mk = np.asarray(ci_low_mk, float), np.asarray(ci_high_mk, float)
    fig = Figure(figsize=(2.2 + 2.1 * len(keys), 1.2 + 0.75 * len(models)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    vmax = max(float(np.nanmax(np.abs(d_z_mk))), 0.1)
    im = ax.imshow(d_z_mk, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    for m in range(len(models)):
        for k in range(len(keys)):
            text = f"{d_z_mk[m, k]:+.2f}\n[{lo_mk[m, k]:+.2f}, {hi_mk[m, k]:+.2f}]"
            dark = abs(d_z_mk[m, k]) > 0.6 * vmax
            ax.text(k, m, text, ha="center", va="center", fontsize=8, color="w" if dark else "k")
    ax.set_xticks(range(len(keys)), [f"{k}-keyed" for k in keys])
    ax.set_yticks(range(len(models)), list(models))
    ax.set_title("Specificity: standardized shift vs B")
    fig.colorbar(im, ax=ax, label="standardized shift (d_z)")
    return _save(fig, path)


def grouped_bars(panels: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Bars with CI whiskers. Each panel: `title`, `ylabel`, `groups` (x positions) and `series`
    ({model: [Bar per group]}); models side by side within a group."""
    panels = [p for p in panels if any(b is not None for s in p["series"].values() for b in s)]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        groups, series = list(panel["groups"]), dict(panel["series"])
        colors = model_colors(list(series))
        width = 0.8 / max(1, len(series))
        for j, (model, bars) in enumerate(series.items()):
            x, y, err = [], [], [[], []]
            for g, bar in enumerate(bars):
                if bar is None:
                    continue
                est, lo, hi = bar
                x.append(g - 0.4 + width * (j + 0.5))
                y.append(est)
                err[0].append(max(0.0, est - lo))
                err[1].append(max(0.0, hi - est))
            ax.bar(x, y, width, yerr=err, capsize=2, color=colors[model], label=model, alpha=0.85)
        ax.set_xticks(range(len(groups)), groups)
        ax.tick_params(axis="x", labelrotation=15 if len(groups) > 3 else 0)
        ax.axhline(0.0, color="k", linewidth=0.6)
        ax.set_title(panel.get("title", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.legend(fontsize=7)
    return _save(fig, path)


def forest(panels: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Horizontal CI plots, one panel per unit of measurement. Each panel: `title`, `xlabel`
    and `rows` [{label, model, estimate, low, high}], drawn top to bottom."""
    panels = [p for p in panels if p["rows"]]
    if not panels:
        return None
    n_rows = max(len(p["rows"]) for p in panels)
    fig, axes = _grid(len(panels), ncols_max=2, panel_w=5.5, panel_h=0.9 + 0.3 * n_rows)
    for ax, panel in zip(axes, panels, strict=True):
        rows = list(panel["rows"])
        colors = model_colors(list(dict.fromkeys(r["model"] for r in rows)))
        for y, r in enumerate(rows):
            ax.errorbar(
                r["estimate"],
                -y,
                xerr=[[max(0.0, r["estimate"] - r["low"])], [max(0.0, r["high"] - r["estimate"])]],
                fmt="o",
                color=colors[r["model"]],
                markersize=4,
                capsize=2,
            )
        ax.set_yticks([-y for y in range(len(rows))], [r["label"] for r in rows], fontsize=8)
        ax.set_ylim(-len(rows) + 0.5, 0.5)
        ax.axvline(0.0, color="k", linewidth=0.6)
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.set_xlabel(panel.get("xlabel", ""))
    return _save(fig, path)


def dose_curves(panels: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Mean delta against level with a CI band. Each panel: `title`, `xlabel`, `ylabel` and
    `curves` [{model, levels, mean, low, high, optional label}]."""
    panels = [p for p in panels if p["curves"]]
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        colors = model_colors([c["model"] for c in panel["curves"]])
        for c in panel["curves"]:
            x = np.asarray(c["levels"], float)
            label = c.get("label", c["model"])
            ax.plot(x, c["mean"], "o-", color=colors[c["model"]], label=label, markersize=3)
            ax.fill_between(x, c["low"], c["high"], color=colors[c["model"]], alpha=0.2)
        ax.axhline(0.0, color="k", linewidth=0.6)
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.legend(fontsize=7)
    return _save(fig, path)


def learning_curves(curve: Mapping[str, Any], path: Path) -> Path | None:
    """One panel per split: each run's target pick rate against examples seen."""
    splits = sorted({split for run in curve["runs"] for split in run["splits"]})
    if not splits:
        return None
    fig, axes = _grid(len(splits))
    # Runs are "<condition>-seed<s>": a condition keeps its role color across seeds.
    colors = model_colors(
        list(dict.fromkeys(run["run"].split("-seed")[0] for run in curve["runs"]))
    )
    for ax, split in zip(axes, splits, strict=True):
        for run in curve["runs"]:
            points = run["splits"].get(split) or []
            if points:
                x = [p["examples"] for p in points]
                y = _floats([p["accuracy"] for p in points])
                color = colors[run["run"].split("-seed")[0]]
                ax.plot(x, y, "o-", color=color, label=run["run"], markersize=3)
        ax.axhline(0.25, color="k", linewidth=0.6, linestyle=":")  # Chance over 4 options.
        ax.set_ylim(0.0, 1.02)
        ax.set_title(f"Target pick rate, {split}")
        ax.set_xlabel("training examples seen")
        ax.set_ylabel("rate (per-character pick)")
        ax.legend(fontsize=7)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# The report's figures.


def _bar(d: Mapping[str, Any] | None, est: str = "mean") -> Bar:
    """(estimate, low, high) of a report entry; None when absent or not finite (JSON null)."""
    if not d or any(d[k] is None for k in (est, "ci_low", "ci_high")):
        return None
    return d[est], d["ci_low"], d["ci_high"]


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def report_figures(
    report: Mapping[str, Any], jsd_values: Mapping[str, Mapping[str, np.ndarray]], fig_dir: Path
) -> dict[str, Path]:
    """Every figure of a report (the `report.json` dict) into `fig_dir`: {name: path}.
    `jsd_values[panel][model]` holds per-item JSDs for the distribution plot."""
    fig_dir = Path(fig_dir)
    out: dict[str, Path | None] = {}
    models = list(report["models"])
    out["jsd_distributions"] = jsd_distributions(jsd_values, fig_dir / "jsd_distributions.png")
    m = report.get("specificity")
    if m:
        out["specificity"] = specificity_heatmap(
            m["models"],
            m["keys"],
            np.array([_floats(row) for row in m["d_z"]]),
            np.array([_floats(row) for row in m["ci_low"]]),
            np.array([_floats(row) for row in m["ci_high"]]),
            fig_dir / "specificity.png",
        )
    names = {f: v.get("name", "") for f, v in report.get("families", {}).items()}
    panels: dict[tuple[str, str], list] = defaultdict(list)
    for r in report["headline"]:
        pairs = [(report["roles"]["control"], r["control"])] if r["control"] else []
        for mm, e in pairs + [(k, a["effect"]) for k, a in r["adapters"].items()]:
            if _bar(e, "mean_delta") is None:
                continue
            label = f"{r['key']}-keyed: {mm}" if r["key"] else mm
            panels[r["family"], r["metric"]].append(
                {
                    "label": label,
                    "model": mm,
                    "estimate": e["mean_delta"],
                    "low": e["ci_low"],
                    "high": e["ci_high"],
                }
            )
    out["headline_shifts"] = forest(
        [
            {"title": f"{f} {names.get(f, '')}", "xlabel": f"{metric}: shift vs B", "rows": rows}
            for (f, metric), rows in panels.items()
        ],
        fig_dir / "headline_shifts.png",
    )
    levels = {(lv["family"], lv["metric"], lv["model"]): lv for lv in report["levels"]}
    panels = []
    for title, metrics in (
        ("NEG/(NEG+POS)", ("neg_share", "neg_share_unseen")),
        ("lexicon mass", ("mass_negative", "mass_positive", "mass_sad", "mass_threat")),
        ("THREAT - SAD", ("threat_minus_sad", "threat_minus_sad_unseen")),
    ):
        panels.append(
            {
                "title": f"P4 {title}",
                "ylabel": "mean over stems",
                "groups": list(metrics),
                "series": {mm: [_bar(levels.get(("P4", x, mm))) for x in metrics] for mm in models},
            }
        )
    out["p4_lexicon"] = grouped_bars(panels, fig_dir / "p4_lexicon.png")
    totals = report.get("p5_totals") or []
    if totals:
        framings = sorted({t["framing"] for t in totals})
        keys = list(dict.fromkeys(t["key"] for t in totals))
        cell = {(t["key"], t["framing"], t["model"]): t for t in totals}
        panels = [
            {
                "title": f"P5 {k}-keyed scale",
                "ylabel": "scale total",
                "groups": framings,
                "series": {mm: [_bar(cell.get((k, fr, mm))) for fr in framings] for mm in models},
            }
            for k in keys
        ]
        out["p5_scales"] = grouped_bars(panels, fig_dir / "p5_scales.png")
    p1 = report.get("p1")
    if p1:
        cell = {(r["model"], r["split"], r["class"]): r for r in p1["rates"] if r["kind"] == "top"}
        panels = [
            {
                "title": f"P1 {split}",
                "ylabel": "top-choice rate",
                "groups": p1["classes"],
                "series": {
                    mm: [_bar(cell.get((mm, split, c))) for c in p1["classes"]] for mm in models
                },
            }
            for split in p1["splits"]
        ]
        out["p1_rates"] = grouped_bars(panels, fig_dir / "p1_rates.png")
    curve = report.get("learning_curve")
    if curve:
        out["learning_curve"] = learning_curves(curve, fig_dir / "learning_curve.png")
    doses = report.get("dose_response") or []
    if doses:
        groups: dict[tuple, list] = defaultdict(list)
        for d in doses:
            # P1: each adapter's own target class, one panel.
            metric = "target-class top rate" if d["family"] == "P1" else d["metric"]
            groups[(d["by"], d["family"], metric)].append(
                {
                    "model": d["model"],
                    "label": d["model"] + (f" ({d['key']}-keyed)" if d.get("key") else ""),
                    "levels": _floats(d["levels_l"]),
                    "mean": _floats(d["mean_delta_l"]),
                    "low": _floats(d["ci_low_l"]),
                    "high": _floats(d["ci_high_l"]),
                }
            )
        panels = [
            {"title": f"{f} {metric}", "xlabel": by, "ylabel": "shift vs B", "curves": cs}
            for (by, f, metric), cs in groups.items()
        ]
        out["dose_response"] = dose_curves(panels, fig_dir / "dose_response.png")
    return {k: v for k, v in out.items() if v is not None}
