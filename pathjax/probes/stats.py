"""Item-level paired statistics on per-item probe records (docs/PROBES.md, "Statistics").

Here: one model's paired deltas against the base and what is computed from them (bootstrap CIs,
the sign-flip permutation test, Cohen's d_z, Holm within and across families, noise floors,
effect summaries), and the resampling helpers shared with `pathjax.probes.contrasts`, which
holds the multi-model contrasts (specificity matrix, dissociation contrast, dose-response).

The unit is the probe item and every effect is paired: delta_i = score(model, i) - score(B, i),
the same item scored by the adapted and the base model. When an adapter was trained with several
seeds, its deltas form a `[seeds, items]` matrix. Seeds and items are *crossed* (every seed's
adapter is scored on the same items), so an item's idiosyncrasy is shared by all seeds. The
bootstrap therefore draws seeds, then one set of items used for every drawn seed: drawing items
independently per seed would average the item effect away and give too-narrow intervals. Tests
that need exchangeable units (sign flips, label permutations) use items, with each item's delta
averaged over seeds first.

Everything is pure numpy, vectorized over resamples (resample-index matrices turned into count
matrices, processed in chunks of bounded memory), and deterministic: every random function takes
an integer `seed` for its own `np.random.Generator`.

Reading the numbers:

- mean delta: the average paired shift, in the metric's units (seeds averaged).
- CI: percentile bootstrap interval of that mean (BCa on request, one seed only).
- p: two-sided sign-flip permutation p-value for "mean delta = 0"; exact below 17 items.
- d_z: mean / sd (ddof=1) of the per-item deltas, the paired standardized effect.
- noise floors: the control adapter's |mean delta| on the same probes, and the sd across seeds of
  the per-seed mean delta; effects are also given as multiples of both.

Two known biases of the crossed ("pigeonhole") bootstrap, which the seed sd reported beside
every effect lets a reader judge: it counts the seed x item residual up to three times (Owen,
Ann. Appl. Stat. 2007), so it is conservative when seeds agree closely; and with few seeds
(2-5) its seed level is coarse and shrinks the seed variance by (S - 1) / S.
"""

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from scipy import special

from pathjax.probes.records import BASE_MODEL, Record

SeedId = int | None  # an adapter's training seed; None when unnamed
# Bounds the float64 temporaries of one resampling chunk (~32 MB).
_MAX_CHUNK_ELEMENTS = 4_000_000
# Ties in |statistic| (e.g. exact enumeration, zeros among the deltas) must count as extreme;
# fp summation order differs between the observed and permuted sums by this much, relatively.
TIE_RTOL = 1e-9
EXACT_MAX_ITEMS = 16


# --------------------------------------------------------------------------------------------
# Paired deltas from records.


@dataclasses.dataclass(frozen=True, eq=False)
class PairedDeltas:
    """delta[s, i] = score(model, seed s, item i) - score(baseline, item i), items sorted by id."""

    model: str
    baseline: str
    family: str
    metric: str
    key: str | None  # the key the items were restricted to; None = every item of the family
    item_ids: tuple[str, ...]
    item_keys: tuple[str, ...]
    seeds: tuple[SeedId, ...]
    deltas_si: np.ndarray  # [seeds, items]

    @property
    def deltas_i(self) -> np.ndarray:
        """Per-item delta averaged over seeds, the unit of sign flips and d_z."""
        return self.deltas_si.mean(axis=0)

    @property
    def n_items(self) -> int:
        return self.deltas_si.shape[1]

    @property
    def n_seeds(self) -> int:
        return self.deltas_si.shape[0]


def describe(values: Sequence[Any], limit: int = 8) -> str:
    values = sorted(values, key=repr)
    more = f" ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(map(repr, values[:limit])) + more


def probe_records(records: Sequence[Record], model: str, family: str, metric: str) -> list[Record]:
    """Every record of `model` on `family`/`metric`, or an error saying what there is."""
    if not records:
        raise ValueError("no records")
    models = {r.model for r in records}
    if model not in models:
        raise ValueError(f"unknown model {model!r}; the records have models {describe(models)}")
    mine = [r for r in records if r.model == model]
    probe = [r for r in mine if r.family == family and r.metric == metric]
    if not probe:
        have = {(r.family, r.metric) for r in mine}
        raise ValueError(
            f"model {model!r} has no records of family {family!r} with metric "
            f"{metric!r}; it has (family, metric) {describe(have)}"
        )
    return probe


def _select(
    records: Sequence[Record],
    *,
    model: str,
    family: str,
    metric: str,
    key: str | None,
    run: tuple[int | None, float] | None,
) -> dict[SeedId, dict[str, tuple[str, float]]]:
    """{seed: {item_id: (key, score)}} of one model; `run` = (step, multiplier) or any."""
    probe = probe_records(records, model, family, metric)
    if run is not None:
        step, multiplier = run
        selected = [r for r in probe if r.step == step and r.multiplier == multiplier]
        if not selected:
            have = {(r.step, r.multiplier) for r in probe}
            raise ValueError(
                f"model {model!r}, {family}/{metric}: no records at step={step!r}, "
                f"multiplier={multiplier!r}; it has (step, multiplier) "
                f"{describe(have)}"
            )
        probe = selected
    if key is not None:
        probe = [r for r in probe if r.key == key]
        if not probe:
            raise ValueError(f"model {model!r}, {family}/{metric}: no items keyed {key!r}")
    by_seed: dict[SeedId, dict[str, tuple[str, float]]] = {}
    for r in probe:
        items = by_seed.setdefault(r.seed, {})
        if r.item_id in items:
            raise ValueError(
                f"model {model!r}, {family}/{metric}: item {r.item_id!r} scored "
                f"twice for seed {r.seed!r} (step {r.step!r}, multiplier "
                f"{r.multiplier!r}); select one run"
            )
        items[r.item_id] = (r.key, r.score)
    return by_seed


def _check_same_items(want: set[str], have: set[str], what: str, ref: str) -> None:
    if want != have:
        raise ValueError(
            f"{what} and {ref} differ in items: only in {what}: "
            f"[{describe(have - want)}]; only in {ref}: "
            f"[{describe(want - have)}]"
        )


def paired_deltas(
    records: Sequence[Record],
    model: str,
    baseline: str = BASE_MODEL,
    *,
    family: str,
    metric: str,
    key: str | None = None,
    step: int | None = None,
    multiplier: float = 1.0,
) -> PairedDeltas:
    """Per-item paired deltas of `model` (at checkpoint `step`, None = final, and adapter
    `multiplier`) against `baseline`, restricted to items keyed `key` if given.

    Every seed of the model is one row. The baseline must have exactly one score per item (B
    does); its step and multiplier are not filtered. Raises if items differ between seeds or
    from the baseline, if an item's key differs between the two models, or if a delta is
    not finite (e.g. an infinite KL).
    """
    run = (step, float(multiplier))
    mine = _select(records, model=model, family=family, metric=metric, key=key, run=run)
    base = _select(records, model=baseline, family=family, metric=metric, key=key, run=None)
    if len(base) != 1:
        raise ValueError(
            f"baseline {baseline!r} has several seeds {describe(base)} for "
            f"{family}/{metric}; it needs one score per item"
        )
    (base_items,) = base.values()
    item_ids = tuple(sorted(base_items))
    seeds = tuple(sorted(mine, key=lambda s: (s is not None, s)))
    rows = []
    for s in seeds:
        items = mine[s]
        _check_same_items(set(base_items), set(items), f"{model!r} seed {s!r}", repr(baseline))
        for i in item_ids:
            if items[i][0] != base_items[i][0]:
                raise ValueError(
                    f"item {i!r} ({family}) is keyed {items[i][0]!r} for {model!r} "
                    f"but {base_items[i][0]!r} for {baseline!r}"
                )
        rows.append([items[i][1] - base_items[i][1] for i in item_ids])
    deltas_si = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(deltas_si).all(axis=0)
    if bad.any():
        raise ValueError(
            f"{model!r} vs {baseline!r}, {family}/{metric}: non-finite deltas for "
            f"items [{describe(np.asarray(item_ids)[bad].tolist())}]"
        )
    return PairedDeltas(
        model=model,
        baseline=baseline,
        family=family,
        metric=metric,
        key=key,
        item_ids=item_ids,
        item_keys=tuple(base_items[i][0] for i in item_ids),
        seeds=seeds,
        deltas_si=deltas_si,
    )


# --------------------------------------------------------------------------------------------
# Resampling primitives.


def as_si(deltas: np.ndarray | PairedDeltas, min_items: int = 2) -> np.ndarray:
    """`[items]` or `[seeds, items]` deltas as a finite float64 `[seeds, items]` matrix."""
    if isinstance(deltas, PairedDeltas):
        deltas = deltas.deltas_si
    a = np.asarray(deltas, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"deltas must be [items] or [seeds, items], got shape {a.shape}")
    if a.shape[1] < min_items:
        raise ValueError(f"need at least {min_items} items, got {a.shape[1]}")
    if not np.isfinite(a).all():
        raise ValueError("deltas contain NaN or inf")
    return a


def chunks(n_total: int, elements_per_row: int) -> Iterator[tuple[int, int]]:
    """(start, stop) slices of `n_total` rows with bounded elements per chunk."""
    size = max(1, _MAX_CHUNK_ELEMENTS // max(1, elements_per_row))
    for start in range(0, n_total, size):
        yield start, min(n_total, start + size)


def resample_counts(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    """[n_rows, n] multiplicities of a with-replacement resample of n units per row.

    Drawn as an index matrix and counted, so that a resampled mean or variance is a weighted
    sum over the original units (no [rows, n, ...] gathers)."""
    idx_rn = rng.integers(0, n, size=(n_rows, n))
    flat = (idx_rn + n * np.arange(n_rows)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rows * n).reshape(n_rows, n).astype(np.float64)


def seed_weights(rng: np.random.Generator, n_rows: int, n_seeds: int) -> np.ndarray:
    """[n_rows, n_seeds] seed-resample weights summing to 1; one seed draws nothing (so that a
    one-seed matrix resamples exactly like its 1-D row)."""
    if n_seeds == 1:
        return np.ones((n_rows, 1))
    return resample_counts(rng, n_rows, n_seeds) / n_seeds


def _bootstrap_means(
    deltas_si: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """[resamples] grand means under seed-then-item resampling (`bootstrap_ci`)."""
    n_seeds, n_items = deltas_si.shape
    out_r = np.empty(n_resamples)
    for a, b in chunks(n_resamples, n_seeds * n_items):
        w_rs = seed_weights(rng, b - a, n_seeds)
        c_ri = resample_counts(rng, b - a, n_items)
        out_r[a:b] = ((w_rs @ deltas_si) * c_ri).sum(axis=1) / n_items
    return out_r


def percentile(draws_r: np.ndarray, ci: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws_r, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return float(lo), float(hi)


def check_ci(ci: float, n: int, what: str = "n_resamples") -> None:
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")


@dataclasses.dataclass(frozen=True)
class Interval:
    """A statistic and its confidence interval."""

    estimate: float  # the statistic on the original data
    low: float
    high: float
    level: float  # e.g. 0.95


def bootstrap_ci(
    deltas: np.ndarray | PairedDeltas,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    method: Literal["percentile", "bca"] = "percentile",
) -> Interval:
    """Bootstrap CI of the mean delta.

    `[items]`: items resampled with replacement. `[seeds, items]`: hierarchical, seeds resampled
    and then items (one item draw shared by the drawn seeds, see the module docstring); the
    estimate is the grand mean. To ignore seed variance, pass `deltas_si.mean(0)` instead.
    "bca" (bias-corrected and accelerated, jackknife acceleration) needs a single seed.
    """
    check_ci(ci, n_resamples)
    deltas_si = as_si(deltas)
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    if method == "bca" and deltas_si.shape[0] != 1:
        raise ValueError("BCa needs one seed; use method='percentile' for [seeds, items]")
    rng = np.random.default_rng(seed)
    draws_r = _bootstrap_means(deltas_si, n_resamples, rng)
    estimate = float(deltas_si.mean())
    if method == "percentile":
        return Interval(estimate, *percentile(draws_r, ci), ci)
    x_i = deltas_si[0]
    n = x_i.size
    z0 = special.ndtri(np.clip(np.mean(draws_r < estimate), 1 / n_resamples, 1 - 1 / n_resamples))
    jack_i = (x_i.sum() - x_i) / (n - 1)
    dev_i = jack_i.mean() - jack_i
    denom = 6.0 * np.sum(dev_i**2) ** 1.5
    accel = np.sum(dev_i**3) / denom if denom > 0 else 0.0
    z_a = special.ndtri(np.array([(1 - ci) / 2, (1 + ci) / 2]))
    levels = special.ndtr(z0 + (z0 + z_a) / (1 - accel * (z0 + z_a)))
    lo, hi = np.quantile(draws_r, levels)
    return Interval(estimate, float(lo), float(hi), ci)


def sign_flip_permutation_test(
    deltas: np.ndarray | PairedDeltas,
    n_permutations: int = 10_000,
    seed: int = 0,
    exact_max_items: int = EXACT_MAX_ITEMS,
) -> float:
    """Two-sided p-value for "mean delta = 0" by random sign flips of the per-item deltas.

    Under the null each item's delta is symmetric about 0, so its sign is exchangeable. For
    `[seeds, items]` the per-item mean over seeds is flipped (items are the unit). With at most
    `exact_max_items` items all 2^n sign patterns are enumerated (the p-value is exact, the
    observed pattern included); otherwise `n_permutations` random patterns give the Monte Carlo
    p = (1 + #{|T*| >= |T|}) / (1 + n_permutations), which never reaches 0.
    """
    x_i = as_si(deltas, min_items=1).mean(axis=0)
    n = x_i.size
    observed = abs(x_i.sum())
    threshold = observed - TIE_RTOL * max(np.abs(x_i).sum(), np.finfo(float).tiny)
    if n <= exact_max_items:
        bits_fi = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return float(np.mean(np.abs((1 - 2 * bits_fi) @ x_i) >= threshold))
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    hits = 0
    for a, b in chunks(n_permutations, n):
        signs_pi = 1.0 - 2.0 * rng.integers(0, 2, size=(b - a, n))
        hits += int(np.sum(np.abs(signs_pi @ x_i) >= threshold))
    return (1 + hits) / (1 + n_permutations)


def cohens_dz(deltas: np.ndarray | PairedDeltas) -> float:
    """d_z = mean / sd (ddof=1) of the per-item deltas (seeds averaged first).

    0 when every delta is 0 (the base model against itself); raises when the deltas are all
    equal but not 0 (a d_z of infinity helps nobody)."""
    x_i = as_si(deltas).mean(axis=0)
    mean, sd = float(x_i.mean()), float(x_i.std(ddof=1))
    if sd == 0.0:
        if mean == 0.0:
            return 0.0
        raise ValueError(f"deltas all equal {mean}: d_z is undefined (zero spread)")
    return mean / sd


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending, p_(k) is multiplied by (m - k + 1) (k from 1), a running maximum makes
    the sequence monotone, and values are capped at 1. Rejecting adjusted p <= alpha is Holm's
    step-down procedure at family-wise error rate alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


# --------------------------------------------------------------------------------------------
# Effect summaries and noise floors.


@dataclasses.dataclass(frozen=True)
class EffectSummary:
    """One model's shift on one probe family (and metric, and optionally key) against B."""

    model: str
    baseline: str
    family: str
    metric: str
    key: str | None
    step: int | None
    multiplier: float
    n_items: int
    n_seeds: int
    mean_delta: float  # mean of delta over seeds and items, in the metric's units
    ci_low: float  # bootstrap CI of mean_delta (seeds then items when several seeds)
    ci_high: float
    ci_level: float
    p: float  # two-sided sign-flip p-value for mean_delta = 0
    p_holm: float | None  # p after Holm across families; filled by `holm_across_families`
    d_z: float  # mean / sd of the per-item deltas
    control_shift: float | None  # noise floor: |mean delta| of the control adapter
    seed_sd: float | None  # noise floor: sd across seeds of the per-seed mean delta
    control_multiple: float | None  # mean_delta / control_shift
    seed_sd_multiple: float | None  # mean_delta / seed_sd

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_spread(deltas: np.ndarray | PairedDeltas) -> float | None:
    """Noise floor: sd (ddof=1) across seeds of each seed's mean delta; None for one seed."""
    deltas_si = as_si(deltas, min_items=1)
    if deltas_si.shape[0] < 2:
        return None
    return float(deltas_si.mean(axis=1).std(ddof=1))


def control_floor(
    records: Sequence[Record],
    *,
    family: str,
    metric: str,
    key: str | None = None,
    control: str = "control",
    baseline: str = BASE_MODEL,
    step: int | None = None,
    multiplier: float = 1.0,
) -> float:
    """Noise floor: |mean delta| of the control adapter on the same probes (seeds averaged).

    The control adapter went through the same training on adaptive choices, so its shift is
    what fine-tuning alone does to a probe."""
    pd = paired_deltas(
        records,
        control,
        baseline,
        family=family,
        metric=metric,
        key=key,
        step=step,
        multiplier=multiplier,
    )
    return abs(float(pd.deltas_si.mean()))


def _ratio(num: float, den: float | None) -> float | None:
    return None if den is None or den == 0.0 else num / den


def summarize_deltas(
    pd: PairedDeltas,
    *,
    control_shift: float | None = None,
    step: int | None = None,
    multiplier: float = 1.0,
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> EffectSummary:
    """`EffectSummary` of precomputed deltas (`effect_summary` from records is the usual door)."""
    interval = bootstrap_ci(pd, n_resamples=n_resamples, ci=ci, seed=seed)
    sd = seed_spread(pd)
    return EffectSummary(
        model=pd.model,
        baseline=pd.baseline,
        family=pd.family,
        metric=pd.metric,
        key=pd.key,
        step=step,
        multiplier=float(multiplier),
        n_items=pd.n_items,
        n_seeds=pd.n_seeds,
        mean_delta=interval.estimate,
        ci_low=interval.low,
        ci_high=interval.high,
        ci_level=ci,
        p=sign_flip_permutation_test(pd, n_permutations=n_permutations, seed=seed),
        p_holm=None,
        d_z=cohens_dz(pd),
        control_shift=control_shift,
        seed_sd=sd,
        control_multiple=_ratio(interval.estimate, control_shift),
        seed_sd_multiple=_ratio(interval.estimate, sd),
    )


def effect_summary(
    records: Sequence[Record],
    model: str,
    *,
    family: str,
    metric: str,
    key: str | None = None,
    baseline: str = BASE_MODEL,
    control: str | None = "control",
    step: int | None = None,
    multiplier: float = 1.0,
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> EffectSummary:
    """Mean delta with CI, p, d_z and noise floors of `model` on one family/metric.

    The control floor is taken at the same step and multiplier; it is None when `control` is
    None, is `model` itself, or has no records of this family and metric (the control adapter
    was not evaluated)."""
    pd = paired_deltas(
        records,
        model,
        baseline,
        family=family,
        metric=metric,
        key=key,
        step=step,
        multiplier=multiplier,
    )
    floor = None
    if control is not None and control != model:
        has_control = any(
            r.model == control and r.family == family and r.metric == metric for r in records
        )
        if has_control:
            floor = control_floor(
                records,
                family=family,
                metric=metric,
                key=key,
                control=control,
                baseline=baseline,
                step=step,
                multiplier=multiplier,
            )
    return summarize_deltas(
        pd,
        control_shift=floor,
        step=step,
        multiplier=multiplier,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        ci=ci,
        seed=seed,
    )


def holm_across_families(
    summaries: Sequence[EffectSummary], group_by: Sequence[str] = ("model",)
) -> list[EffectSummary]:
    """Copies of `summaries` with `p_holm` set: Holm within each group of equal `group_by`
    fields (by default, across all the families reported for one model), order kept."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(summaries):
        groups.setdefault(tuple(getattr(s, f) for f in group_by), []).append(i)
    out = list(summaries)
    for members in groups.values():
        adjusted = holm([summaries[i].p for i in members])
        for i, q in zip(members, adjusted, strict=True):
            out[i] = dataclasses.replace(summaries[i], p_holm=float(q))
    return out
