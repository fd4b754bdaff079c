"""Statistics on per-item probe records (PROBES.md, "Statistics").

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
- specificity cell (model, key): d_z of the model's deltas on the probes with that key, pooled
  over families as the mean of item deltas each divided by its family's delta sd.
- S: (D on depression - D on paranoia) - (P on depression - P on paranoia), from those cells.

Two known biases of the crossed ("pigeonhole") bootstrap, which the seed sd reported beside
every effect lets a reader judge: it counts the seed x item residual up to three times (Owen,
Ann. Appl. Stat. 2007), so it is conservative when seeds agree closely; and with few seeds
(2-5) its seed level is coarse and shrinks the seed variance by (S - 1) / S.
"""

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy import stats as sps

from pathjax.probes.records import BASE_MODEL, Record

SeedId = int | None  # an adapter's training seed; None when unnamed
# Bounds the float64 temporaries of one resampling chunk (~32 MB).
_MAX_CHUNK_ELEMENTS = 4_000_000
# Ties in |statistic| (e.g. exact enumeration, zeros among the deltas) must count as extreme;
# fp summation order differs between the observed and permuted sums by this much, relatively.
_TIE_RTOL = 1e-9
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


def _describe(values: Sequence[Any], limit: int = 8) -> str:
    values = sorted(values, key=repr)
    more = f" ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(map(repr, values[:limit])) + more


def _probe_records(records: Sequence[Record], model: str, family: str, metric: str) -> list[Record]:
    """Every record of `model` on `family`/`metric`, or an error saying what there is."""
    if not records:
        raise ValueError("no records")
    models = {r.model for r in records}
    if model not in models:
        raise ValueError(f"unknown model {model!r}; the records have models {_describe(models)}")
    mine = [r for r in records if r.model == model]
    probe = [r for r in mine if r.family == family and r.metric == metric]
    if not probe:
        have = {(r.family, r.metric) for r in mine}
        raise ValueError(
            f"model {model!r} has no records of family {family!r} with metric "
            f"{metric!r}; it has (family, metric) {_describe(have)}"
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
    probe = _probe_records(records, model, family, metric)
    if run is not None:
        step, multiplier = run
        selected = [r for r in probe if r.step == step and r.multiplier == multiplier]
        if not selected:
            have = {(r.step, r.multiplier) for r in probe}
            raise ValueError(
                f"model {model!r}, {family}/{metric}: no records at step={step!r}, "
                f"multiplier={multiplier!r}; it has (step, multiplier) "
                f"{_describe(have)}"
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
            f"[{_describe(have - want)}]; only in {ref}: "
            f"[{_describe(want - have)}]"
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
            f"baseline {baseline!r} has several seeds {_describe(base)} for "
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
            f"items [{_describe(np.asarray(item_ids)[bad].tolist())}]"
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


def _as_si(deltas: np.ndarray | PairedDeltas, min_items: int = 2) -> np.ndarray:
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


def _chunks(n_total: int, elements_per_row: int) -> Iterator[tuple[int, int]]:
    """(start, stop) slices of `n_total` rows with bounded elements per chunk."""
    size = max(1, _MAX_CHUNK_ELEMENTS // max(1, elements_per_row))
    for start in range(0, n_total, size):
        yield start, min(n_total, start + size)


def _resample_counts(rng: np.random.Generator, n_rows: int, n: int) -> np.ndarray:
    """[n_rows, n] multiplicities of a with-replacement resample of n units per row.

    Drawn as an index matrix and counted, so that a resampled mean or variance is a weighted
    sum over the original units (no [rows, n, ...] gathers)."""
    idx_rn = rng.integers(0, n, size=(n_rows, n))
    flat = (idx_rn + n * np.arange(n_rows)[:, None]).ravel()
    return np.bincount(flat, minlength=n_rows * n).reshape(n_rows, n).astype(np.float64)


def _seed_weights(rng: np.random.Generator, n_rows: int, n_seeds: int) -> np.ndarray:
    """[n_rows, n_seeds] seed-resample weights summing to 1; one seed draws nothing (so that a
    one-seed matrix resamples exactly like its 1-D row)."""
    if n_seeds == 1:
        return np.ones((n_rows, 1))
    return _resample_counts(rng, n_rows, n_seeds) / n_seeds


def _bootstrap_means(
    deltas_si: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """[resamples] grand means under seed-then-item resampling (`bootstrap_ci`)."""
    n_seeds, n_items = deltas_si.shape
    out_r = np.empty(n_resamples)
    for a, b in _chunks(n_resamples, n_seeds * n_items):
        w_rs = _seed_weights(rng, b - a, n_seeds)
        c_ri = _resample_counts(rng, b - a, n_items)
        out_r[a:b] = ((w_rs @ deltas_si) * c_ri).sum(axis=1) / n_items
    return out_r


def _percentile(draws_r: np.ndarray, ci: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws_r, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return float(lo), float(hi)


def _check_ci(ci: float, n: int, what: str = "n_resamples") -> None:
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
    _check_ci(ci, n_resamples)
    deltas_si = _as_si(deltas)
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
    if method == "bca" and deltas_si.shape[0] != 1:
        raise ValueError("BCa needs one seed; use method='percentile' for [seeds, items]")
    rng = np.random.default_rng(seed)
    draws_r = _bootstrap_means(deltas_si, n_resamples, rng)
    estimate = float(deltas_si.mean())
    if method == "percentile":
        return Interval(estimate, *_percentile(draws_r, ci), ci)
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
    x_i = _as_si(deltas, min_items=1).mean(axis=0)
    n = x_i.size
    observed = abs(x_i.sum())
    threshold = observed - _TIE_RTOL * max(np.abs(x_i).sum(), np.finfo(float).tiny)
    if n <= exact_max_items:
        bits_fi = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return float(np.mean(np.abs((1 - 2 * bits_fi) @ x_i) >= threshold))
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    rng = np.random.default_rng(seed)
    hits = 0
    for a, b in _chunks(n_permutations, n):
        signs_pi = 1.0 - 2.0 * rng.integers(0, 2, size=(b - a, n))
        hits += int(np.sum(np.abs(signs_pi @ x_i) >= threshold))
    return (1 + hits) / (1 + n_permutations)


def cohens_dz(deltas: np.ndarray | PairedDeltas) -> float:
    """d_z = mean / sd (ddof=1) of the per-item deltas (seeds averaged first).

    0 when every delta is 0 (the base model against itself); raises when the deltas are all
    equal but not 0 (a d_z of infinity helps nobody)."""
    x_i = _as_si(deltas).mean(axis=0)
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
    deltas_si = _as_si(deltas, min_items=1)
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


# --------------------------------------------------------------------------------------------
# Specificity matrix and dissociation contrast.

DEFAULT_MODELS = (BASE_MODEL, "control", "depression", "paranoia")
SPECIFICITY_KEYS = ("depression", "paranoia")
_MIN_STRATUM_ITEMS = 3


@dataclasses.dataclass(frozen=True, eq=False)
class _Stratum:
    """One (family, key) set of items with every model's deltas on them."""

    family: str
    key: str
    item_ids: tuple[str, ...]
    deltas_by_model: dict[str, np.ndarray]  # model -> [seeds, items]


def _strata(
    records: Sequence[Record],
    models: Sequence[str],
    keys: Sequence[str],
    metric_by_family: Mapping[str, str],
    baseline: str,
    step: int | None,
    multiplier: float,
) -> list[_Stratum]:
    if not metric_by_family:
        raise ValueError("metric_by_family is empty")
    if len(set(models)) != len(models):
        raise ValueError(f"models repeat: {list(models)}")
    adapters = [m for m in models if m != baseline]
    if not adapters:
        raise ValueError(f"no model other than the baseline {baseline!r} in {list(models)}")
    out = []
    for family, metric in sorted(metric_by_family.items()):
        pds = {
            m: paired_deltas(
                records, m, baseline, family=family, metric=metric, step=step, multiplier=multiplier
            )
            for m in adapters
        }
        ref = pds[adapters[0]]
        item_keys = np.asarray(ref.item_keys)
        for k in keys:
            cols = np.flatnonzero(item_keys == k)
            if cols.size == 0:
                continue
            if cols.size < _MIN_STRATUM_ITEMS:
                raise ValueError(
                    f"{family}: only {cols.size} items keyed {k!r}; a standardized "
                    f"shift needs at least {_MIN_STRATUM_ITEMS}"
                )
            out.append(
                _Stratum(
                    family=family,
                    key=k,
                    item_ids=tuple(np.asarray(ref.item_ids)[cols].tolist()),
                    deltas_by_model={m: pds[m].deltas_si[:, cols] for m in adapters},
                )
            )
    for k in keys:
        if not any(s.key == k for s in out):
            raise ValueError(f"no items keyed {k!r} in families {sorted(metric_by_family)}")
    return out


def _weighted_dz(y_ri: np.ndarray, c_ri: np.ndarray) -> np.ndarray:
    """Per-row d_z of items `y` taken with multiplicities `c` (a resample): mean / sd(ddof=1).

    A resample whose drawn items are all equal has sd 0; its d_z is taken as 0 (possible only
    for tiny strata, and then the interval is honest about being uninformative)."""
    n = c_ri.sum(axis=1)
    mean_r = (c_ri * y_ri).sum(axis=1) / n
    var_r = (c_ri * (y_ri - mean_r[:, None]) ** 2).sum(axis=1) / (n - 1)
    sd_r = np.sqrt(var_r)
    return np.divide(mean_r, sd_r, out=np.zeros_like(mean_r), where=sd_r > 0)


def _cells(
    strata: Sequence[_Stratum],
    adapters: Sequence[str],
    keys: Sequence[str],
    w_by_model_rs: Mapping[str, np.ndarray],
    c_by_stratum_ri: Sequence[np.ndarray],
) -> np.ndarray:
    """[rows, models, keys] pooled standardized shifts under the given seed weights and item
    counts: the n-weighted mean of the per-stratum d_z (= mean of item delta / stratum sd)."""
    n_rows = c_by_stratum_ri[0].shape[0]
    total_rmk = np.zeros((n_rows, len(adapters), len(keys)))
    n_k = np.zeros(len(keys))
    for s, c_ri in zip(strata, c_by_stratum_ri, strict=True):
        k = keys.index(s.key)
        n = s.deltas_by_model[adapters[0]].shape[1]
        n_k[k] += n
        for m, model in enumerate(adapters):
            y_ri = w_by_model_rs[model] @ s.deltas_by_model[model]
            total_rmk[:, m, k] += n * _weighted_dz(y_ri, c_ri)
    return total_rmk / n_k


def _bootstrap_cells(
    strata: Sequence[_Stratum],
    adapters: Sequence[str],
    keys: Sequence[str],
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(estimate [models, keys], draws [resamples, models, keys]).

    Each resample draws seeds per model (the models' training runs are independent) and items
    per stratum, the same items for every model (all models are scored on the same items)."""
    n_seeds = {m: strata[0].deltas_by_model[m].shape[0] for m in adapters}
    ones = {m: np.full((1, n), 1.0 / n) for m, n in n_seeds.items()}
    estimate_mk = _cells(
        strata, adapters, keys, ones, [np.ones((1, len(s.item_ids))) for s in strata]
    )[0]
    rng = np.random.default_rng(seed)
    draws_rmk = np.empty((n_resamples, len(adapters), len(keys)))
    per_row = sum(len(s.item_ids) for s in strata) * (len(adapters) + 1)
    for a, b in _chunks(n_resamples, per_row):
        w = {m: _seed_weights(rng, b - a, n_seeds[m]) for m in adapters}
        c = [_resample_counts(rng, b - a, len(s.item_ids)) for s in strata]
        draws_rmk[a:b] = _cells(strata, adapters, keys, w, c)
    return estimate_mk, draws_rmk


@dataclasses.dataclass(frozen=True, eq=False)
class SpecificityMatrix:
    """Standardized shift of each model (rows) on the probes of each key (columns)."""

    models: tuple[str, ...]
    keys: tuple[str, ...]
    metric_by_family: dict[str, str]
    d_z_mk: np.ndarray  # [models, keys]; the baseline's row is 0 by construction
    ci_low_mk: np.ndarray
    ci_high_mk: np.ndarray
    ci_level: float
    n_items_k: np.ndarray  # items per key, pooled over families
    n_seeds_m: np.ndarray  # seeds per model (1 for the baseline)

    def cell(self, model: str, key: str) -> Interval:
        m, k = self.models.index(model), self.keys.index(key)
        return Interval(
            float(self.d_z_mk[m, k]),
            float(self.ci_low_mk[m, k]),
            float(self.ci_high_mk[m, k]),
            self.ci_level,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "keys": list(self.keys),
            "metric_by_family": dict(self.metric_by_family),
            "d_z": self.d_z_mk.tolist(),
            "ci_low": self.ci_low_mk.tolist(),
            "ci_high": self.ci_high_mk.tolist(),
            "ci_level": self.ci_level,
            "n_items": self.n_items_k.tolist(),
            "n_seeds": self.n_seeds_m.tolist(),
        }


def specificity_matrix(
    records: Sequence[Record],
    metric_by_family: Mapping[str, str],
    models: Sequence[str] = DEFAULT_MODELS,
    keys: Sequence[str] = SPECIFICITY_KEYS,
    *,
    baseline: str = BASE_MODEL,
    step: int | None = None,
    multiplier: float = 1.0,
    n_resamples: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> SpecificityMatrix:
    """Rows `models`, columns `keys`; cell = standardized shift of the model on the probes of
    that key, over the families in `metric_by_family` (family -> the metric to use).

    Within a family, item deltas are divided by their sd (that model, family and key), so a
    one-family cell is exactly d_z; families are pooled item-weighted. The CI bootstraps seeds
    per model, then items within each (family, key), recomputing the sds in every resample."""
    _check_ci(ci, n_resamples)
    keys, models = tuple(keys), tuple(models)
    adapters = [m for m in models if m != baseline]
    strata = _strata(records, models, keys, metric_by_family, baseline, step, multiplier)
    estimate_mk, draws_rmk = _bootstrap_cells(strata, adapters, keys, n_resamples, seed)
    low_mk, high_mk = np.quantile(draws_rmk, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    shape = (len(models), len(keys))
    d_z, lo, hi = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    rows = [models.index(m) for m in adapters]
    d_z[rows], lo[rows], hi[rows] = estimate_mk, low_mk, high_mk
    return SpecificityMatrix(
        models=models,
        keys=keys,
        metric_by_family=dict(metric_by_family),
        d_z_mk=d_z,
        ci_low_mk=lo,
        ci_high_mk=hi,
        ci_level=ci,
        n_items_k=np.array([sum(len(s.item_ids) for s in strata if s.key == k) for k in keys]),
        n_seeds_m=np.array(
            [1 if m == baseline else strata[0].deltas_by_model[m].shape[0] for m in models]
        ),
    )


@dataclasses.dataclass(frozen=True)
class Dissociation:
    """S = (D on A-keyed - D on B-keyed) - (P on A-keyed - P on B-keyed), standardized shifts
    (A, B = depression, paranoia); positive when each adapter moves its own probes more."""

    s: float
    ci_low: float
    ci_high: float
    ci_level: float
    p: float  # label-permutation p-value (keys shuffled within family), two-sided
    cells: dict[str, float]  # "depression/depression" etc.: "model/key" -> standardized shift
    n_items: dict[str, int]  # key -> items
    n_seeds: dict[str, int]  # model -> seeds

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _contrast(cells_rmk: np.ndarray) -> np.ndarray:
    return (cells_rmk[:, 0, 0] - cells_rmk[:, 0, 1]) - (cells_rmk[:, 1, 0] - cells_rmk[:, 1, 1])


def _permuted_contrasts(
    strata: Sequence[_Stratum], adapters: Sequence[str], keys: Sequence[str], n: int, rng
) -> np.ndarray:
    """S under `n` random reassignments of the two keys among each family's items (the null:
    an item's keying does not matter to how D and P differ). Seeds are averaged per item."""
    by_family: dict[str, list[_Stratum]] = {}
    for s in strata:
        by_family.setdefault(s.family, []).append(s)
    out_r = np.empty(n)
    per_row = sum(len(s.item_ids) for s in strata) * 2
    for a, b in _chunks(n, per_row):
        rows = b - a
        total_rmk = np.zeros((rows, 2, 2))
        n_k = np.zeros(2)
        for fam in by_family.values():
            sizes = [len(s.item_ids) for s in fam]
            y_mi = {
                m: np.concatenate([s.deltas_by_model[m].mean(axis=0) for s in fam])
                for m in adapters
            }
            perm_ri = np.argsort(rng.random((rows, sum(sizes))), axis=1)
            start = 0
            for s, size in zip(fam, sizes, strict=True):
                k = keys.index(s.key)
                idx_ri = perm_ri[:, start : start + size]
                start += size
                n_k[k] += size
                for m, model in enumerate(adapters):
                    y_ri = y_mi[model][idx_ri]
                    total_rmk[:, m, k] += size * _weighted_dz(y_ri, np.ones_like(y_ri))
        out_r[a:b] = _contrast(total_rmk / n_k)
    return out_r


def dissociation_contrast(
    records: Sequence[Record],
    metric_by_family: Mapping[str, str],
    *,
    depression_model: str = "depression",
    paranoia_model: str = "paranoia",
    keys: Sequence[str] = SPECIFICITY_KEYS,
    baseline: str = BASE_MODEL,
    step: int | None = None,
    multiplier: float = 1.0,
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> Dissociation:
    """The dissociation contrast S on the standardized shifts of `specificity_matrix`.

    CI: bootstrap, seeds per model, then items within each (family, key) independently (the
    same resamples as the matrix for equal `seed`). p: Monte Carlo permutation of the key labels
    within each family, p = (1 + #{|S*| >= |S|}) / (1 + n_permutations)."""
    _check_ci(ci, n_resamples)
    if len(keys) != 2:
        raise ValueError(f"the contrast needs exactly two keys, got {list(keys)}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    keys = tuple(keys)
    adapters = [depression_model, paranoia_model]
    strata = _strata(records, adapters, keys, metric_by_family, baseline, step, multiplier)
    estimate_mk, draws_rmk = _bootstrap_cells(strata, adapters, keys, n_resamples, seed)
    s_hat = float(_contrast(estimate_mk[None])[0])
    lo, hi = _percentile(_contrast(draws_rmk), ci)
    null_r = _permuted_contrasts(
        strata, adapters, keys, n_permutations, np.random.default_rng([seed, 1])
    )
    threshold = abs(s_hat) * (1 - _TIE_RTOL)
    p = (1 + int(np.sum(np.abs(null_r) >= threshold))) / (1 + n_permutations)
    return Dissociation(
        s=s_hat,
        ci_low=lo,
        ci_high=hi,
        ci_level=ci,
        p=p,
        cells={
            f"{m}/{k}": float(estimate_mk[i, j])
            for i, m in enumerate(adapters)
            for j, k in enumerate(keys)
        },
        n_items={k: sum(len(s.item_ids) for s in strata if s.key == k) for k in keys},
        n_seeds={m: strata[0].deltas_by_model[m].shape[0] for m in adapters},
    )


# --------------------------------------------------------------------------------------------
# Dose-response over checkpoints and adapter multipliers.


@dataclasses.dataclass(frozen=True, eq=False)
class DoseResponse:
    """Mean delta of one model at each level (checkpoint step or multiplier), and its trend."""

    model: str
    family: str
    metric: str
    key: str | None
    by: str  # "step" or "multiplier"
    levels_l: np.ndarray  # [levels], ascending
    mean_delta_l: np.ndarray  # [levels]
    ci_low_l: np.ndarray
    ci_high_l: np.ndarray
    ci_level: float
    n_items: int
    n_seeds: int
    spearman_rho: float  # rank correlation of level with mean delta
    rho_ci_low: float
    rho_ci_high: float
    slope: float  # least-squares slope of mean delta per unit of level
    slope_ci_low: float
    slope_ci_high: float
    p_trend: float  # permutation p for slope = 0: levels shuffled within each item

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in d.items()}


def _slopes(levels_l: np.ndarray, means_rl: np.ndarray) -> np.ndarray:
    x_l = levels_l - levels_l.mean()
    return (means_rl - means_rl.mean(axis=1, keepdims=True)) @ x_l / (x_l @ x_l)


def _spearman(levels_l: np.ndarray, means_rl: np.ndarray) -> np.ndarray:
    """Per-row Spearman rho (average ranks for ties; 0 for a constant row)."""
    rx_l = sps.rankdata(levels_l)
    ry_rl = sps.rankdata(means_rl, axis=1)
    rx_l, ry_rl = rx_l - rx_l.mean(), ry_rl - ry_rl.mean(axis=1, keepdims=True)
    den_r = np.sqrt((rx_l @ rx_l) * (ry_rl**2).sum(axis=1))
    return np.divide(ry_rl @ rx_l, den_r, out=np.zeros(len(ry_rl)), where=den_r > 0)


def dose_response(
    records: Sequence[Record],
    model: str,
    by: Literal["step", "multiplier"],
    *,
    family: str,
    metric: str,
    key: str | None = None,
    baseline: str = BASE_MODEL,
    step: int | None = None,
    multiplier: float = 1.0,
    final_step: int | None = None,
    n_resamples: int = 10_000,
    n_permutations: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> DoseResponse:
    """Per-level mean delta with bootstrap CI, and a monotone-trend test.

    by="step": every checkpoint step of `model` at adapter `multiplier`; the final checkpoint
    (step None) is included at `final_step` when given, else left out. by="multiplier": every
    multiplier at checkpoint `step`. Items and seeds must be the same at every level, and are
    resampled jointly across levels (they are the same items and training runs), so the
    level CIs, the slope CI and the Spearman CI come from one set of resamples. The trend
    p-value permutes each item's deltas across levels (seeds averaged)."""
    _check_ci(ci, n_resamples)
    if by not in ("step", "multiplier"):
        raise ValueError(f"by must be 'step' or 'multiplier', got {by!r}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    runs = {(r.step, r.multiplier) for r in _probe_records(records, model, family, metric)}
    if by == "step":
        steps = [s for s, m in runs if m == float(multiplier)]
        if final_step is not None and final_step in steps:
            raise ValueError(f"final_step={final_step} is also a recorded checkpoint step")
        run_of = {
            (final_step if s is None else s): (s, float(multiplier))
            for s in steps
            if s is not None or final_step is not None
        }
    else:
        run_of = {m: (step, m) for s, m in runs if s == step}
    if len(run_of) < 2:
        raise ValueError(
            f"{model!r}, {family}/{metric}: dose-response by {by} needs at least two "
            f"levels, found {_describe(run_of)} among runs (step, multiplier) "
            f"{_describe(runs)}"
        )
    levels_l = np.asarray(sorted(run_of), dtype=np.float64)
    pds = [
        paired_deltas(
            records,
            model,
            baseline,
            family=family,
            metric=metric,
            key=key,
            step=run_of[lv][0],
            multiplier=run_of[lv][1],
        )
        for lv in sorted(run_of)
    ]
    for lv, pd in zip(sorted(run_of), pds, strict=True):
        if pd.seeds != pds[0].seeds:
            raise ValueError(
                f"{model!r}: seeds {pd.seeds} at {by}={lv} differ from "
                f"{pds[0].seeds} at {by}={sorted(run_of)[0]}"
            )
    deltas_lsi = np.stack([_as_si(pd) for pd in pds])
    n_levels, n_seeds, n_items = deltas_lsi.shape
    means_l = deltas_lsi.mean(axis=(1, 2))

    rng = np.random.default_rng(seed)
    boot_rl = np.empty((n_resamples, n_levels))
    for a, b in _chunks(n_resamples, n_levels * n_seeds * n_items):
        w_rs = _seed_weights(rng, b - a, n_seeds)
        c_ri = _resample_counts(rng, b - a, n_items)
        boot_rl[a:b] = np.einsum("rs,lsi,ri->rl", w_rs, deltas_lsi, c_ri) / n_items
    lo_l, hi_l = np.quantile(boot_rl, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    slope = float(_slopes(levels_l, means_l[None])[0])
    rho = float(_spearman(levels_l, means_l[None])[0])

    # Under "no dose effect" an item's deltas are exchangeable across levels.
    y_il = deltas_lsi.mean(axis=1).T
    perm_rng = np.random.default_rng([seed, 1])
    hits = 0
    for a, b in _chunks(n_permutations, n_items * n_levels):
        perm_ril = np.argsort(perm_rng.random((b - a, n_items, n_levels)), axis=2)
        permuted_rl = np.take_along_axis(y_il[None], perm_ril, axis=2).mean(axis=1)
        hits += int(np.sum(np.abs(_slopes(levels_l, permuted_rl)) >= abs(slope) * (1 - _TIE_RTOL)))

    rho_lo, rho_hi = _percentile(_spearman(levels_l, boot_rl), ci)
    slope_lo, slope_hi = _percentile(_slopes(levels_l, boot_rl), ci)
    return DoseResponse(
        model=model,
        family=family,
        metric=metric,
        key=key,
        by=by,
        levels_l=levels_l,
        mean_delta_l=means_l,
        ci_low_l=lo_l,
        ci_high_l=hi_l,
        ci_level=ci,
        n_items=n_items,
        n_seeds=n_seeds,
        spearman_rho=rho,
        rho_ci_low=rho_lo,
        rho_ci_high=rho_hi,
        slope=slope,
        slope_ci_low=slope_lo,
        slope_ci_high=slope_hi,
        p_trend=(1 + hits) / (1 + n_permutations),
    )
