"""Multi-model contrasts on per-item probe records (docs/PROBES.md, "Statistics").

Here: the specificity matrix (each model's standardized shift on the probes of each key), the
dissociation contrast S built from its cells, and dose-response over checkpoint steps or adapter
multipliers. All rest on the paired deltas, resampling and tests of `pathjax.probes.stats`,
whose module docstring describes the crossed seed x item bootstrap used here too.

Reading the numbers:

- specificity cell (model, key): d_z of the model's deltas on the probes with that key, pooled
  over families as the mean of item deltas each divided by its family's delta sd.
- S: (D on depression - D on paranoia) - (P on depression - P on paranoia), from those cells.
- dose-response: the mean delta at each level, with its least-squares slope and Spearman rho
  over levels, and a permutation p-value for "no trend".
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from pathjax.probes.records import Record
from pathjax.probes.schema import BASE_MODEL, ROLES, TRAIT_KEYS
from pathjax.probes.stats import (
    TIE_RTOL,
    Interval,
    as_si,
    check_ci,
    chunks,
    describe,
    paired_deltas,
    percentile,
    probe_records,
    resample_counts,
    seed_weights,
)

# --------------------------------------------------------------------------------------------
# Specificity matrix and dissociation contrast.

DEFAULT_MODELS = ROLES
SPECIFICITY_KEYS = TRAIT_KEYS
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
    for tiny strata, and then the interval is honest about being uninformative). "Equal" is
    up to rounding: the sd of a few copies of one float comes out near 1e-16, not 0, and
    mean / 1e-16 would put a bound at -1e14 (seen in a real report with 3 P6 items)."""
    n = c_ri.sum(axis=1)
    mean_r = (c_ri * y_ri).sum(axis=1) / n
    var_r = (c_ri * (y_ri - mean_r[:, None]) ** 2).sum(axis=1) / (n - 1)
    sd_r = np.sqrt(var_r)
    scale_r = np.abs(np.where(c_ri > 0, y_ri, 0.0)).max(axis=1)
    spread = sd_r > 1e-9 * scale_r
    return np.divide(mean_r, sd_r, out=np.zeros_like(mean_r), where=spread & (sd_r > 0))


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
    for a, b in chunks(n_resamples, per_row):
        w = {m: seed_weights(rng, b - a, n_seeds[m]) for m in adapters}
        c = [resample_counts(rng, b - a, len(s.item_ids)) for s in strata]
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
    check_ci(ci, n_resamples)
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
    for a, b in chunks(n, per_row):
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
    check_ci(ci, n_resamples)
    if len(keys) != 2:
        raise ValueError(f"the contrast needs exactly two keys, got {list(keys)}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    keys = tuple(keys)
    adapters = [depression_model, paranoia_model]
    strata = _strata(records, adapters, keys, metric_by_family, baseline, step, multiplier)
    estimate_mk, draws_rmk = _bootstrap_cells(strata, adapters, keys, n_resamples, seed)
    s_hat = float(_contrast(estimate_mk[None])[0])
    lo, hi = percentile(_contrast(draws_rmk), ci)
    null_r = _permuted_contrasts(
        strata, adapters, keys, n_permutations, np.random.default_rng([seed, 1])
    )
    threshold = abs(s_hat) * (1 - TIE_RTOL)
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
    check_ci(ci, n_resamples)
    if by not in ("step", "multiplier"):
        raise ValueError(f"by must be 'step' or 'multiplier', got {by!r}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    runs = {(r.step, r.multiplier) for r in probe_records(records, model, family, metric)}
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
            f"levels, found {describe(run_of)} among runs (step, multiplier) "
            f"{describe(runs)}"
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
    deltas_lsi = np.stack([as_si(pd) for pd in pds])
    n_levels, n_seeds, n_items = deltas_lsi.shape
    means_l = deltas_lsi.mean(axis=(1, 2))

    rng = np.random.default_rng(seed)
    boot_rl = np.empty((n_resamples, n_levels))
    for a, b in chunks(n_resamples, n_levels * n_seeds * n_items):
        w_rs = seed_weights(rng, b - a, n_seeds)
        c_ri = resample_counts(rng, b - a, n_items)
        boot_rl[a:b] = np.einsum("rs,lsi,ri->rl", w_rs, deltas_lsi, c_ri) / n_items
    lo_l, hi_l = np.quantile(boot_rl, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    slope = float(_slopes(levels_l, means_l[None])[0])
    rho = float(_spearman(levels_l, means_l[None])[0])

    # Under "no dose effect" an item's deltas are exchangeable across levels.
    y_il = deltas_lsi.mean(axis=1).T
    perm_rng = np.random.default_rng([seed, 1])
    hits = 0
    for a, b in chunks(n_permutations, n_items * n_levels):
        perm_ril = np.argsort(perm_rng.random((b - a, n_items, n_levels)), axis=2)
        permuted_rl = np.take_along_axis(y_il[None], perm_ril, axis=2).mean(axis=1)
        hits += int(np.sum(np.abs(_slopes(levels_l, permuted_rl)) >= abs(slope) * (1 - TIE_RTOL)))

    rho_lo, rho_hi = percentile(_spearman(levels_l, boot_rl), ci)
    slope_lo, slope_hi = percentile(_slopes(levels_l, boot_rl), ci)
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
