"""The probe report: every number the study states, computed from per-item records only.

`write_report(records, generations, metadata, out_dir)` writes

- `report.json`: every number with its CI and n (`build_report` returns the same dict),
- `report.md`: the tables a person reads first, headline first (`markdown_report(report)`,
  a pure function of the JSON),
- `figures/*.png` (`pathjax.probes.figures`),
- `generations.md`: P6 completions side by side (`generations_markdown`).

The Markdown (those two and `cross_architecture_summary`, which sets several architectures'
reports side by side) lives in `pathjax.probes.report_md`; its public names are re-exported here.

All statistics come from `pathjax.probes.stats` and `pathjax.probes.contrasts` (PROBES.md,
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
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pathjax.probes import contrasts, figures, stats
from pathjax.probes.records import BASE_MODEL, Record, check_unique
from pathjax.probes.report_md import (  # the Markdown, re-exported: callers import it from here
    FAMILIES,
    ROLES,
    _jsonable,
    _model_order,
    cross_architecture_summary,  # noqa: F401
    generations_markdown,
    markdown_report,
)

REPORT_FORMAT = "pathjax-probe-report/1"
PRIMARY_METRIC = {
    "P2": "logodds_negative",
    "P3": "logodds_negative",
    "P4": "neg_share",
    "P5": "expected_score",
    "P6": "negative_per_100w",
    "P7": "jsd_bits",
}
P1_SPLITS = ("test_templates", "test_domains", "test_format")
HEADLINE_SPLIT = "test_domains"
P1_CLASSES = ("withdrawal", "suspicion", "adaptive", "neutral")
TARGET_CLASS = {"depression": "withdrawal", "paranoia": "suspicion", "control": "adaptive"}
TRAIT_KEYS = contrasts.SPECIFICITY_KEYS  # ("depression", "paranoia")
SPECIFICITY_FAMILIES = ("P2", "P3", "P5", "P6")  # keyed families outside the training format
JSD_FAMILIES = ("P2", "P4", "P7")
_FINAL, _BASE_RUN = (None, 1.0), (None, 0.0)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resampling sizes: modest defaults, so that a full report takes seconds on 2 cores."""

    n_resamples: int = 1000
    n_permutations: int = 1000
    ci: float = 0.95
    seed: int = 0


# --------------------------------------------------------------------------------------------
# Records, grouped for selection (the stats functions scan whatever list they are given).


def _split(item_id: str) -> str:
    return item_id.split("/", 1)[0] if "/" in item_id else "all"


def _framing(item_id: str) -> str:
    return item_id.rsplit("/", 1)[1] if "/" in item_id else "all"


def _run_of(model: str) -> tuple[int | None, float]:
    return _BASE_RUN if model == BASE_MODEL else _FINAL


class _Records:
    def __init__(self, records: Sequence[Record]):
        self.by_fm: dict[tuple[str, str], list[Record]] = defaultdict(list)
        self.present: set[tuple[str, str, str, int | None, float]] = set()
        self.runs: dict[str, set[tuple[int | None, float]]] = defaultdict(set)
        self.seeds: dict[str, set[int | None]] = defaultdict(set)
        conditions: dict[str, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
        self.item_keys: dict[str, dict[str, str]] = defaultdict(dict)  # family -> item -> key
        for r in records:
            self.by_fm[r.family, r.metric].append(r)
            self.present.add((r.model, r.family, r.metric, r.step, r.multiplier))
            self.runs[r.model].add((r.step, r.multiplier))
            self.seeds[r.model].add(r.seed)
            conditions[r.model][r.condition] += 1
            if r.family != "P1":
                self.item_keys[r.family].setdefault(r.item_id, r.key)
        self.models = _model_order(self.runs)
        self.condition = {m: max(c, key=c.get) for m, c in conditions.items()}
        self.families = sorted({f for f, _ in self.by_fm})
        self._cache: dict[tuple[Any, ...], list[Record]] = {}

    def metrics(self, family: str) -> list[str]:
        have = sorted({m for f, m in self.by_fm if f == family})
        primary = PRIMARY_METRIC.get(family)
        return ([primary] if primary in have else []) + [m for m in have if m != primary]

    def has(self, model: str, family: str, metric: str, run=None) -> bool:
        return (model, family, metric, *(run or _run_of(model))) in self.present

    def get(self, family, metric, *, split=None, key=None, framing=None) -> list[Record]:
        cache_key = (family, metric, split, key, framing)
        if cache_key not in self._cache:
            rs = self.by_fm.get((family, metric), [])
            if split is not None:
                rs = [r for r in rs if _split(r.item_id) == split]
            if key is not None:
                rs = [r for r in rs if r.key == key]
            if framing is not None:
                rs = [r for r in rs if _framing(r.item_id) == framing]
            self._cache[cache_key] = rs
        return self._cache[cache_key]

    def keys_of(self, family: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for k in self.item_keys.get(family, {}).values():
            counts[k] += 1
        return dict(counts)

    def role(self, condition: str) -> str | None:
        """The adapter playing `condition`: the model of that name, else the first with it."""
        adapters = [m for m in self.models if m != BASE_MODEL and _FINAL in self.runs[m]]
        if condition in adapters:
            return condition
        return next((m for m in adapters if self.condition.get(m) == condition), None)


def _scores_si(recs: Sequence[Record], model: str, run) -> tuple[list[str], list, np.ndarray]:
    """(items, seeds, scores [seeds, items]) of one model and run; items common to all seeds."""
    by_seed: dict[Any, dict[str, float]] = defaultdict(dict)
    for r in recs:
        if r.model == model and (r.step, r.multiplier) == run:
            by_seed[r.seed][r.item_id] = r.score
    if not by_seed:
        return [], [], np.zeros((0, 0))
    items = sorted(set.intersection(*(set(d) for d in by_seed.values())))
    seeds = sorted(by_seed, key=lambda s: (s is not None, s))
    return items, seeds, np.array([[by_seed[s][i] for i in items] for s in seeds], dtype=float)


# --------------------------------------------------------------------------------------------
# The computations.


class _Builder:
    def __init__(self, records: Sequence[Record], metadata: Mapping[str, Any], cfg: Settings):
        self.rx = _Records(records)
        self.metadata = dict(metadata or {})
        self.cfg = cfg
        self.notes: list[str] = []
        self._effects: dict[tuple[Any, ...], tuple[stats.EffectSummary, Any] | None] = {}
        self.control = self.rx.role("control")
        self.adapters = [m for m in self.rx.models if m != BASE_MODEL and _FINAL in self.rx.runs[m]]
        self.has_base = BASE_MODEL in self.rx.runs

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def target(self, model: str) -> str | None:
        return TARGET_CLASS.get(self.rx.condition.get(model) or "")

    # -- one model's level (raw mean score) and shift (paired delta) -------------------------

    def level(self, recs, model, *, total=False, what="") -> dict[str, Any] | None:
        items, seeds, s_si = _scores_si(recs, model, _run_of(model))
        if not items:
            return None
        try:
            iv = stats.bootstrap_ci(
                s_si, n_resamples=self.cfg.n_resamples, ci=self.cfg.ci, seed=self.cfg.seed
            )
        except ValueError as e:
            self.note(f"{what} {model}: no level ({e})")
            return None
        f = float(len(items)) if total else 1.0
        return {
            "mean": iv.estimate * f,
            "ci_low": iv.low * f,
            "ci_high": iv.high * f,
            "ci_level": self.cfg.ci,
            "n_items": len(items),
            "n_seeds": len(seeds),
        }

    def effect(self, model, family, metric, key=None, split=None):
        """(EffectSummary, PairedDeltas) of `model` against B, or None with a note."""
        cache_key = (model, family, metric, key, split)
        if cache_key in self._effects:
            return self._effects[cache_key]
        self._effects[cache_key] = None
        recs = self.rx.get(family, metric, split=split)
        where = (
            f"{family}/{metric}" + (f" ({split})" if split else "") + (f" [{key}]" if key else "")
        )
        if not (self.has_base and self.rx.has(model, family, metric)):
            return None
        try:
            pd = stats.paired_deltas(recs, model, family=family, metric=metric, key=key)
        except ValueError as e:
            # Items missing or non-finite for some model: compare on the items all have.
            recs, dropped = self._usable(recs, model)
            try:
                pd = stats.paired_deltas(recs, model, family=family, metric=metric, key=key)
            except ValueError:
                self.note(f"{where} {model}: no paired deltas ({e})")
                return None
            self.note(f"{where} {model}: {dropped} items left out ({e})")
        floor = None
        if self.control not in (None, model) and self.rx.has(self.control, family, metric):
            try:
                floor = stats.control_floor(
                    recs, family=family, metric=metric, key=key, control=self.control
                )
            except ValueError as e:
                self.note(f"{where}: no control floor ({e})")
        try:
            summary = self._summarize(pd, floor)
        except ValueError as e:
            self.note(f"{where} {model}: no summary ({e})")
            return None
        self._effects[cache_key] = (summary, pd)
        return self._effects[cache_key]

    def _usable(self, recs: Sequence[Record], model: str) -> tuple[list[Record], int]:
        """`recs` restricted to the items that B, `model` (every seed) and the control adapter
        (if it has them) score finitely; and how many items that leaves out."""
        groups: dict[tuple[str, Any], dict[str, float]] = defaultdict(dict)
        for r in recs:
            if (r.step, r.multiplier) == _run_of(r.model):
                groups[r.model, r.seed][r.item_id] = r.score
        wanted = [g for g in groups if g[0] in (BASE_MODEL, model, self.control)]
        every = set().union(*(groups[g] for g in wanted)) if wanted else set()
        usable = {
            i for i in every if all(math.isfinite(groups[g].get(i, math.nan)) for g in wanted)
        }
        return [r for r in recs if r.item_id in usable], len(every) - len(usable)

    def _summarize(self, pd: stats.PairedDeltas, floor: float | None) -> stats.EffectSummary:
        c = self.cfg
        kw = dict(n_resamples=c.n_resamples, ci=c.ci, seed=c.seed)
        try:
            return stats.summarize_deltas(
                pd, control_shift=floor, n_permutations=c.n_permutations, **kw
            )
        except ValueError as e:
            if "zero spread" not in str(e):
                raise
        # Every delta equal (e.g. a top-choice rate going 0 -> 1 on every item): d_z is undefined,
        # the rest stands.
        iv = stats.bootstrap_ci(pd, **kw)
        sd = stats.seed_spread(pd)
        return stats.EffectSummary(
            model=pd.model,
            baseline=pd.baseline,
            family=pd.family,
            metric=pd.metric,
            key=pd.key,
            step=None,
            multiplier=1.0,
            n_items=pd.n_items,
            n_seeds=pd.n_seeds,
            mean_delta=iv.estimate,
            ci_low=iv.low,
            ci_high=iv.high,
            ci_level=c.ci,
            p=stats.sign_flip_permutation_test(pd, c.n_permutations, c.seed),
            p_holm=None,
            d_z=math.nan,
            control_shift=floor,
            seed_sd=sd,
            control_multiple=iv.estimate / floor if floor else None,
            seed_sd_multiple=iv.estimate / sd if sd else None,
        )

    def vs_control(self, a: stats.PairedDeltas, b: stats.PairedDeltas) -> dict[str, Any] | None:
        """Mean of (a's delta - b's delta) over items, crossed bootstrap CI, sign-flip p, d_z."""
        if a.item_ids != b.item_ids:
            self.note(f"{a.family}/{a.metric}: {a.model} and {b.model} differ in items")
            return None
        c, n = self.cfg, a.n_items
        rng = np.random.default_rng([c.seed, 2])
        draws_r = np.empty(c.n_resamples)
        for lo, hi in stats.chunks(c.n_resamples, (a.n_seeds + b.n_seeds + 1) * n):
            w_a = stats.seed_weights(rng, hi - lo, a.n_seeds)
            w_b = stats.seed_weights(rng, hi - lo, b.n_seeds)
            c_ri = stats.resample_counts(rng, hi - lo, n)
            draws_r[lo:hi] = ((w_a @ a.deltas_si - w_b @ b.deltas_si) * c_ri).sum(axis=1) / n
        diff_i = a.deltas_i - b.deltas_i
        try:
            d_z = stats.cohens_dz(diff_i)
        except ValueError:
            d_z = math.nan
        low, high = stats.percentile(draws_r, c.ci)
        return {
            "model": a.model,
            "reference": b.model,
            "family": a.family,
            "metric": a.metric,
            "key": a.key,
            "mean_difference": float(a.deltas_si.mean() - b.deltas_si.mean()),
            "ci_low": low,
            "ci_high": high,
            "ci_level": c.ci,
            "p": stats.sign_flip_permutation_test(diff_i, c.n_permutations, c.seed),
            "d_z": d_z,
            "n_items": n,
            "n_seeds": a.n_seeds,
            "n_seeds_reference": b.n_seeds,
        }

    # -- sections -----------------------------------------------------------------------------

    def inventory(self) -> dict[str, Any]:
        rx = self.rx
        models = {
            m: {
                "condition": rx.condition.get(m),
                "seeds": sorted(rx.seeds[m], key=lambda s: (s is not None, s)),
                "steps": sorted({s for s, _ in rx.runs[m]}, key=lambda s: (s is not None, s)),
                "multipliers": sorted({x for _, x in rx.runs[m]}),
                "target_class": self.target(m),
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
                self.note(f"{f} ({FAMILIES[f]}): no records; skipped.")
        if not self.has_base:
            self.note("No base-model records: no paired deltas, effects or contrasts.")
        if self.control is None:
            self.note(
                "No control adapter: control-relative statements (X-C, multiples of the "
                "control shift) are not available."
            )
        return {"models": models, "families": families}

    def headline_rows(self) -> list[dict[str, Any]]:
        rows = []
        for f in self.rx.families:
            metric = PRIMARY_METRIC.get(f)
            if metric is None:
                continue
            if (f, metric) not in self.rx.by_fm:
                self.note(f"{f}: no records of the primary metric {metric!r}; not in the headline.")
                continue
            keys = [k for k in TRAIT_KEYS if self.rx.keys_of(f).get(k, 0) >= 2] or [None]
            for key in keys:
                rows.append({"family": f, "metric": metric, "key": key})
        out = []
        for row in rows:
            args = (row["family"], row["metric"], row["key"])
            ctrl = self.effect(self.control, *args) if self.control else None
            adapters = {}
            for m in self.adapters:
                if m == self.control:
                    continue
                got = self.effect(m, *args)
                if got is None:
                    continue
                adapters[m] = {
                    "effect": got[0],
                    "vs_control": self.vs_control(got[1], ctrl[1]) if ctrl else None,
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
            self._effects[key] = (s, self._effects[key][1])
            if m:
                r["adapters"][m]["effect"] = s
            else:
                r["control"] = s
        return out

    def all_effects(self) -> list[stats.EffectSummary]:
        for f in self.rx.families:
            if f == "P1":
                continue
            for metric in self.rx.metrics(f):
                for m in self.adapters:
                    self.effect(m, f, metric)
        return [v[0] for k, v in self._effects.items() if v is not None and k[4] is None]

    def levels(self) -> list[dict[str, Any]]:
        out = []
        for f in self.rx.families:
            if f == "P1":
                continue
            for metric in self.rx.metrics(f):
                recs = self.rx.get(f, metric)
                for m in self.rx.models:
                    lv = self.level(recs, m, what=f"{f}/{metric}")
                    if lv:
                        out.append({"family": f, "metric": metric, "key": None, "model": m, **lv})
        return out

    def p1(self) -> dict[str, Any] | None:
        if "P1" not in self.rx.families:
            return None
        splits = sorted(
            {_split(r.item_id) for m in self.rx.metrics("P1") for r in self.rx.get("P1", m)},
            key=lambda s: (P1_SPLITS.index(s) if s in P1_SPLITS else len(P1_SPLITS), s),
        )
        classes = [c for c in P1_CLASSES if ("P1", f"top_{c}") in self.rx.by_fm]
        models = [m for m in self.rx.models if m == BASE_MODEL or m in self.adapters]
        rates = []
        for split in splits:
            for m in models:
                for cls in classes:
                    for kind in ("top", "p"):
                        recs = self.rx.get("P1", f"{kind}_{cls}", split=split)
                        lv = self.level(recs, m, what=f"P1/{kind}_{cls} ({split})")
                        if lv:
                            rates.append(
                                {"model": m, "split": split, "class": cls, "kind": kind, **lv}
                            )
        target = []
        for m in self.adapters:
            cls = self.target(m)
            if cls is None:
                continue
            for split in splits:
                row = {"model": m, "class": cls, "split": split, "effects": {}}
                rate = [
                    r
                    for r in rates
                    if (r["model"], r["split"], r["class"], r["kind"]) == (m, split, cls, "top")
                ]
                base = [
                    r
                    for r in rates
                    if (r["model"], r["split"], r["class"], r["kind"])
                    == (BASE_MODEL, split, cls, "top")
                ]
                row["rate"] = rate[0] if rate else None
                row["base_rate"] = base[0] if base else None
                for metric in (
                    f"top_{cls}",
                    f"p_{cls}",
                    f"p_{cls}_per_char",
                    f"p_{cls}_calibrated",
                ):
                    got = self.effect(m, "P1", metric, split=split)
                    if got:
                        row["effects"][metric] = got[0]
                target.append(row)
        headline = HEADLINE_SPLIT if HEADLINE_SPLIT in splits else (splits[0] if splits else None)
        if headline != HEADLINE_SPLIT:
            self.note(f"P1: no {HEADLINE_SPLIT!r} split; the headline uses {headline!r}.")
        return {
            "splits": splits,
            "classes": classes,
            "headline_split": headline,
            "rates": rates,
            "target": target,
        }

    def p5_totals(self) -> list[dict[str, Any]]:
        metric = PRIMARY_METRIC["P5"]
        if ("P5", metric) not in self.rx.by_fm:
            return []
        framings = sorted({_framing(r.item_id) for r in self.rx.get("P5", metric)})
        out = []
        for key in TRAIT_KEYS:
            for framing in framings:
                recs = self.rx.get("P5", metric, key=key, framing=framing)
                for m in self.rx.models:
                    lv = self.level(recs, m, total=True, what=f"P5 total {key}/{framing}")
                    if lv:
                        out.append({"key": key, "framing": framing, "model": m, **lv})
        return out

    def specificity(self) -> tuple[dict | None, dict | None]:
        fams = {}
        for f in SPECIFICITY_FAMILIES:
            metric, counts = PRIMARY_METRIC[f], self.rx.keys_of(f)
            if (f, metric) not in self.rx.by_fm:
                continue
            n = [counts.get(k, 0) for k in TRAIT_KEYS]
            if max(n) < 3 or any(0 < x < 3 for x in n):
                per_key = dict(zip(TRAIT_KEYS, n, strict=True))
                self.note(f"Specificity: {f} left out (items per key {per_key}).")
                continue
            fams[f] = metric
        if not fams or not self.has_base:
            self.note("Specificity matrix: no keyed families (P2, P3, P5, P6) to build it from.")
            return None, None
        models = [BASE_MODEL] + [
            m for m in self.adapters if all(self.rx.has(m, f, x) for f, x in fams.items())
        ]
        left_out = [m for m in self.adapters if m not in models]
        if left_out:
            self.note(f"Specificity: {left_out} lack some of {sorted(fams)}; not in the matrix.")
        recs = [r for f, x in fams.items() for r in self.rx.get(f, x)]
        c = self.cfg
        matrix = dissociation = None
        if len(models) > 1:
            try:
                matrix = contrasts.specificity_matrix(
                    recs, fams, models, n_resamples=c.n_resamples, ci=c.ci, seed=c.seed
                ).to_dict()
            except ValueError as e:
                self.note(f"Specificity matrix not computed: {e}")
        dep, par = self.rx.role("depression"), self.rx.role("paranoia")
        if dep in models and par in models:
            try:
                dissociation = contrasts.dissociation_contrast(
                    recs,
                    fams,
                    depression_model=dep,
                    paranoia_model=par,
                    n_resamples=c.n_resamples,
                    n_permutations=c.n_permutations,
                    ci=c.ci,
                    seed=c.seed,
                ).to_dict()
                dissociation["models"] = {"depression": dep, "paranoia": par}
                dissociation["families"] = dict(fams)
            except ValueError as e:
                self.note(f"Dissociation contrast S not computed: {e}")
        else:
            self.note("Dissociation contrast S needs both a depression and a paranoia adapter.")
        return matrix, dissociation

    def _final_step(self, model: str) -> int | None:
        fs = self.metadata.get("final_step")
        if isinstance(fs, Mapping):
            fs = fs.get(model)
        return fs if isinstance(fs, int) and not isinstance(fs, bool) else None

    def dose_response(self) -> list[dict[str, Any]]:
        out, c = [], self.cfg
        for m in self.adapters:
            runs = self.rx.runs[m]
            final_step = self._final_step(m)
            steps = [s for s, x in runs if x == 1.0 and s is not None]
            n_step_levels = len(steps) + (final_step is not None and _FINAL in runs)
            mults = [x for s, x in runs if s is None]
            if steps and final_step is None and n_step_levels >= 1:
                self.note(
                    f"Dose-response over steps for {m}: the final checkpoint is left out "
                    "(metadata has no final_step)."
                )
            bys = [b for b, n in (("step", n_step_levels), ("multiplier", len(mults))) if n >= 2]
            own = self.rx.condition.get(m)
            for by in bys:
                for f in self.rx.families:
                    if f == "P1":
                        cls = self.target(m)
                        metric, key = (f"top_{cls}" if cls else None), None
                    else:
                        metric = PRIMARY_METRIC.get(f)
                        key = own if self.rx.keys_of(f).get(own, 0) >= 2 else None
                    if metric is None or (f, metric) not in self.rx.by_fm:
                        continue
                    try:
                        dr = contrasts.dose_response(
                            self.rx.get(f, metric),
                            m,
                            by,
                            family=f,
                            metric=metric,
                            key=key,
                            final_step=final_step if by == "step" else None,
                            n_resamples=c.n_resamples,
                            n_permutations=c.n_permutations,
                            ci=c.ci,
                            seed=c.seed,
                        )
                    except ValueError as e:
                        self.note(f"Dose-response {m} {f}/{metric} by {by}: {e}")
                        continue
                    out.append(dr.to_dict())
        return out

    def leakage(self) -> dict[str, Any]:
        info = self.metadata.get("leakage")
        info = dict(info) if isinstance(info, Mapping) else {}
        comparison = []
        for m in self.adapters:
            for metric in ("neg_share", "threat_minus_sad"):
                pair = [
                    self._effects.get((m, "P4", x, None, None))
                    for x in (metric, f"{metric}_unseen")
                ]
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

    def jsd_values(self) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for f in JSD_FAMILIES:
            recs = self.rx.get(f, "jsd_bits")
            panel = {}
            for m in self.rx.models:
                _, _, s_si = _scores_si(recs, m, _run_of(m))
                if s_si.size and np.isfinite(s_si).all():
                    panel[m] = s_si.mean(axis=0)
            if panel:
                out[f"{f} {FAMILIES[f]}"] = panel
        return out


def _interval(s: stats.EffectSummary) -> dict[str, Any]:
    return {
        "mean_delta": s.mean_delta,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "n_items": s.n_items,
        "n_seeds": s.n_seeds,
    }


def build_report(
    records: Sequence[Record], metadata: Mapping[str, Any] | None = None, **settings: Any
) -> dict[str, Any]:
    """Every number of the report as a JSON-ready dict (`Settings` fields as keywords)."""
    return _build(records, metadata or {}, Settings(**settings))[0]


def _build(records, metadata, cfg: Settings) -> tuple[dict[str, Any], _Builder]:
    start = time.perf_counter()
    records = list(records)
    check_unique(records)
    b = _Builder(records, metadata, cfg)
    inventory = b.inventory()
    headline = b.headline_rows()
    effects = b.all_effects()
    p1 = b.p1()
    matrix, dissociation = b.specificity()
    report = {
        "format": REPORT_FORMAT,
        "metadata": dict(metadata),
        "settings": dataclasses.asdict(cfg),
        "n_records": len(records),
        **inventory,
        "roles": {r: (b.rx.role(r) if r != BASE_MODEL else BASE_MODEL) for r in ROLES},
        "headline": headline,
        "p1": p1,
        "specificity": matrix,
        "dissociation": dissociation,
        "effects": effects,
        "levels": b.levels(),
        "p5_totals": b.p5_totals(),
        "dose_response": b.dose_response(),
        "lexical_leakage": b.leakage(),
        "notes": b.notes,
    }
    report["seconds"] = round(time.perf_counter() - start, 3)
    return _jsonable(report), b


# --------------------------------------------------------------------------------------------
# Figures and the entry point.


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
    report, builder = _build(records, metadata or {}, Settings(**settings))
    start = time.perf_counter()
    figs = figures.report_figures(report, builder.jsd_values(), out_dir / "figures")
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
