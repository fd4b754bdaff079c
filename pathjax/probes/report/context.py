"""What every section of the probe report shares: the indexed records, the settings, the notes,
and the numbers every section is built from: one model's level (mean score), its shift against
B (paired deltas; computed once per (model, family, metric, key, split) and remembered, so that
sections asking for the same shift share one computation) and the difference of two shifts (an
adapter's against the control's, "X-C").

The remembered shifts are a cache, not a channel: a section gets the same value whether or not
another section asked first. What one section derives from the shifts (the headline's Holm
adjustment) it returns; it never writes back.

Whatever cannot be computed returns None and leaves a note (`ReportContext.note`), so that a
section skips it and the rest of the report stands. Notes keep the order they were made in,
which is the order `build_report` computes the sections.
"""

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pathjax.probes import stats
from pathjax.probes.records import BASE_MODEL, Record
from pathjax.probes.report.index import FINAL_RUN, RecordIndex, run_of, scores_si
from pathjax.probes.schema import TARGET_CLASS


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resampling sizes: modest defaults, so that a full report takes seconds on 2 cores."""

    n_resamples: int = 1000
    n_permutations: int = 1000
    ci: float = 0.95
    seed: int = 0


class ReportContext:
    """The indexed records (`rx`), metadata, settings and notes of one report; the roles
    (`control`, `adapters`: every model with a final run but B) and the levels and shifts."""

    def __init__(self, records: Sequence[Record], metadata: Mapping[str, Any], cfg: Settings):
        self.rx = RecordIndex(records)
        self.metadata = dict(metadata or {})
        self.cfg = cfg
        self.notes: list[str] = []
        # (model, family, metric, key, split) -> (summary, paired deltas), None if not computable.
        self._shifts: dict[tuple[Any, ...], tuple[stats.EffectSummary, Any] | None] = {}
        self.control = self.rx.role("control")
        self.adapters = [
            m for m in self.rx.models if m != BASE_MODEL and FINAL_RUN in self.rx.runs[m]
        ]
        self.has_base = BASE_MODEL in self.rx.runs

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def target(self, model: str) -> str | None:
        return TARGET_CLASS.get(self.rx.condition.get(model) or "")

    # -- one model's level (raw mean score) and shift (paired delta) -------------------------

    def level(self, recs, model, *, total=False, what="") -> dict[str, Any] | None:
        items, seeds, s_si = scores_si(recs, model, run_of(model))
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
        if cache_key in self._shifts:
            return self._shifts[cache_key]
        self._shifts[cache_key] = None
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
        self._shifts[cache_key] = (summary, pd)
        return self._shifts[cache_key]

    def _usable(self, recs: Sequence[Record], model: str) -> tuple[list[Record], int]:
        """`recs` restricted to the items that B, `model` (every seed) and the control adapter
        (if it has them) score finitely; and how many items that leaves out."""
        groups: dict[tuple[str, Any], dict[str, float]] = defaultdict(dict)
        for r in recs:
            if (r.step, r.multiplier) == run_of(r.model):
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
