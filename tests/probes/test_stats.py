"""Item-level probe statistics on synthetic records with planted effects (and with none).

Every statistical claim is checked where it can fail: a known effect must be found and a null
must not be (at the nominal rate), and exact procedures must equal brute force. The
multi-model contrasts are tested in test_contrasts.py, on records from `synthetic_records`.
"""

import itertools
import json

import numpy as np
import pytest
from scipy import stats as sps

from pathjax.probes import stats
from pathjax.probes.records import Record

FAMILY, METRIC = "P2", "logodds_negative"


def synthetic_records(
    rng: np.random.Generator,
    effects: dict[str, tuple[float, float]],
    *,
    n_per_key: int = 30,
    seeds: tuple[int, ...] = (0,),
    seed_sd: float = 0.0,
    noise: float = 0.5,
    family: str = FAMILY,
    metric: str = METRIC,
    levels: dict[str, tuple[float, ...]] | None = None,
    by: str = "multiplier",
) -> list[Record]:
    """Base scores b_i ~ N(0, 1) on depression- and paranoia-keyed items; model m scores
    b_i + scale * effect_m[key_i] + seed offset + N(0, noise). With `levels`, each model is
    recorded at those multipliers (or steps), scale = the multiplier (or step / 100)."""
    keys = ["depression"] * n_per_key + ["paranoia"] * n_per_key
    ids = [f"{family.lower()}-{k[:3]}-{i:03d}" for i, k in enumerate(keys)]
    base_i = rng.normal(size=len(keys))
    out = [
        Record("base", None, None, None, 0.0, family, i, k, metric, float(b))
        for i, k, b in zip(ids, keys, base_i, strict=True)
    ]
    effect_of = {"depression": 0, "paranoia": 1}
    for model, effect in effects.items():
        for seed in seeds:
            offset = rng.normal(scale=seed_sd) if seed_sd else 0.0
            for level in (levels or {}).get(model, (1.0,)):
                step, mult = (None, float(level)) if by == "multiplier" else (int(level), 1.0)
                scale = (level if by == "multiplier" else level / 100) if levels else 1.0
                noise_i = rng.normal(scale=noise, size=len(keys))
                for i, k, b, e in zip(ids, keys, base_i, noise_i, strict=True):
                    score = b + scale * effect[effect_of[k]] + offset + e
                    out.append(Record(model, model, seed, step, mult, family, i, k, metric, score))
    return out


# --------------------------------------------------------------------------------------------
# Paired deltas and bad input.


def test_paired_deltas_align_items_by_id():
    rs = [
        Record("base", None, None, None, 0.0, "P3", "b", "paranoia", "m", 2.0),
        Record("base", None, None, None, 0.0, "P3", "a", "depression", "m", 1.0),
    ]
    for seed, shift in ((1, 10.0), (0, 20.0)):
        for item, score in (("a", 1.5), ("b", 2.5)):  # other order than the base's
            rs.append(
                Record(
                    "d",
                    "depression",
                    seed,
                    None,
                    1.0,
                    "P3",
                    item,
                    "depression" if item == "a" else "paranoia",
                    "m",
                    score + shift,
                )
            )
    pd = stats.paired_deltas(rs, "d", family="P3", metric="m")
    assert pd.item_ids == ("a", "b") and pd.seeds == (0, 1)
    assert pd.item_keys == ("depression", "paranoia")
    np.testing.assert_allclose(pd.deltas_si, [[20.5, 20.5], [10.5, 10.5]])
    np.testing.assert_allclose(pd.deltas_i, [15.5, 15.5])
    only_a = stats.paired_deltas(rs, "d", family="P3", metric="m", key="depression")
    assert only_a.item_ids == ("a",)


def test_bad_input_gets_clear_errors():
    rng = np.random.default_rng(0)
    rs = synthetic_records(rng, {"depression": (1.0, 0.0)}, n_per_key=4)
    kw = {"family": FAMILY, "metric": METRIC}
    with pytest.raises(ValueError, match="no records"):
        stats.paired_deltas([], "depression", **kw)
    with pytest.raises(ValueError, match=r"unknown model 'paranoia'.*'base', 'depression'"):
        stats.paired_deltas(rs, "paranoia", **kw)
    with pytest.raises(ValueError, match=r"no records of family 'P5'.*\('P2', 'logodds"):
        stats.paired_deltas(rs, "depression", family="P5", metric=METRIC)
    with pytest.raises(ValueError, match=r"no records at step=100.*\(None, 1.0\)"):
        stats.paired_deltas(rs, "depression", step=100, **kw)
    with pytest.raises(ValueError, match="no items keyed 'neutral'"):
        stats.paired_deltas(rs, "depression", key="neutral", **kw)
    # An item the adapter was not scored on, and one the base model was not.
    dropped = [r for r in rs if not (r.model == "depression" and r.item_id.endswith("001"))]
    with pytest.raises(ValueError, match=r"only in 'base': \['p2-dep-001'\]"):
        stats.paired_deltas(dropped, "depression", **kw)
    extra = [
        *rs,
        Record("depression", "depression", 0, None, 1.0, FAMILY, "new", "paranoia", METRIC, 0.0),
    ]
    with pytest.raises(ValueError, match=r"only in 'depression' seed 0: \['new'\]"):
        stats.paired_deltas(extra, "depression", **kw)
    rekeyed = [
        r
        if r.model == "base" or r.item_id != "p2-dep-002"
        else Record(**{**r.to_dict(), "key": "paranoia"})
        for r in rs
    ]
    with pytest.raises(ValueError, match="'p2-dep-002'.*keyed 'paranoia'.*'depression'"):
        stats.paired_deltas(rekeyed, "depression", **kw)
    twice = [*rs, rs[-1]]
    with pytest.raises(ValueError, match="scored twice"):
        stats.paired_deltas(twice, "depression", **kw)
    inf = [
        r
        if r.model == "base" or r.item_id != "p2-par-005"
        else Record(**{**r.to_dict(), "score": np.inf})
        for r in rs
    ]
    with pytest.raises(ValueError, match=r"non-finite deltas for items \['p2-par-005'\]"):
        stats.paired_deltas(inf, "depression", **kw)
    with pytest.raises(ValueError, match="at least 2 items"):
        stats.bootstrap_ci(np.array([1.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        stats.bootstrap_ci(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="ci must be"):
        stats.bootstrap_ci(np.ones(5), ci=95)
    with pytest.raises(ValueError, match="BCa needs one seed"):
        stats.bootstrap_ci(np.ones((2, 5)), method="bca")
    with pytest.raises(ValueError, match="method must be"):
        stats.bootstrap_ci(np.ones(5), method="basic")
    with pytest.raises(ValueError, match="zero spread"):
        stats.cohens_dz(np.ones(5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.5, 1.5])


# --------------------------------------------------------------------------------------------
# Bootstrap, sign flips, d_z.


def test_known_effect_is_found():
    x_i = np.random.default_rng(1).normal(0.8, 1.0, size=60)
    interval = stats.bootstrap_ci(x_i, seed=3)
    assert interval.estimate == pytest.approx(x_i.mean())
    assert interval.low < 0.8 < interval.high and interval.low > 0
    # The percentile interval is close to the normal-theory one for a mean of 60 normals.
    half = sps.t.ppf(0.975, 59) * x_i.std(ddof=1) / np.sqrt(60)
    assert interval.high - interval.low == pytest.approx(2 * half, rel=0.1)
    assert stats.sign_flip_permutation_test(x_i, seed=3) < 1e-3
    assert stats.cohens_dz(x_i) == pytest.approx(x_i.mean() / x_i.std(ddof=1))
    big_i = np.random.default_rng(2).normal(0.6, 2.0, size=20_000)
    assert stats.cohens_dz(big_i) == pytest.approx(0.3, abs=0.02)


def test_bootstrap_is_deterministic_and_one_seed_matches_1d():
    x_i = np.random.default_rng(4).normal(size=25)
    a = stats.bootstrap_ci(x_i, n_resamples=2000, seed=7)
    assert stats.bootstrap_ci(x_i, n_resamples=2000, seed=7) == a
    assert stats.bootstrap_ci(x_i[None], n_resamples=2000, seed=7) == a
    assert stats.bootstrap_ci(x_i, n_resamples=2000, seed=8) != a


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_matches_scipy(method):
    # Skewed data, where BCa and percentile differ; Monte Carlo error only separates the two.
    x_i = np.random.default_rng(5).exponential(size=40)
    ours = stats.bootstrap_ci(x_i, n_resamples=20_000, seed=0, method=method)
    ref = sps.bootstrap(
        (x_i,),
        np.mean,
        n_resamples=20_000,
        method=method.replace("bca", "BCa"),
        rng=np.random.default_rng(1),
    ).confidence_interval
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.05 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.05 * width)


def test_no_effect_rejects_at_the_nominal_rate():
    rng = np.random.default_rng(6)
    p_values, covered = [], []
    for sim in range(400):
        x_i = rng.normal(size=20)
        p_values.append(stats.sign_flip_permutation_test(x_i, n_permutations=400, seed=sim))
        interval = stats.bootstrap_ci(x_i, n_resamples=400, seed=sim)
        covered.append(interval.low <= 0 <= interval.high)
    p = np.asarray(p_values)
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09
    assert 0.4 <= np.mean(p <= 0.5) <= 0.6  # roughly uniform, not just right at 0.05
    assert 0.88 <= np.mean(covered) <= 0.99


def test_exact_sign_flip_equals_brute_force():
    x_i = np.array([0.3, -1.2, 2.0, 0.7, 0.0, 1.1, -0.4, 0.9, 0.25])
    flips = [abs(np.dot(s, x_i)) for s in itertools.product((1, -1), repeat=x_i.size)]
    brute = np.mean(np.asarray(flips) >= abs(x_i.sum()) - 1e-12)
    assert stats.sign_flip_permutation_test(x_i) == pytest.approx(brute)
    # The smallest exact p is 2 / 2^n (the observed pattern and its mirror).
    assert stats.sign_flip_permutation_test(np.arange(1.0, 7.0)) == pytest.approx(2 / 64)
    assert stats.sign_flip_permutation_test(np.zeros(5)) == 1.0
    # Seeds are averaged per item before flipping.
    x_si = np.stack([x_i + 1, x_i - 1])
    assert stats.sign_flip_permutation_test(x_si) == pytest.approx(brute)


def test_monte_carlo_sign_flip_approximates_exact_and_never_hits_zero():
    x_i = np.random.default_rng(7).normal(0.4, 1.0, size=14)
    exact = stats.sign_flip_permutation_test(x_i)
    mc = stats.sign_flip_permutation_test(x_i, n_permutations=20_000, exact_max_items=0)
    assert mc == pytest.approx(exact, abs=0.01)
    p = stats.sign_flip_permutation_test(np.full(40, 5.0) + np.arange(40), n_permutations=99)
    assert p == pytest.approx(1 / 100)


def test_hierarchical_bootstrap_widens_with_seed_variance():
    rng = np.random.default_rng(8)
    x_si = rng.normal(0.5, 0.3, size=(4, 40)) + rng.normal(0, 1.0, size=(4, 1))
    hierarchical = stats.bootstrap_ci(x_si, n_resamples=4000)
    items_only = stats.bootstrap_ci(x_si.mean(axis=0), n_resamples=4000)
    assert hierarchical.estimate == pytest.approx(items_only.estimate)
    assert (hierarchical.high - hierarchical.low) > 3 * (items_only.high - items_only.low)
    # Without seed variance the crossed bootstrap is conservative, never narrower: it counts the
    # seed x item residual up to three times (Owen 2007), here the whole variance.
    y_si = rng.normal(0.5, 0.3, size=(4, 40))
    h = stats.bootstrap_ci(y_si, n_resamples=4000)
    i = stats.bootstrap_ci(y_si.mean(axis=0), n_resamples=4000)
    assert 1.0 < (h.high - h.low) / (i.high - i.low) < 2.5


def test_item_effects_shared_across_seeds_are_not_averaged_away():
    # Crossed design: a large item effect common to all seeds. Resampling items per seed
    # independently would shrink its contribution by 1/seeds; the shared draw keeps it.
    rng = np.random.default_rng(9)
    item_i = rng.normal(0, 1.0, size=30)
    x_si = item_i + rng.normal(0, 0.05, size=(5, 30))
    crossed = stats.bootstrap_ci(x_si, n_resamples=4000)
    items_only = stats.bootstrap_ci(x_si.mean(axis=0), n_resamples=4000)
    assert (crossed.high - crossed.low) == pytest.approx(items_only.high - items_only.low, rel=0.2)


# --------------------------------------------------------------------------------------------
# Holm.


def test_holm_hand_computed():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.3, 0.01]), [0.6, 0.6, 0.03])
    np.testing.assert_allclose(stats.holm([0.9, 0.8]), [1.0, 1.0])  # capped
    assert stats.holm([]).shape == (0,)


def test_holm_equals_the_step_down_procedure():
    rng = np.random.default_rng(10)
    p = np.concatenate([rng.uniform(0, 0.02, 4), rng.uniform(0, 1, 8), [0.01, 0.01]])
    adjusted = stats.holm(p)
    for alpha in np.linspace(0.001, 0.5, 200):
        rejected = np.zeros(p.size, bool)
        for k, i in enumerate(np.argsort(p)):  # reject until the first failure
            if p[i] > alpha / (p.size - k):
                break
            rejected[i] = True
        np.testing.assert_array_equal(adjusted <= alpha, rejected)


# --------------------------------------------------------------------------------------------
# Effect summaries and noise floors.


def test_effect_summary_with_noise_floors():
    rng = np.random.default_rng(11)
    effects = {"control": (0.2, 0.2), "depression": (1.0, 0.0), "paranoia": (0.0, 0.0)}
    rs = synthetic_records(rng, effects, seeds=(0, 1, 2), seed_sd=0.1, noise=0.3)
    rs += synthetic_records(rng, effects, seeds=(0, 1, 2), seed_sd=0.1, noise=0.3, family="P3")
    kw = {"metric": METRIC, "n_resamples": 2000, "n_permutations": 2000}
    d = stats.effect_summary(rs, "depression", family=FAMILY, key="depression", **kw)
    pd = stats.paired_deltas(rs, "depression", family=FAMILY, metric=METRIC, key="depression")
    assert (d.n_items, d.n_seeds) == (30, 3)
    assert d.mean_delta == pytest.approx(pd.deltas_si.mean())
    assert d.ci_low < d.mean_delta < d.ci_high and d.ci_low > 0
    assert d.p < 0.01 and d.d_z == pytest.approx(stats.cohens_dz(pd))
    control = stats.control_floor(rs, family=FAMILY, metric=METRIC, key="depression")
    c_deltas = stats.paired_deltas(rs, "control", family=FAMILY, metric=METRIC, key="depression")
    assert control == pytest.approx(abs(c_deltas.deltas_si.mean()))
    assert d.control_shift == pytest.approx(control)
    assert d.control_multiple == pytest.approx(d.mean_delta / control)
    assert d.seed_sd == pytest.approx(pd.deltas_si.mean(axis=1).std(ddof=1))
    assert d.seed_sd_multiple == pytest.approx(d.mean_delta / d.seed_sd)
    assert d.p_holm is None
    c = stats.effect_summary(rs, "control", family=FAMILY, **kw)
    assert c.control_shift is None and c.control_multiple is None
    lone = [r for r in rs if r.model != "control"]
    assert stats.effect_summary(lone, "depression", family=FAMILY, **kw).control_shift is None
    one_seed = [r for r in rs if r.seed in (None, 0)]
    assert stats.effect_summary(one_seed, "depression", family=FAMILY, **kw).seed_sd is None

    summaries = [
        stats.effect_summary(rs, m, family=f, **kw)
        for m in ("depression", "paranoia")
        for f in (FAMILY, "P3")
    ]
    corrected = stats.holm_across_families(summaries)
    for model in ("depression", "paranoia"):
        mine = [s for s in corrected if s.model == model]
        np.testing.assert_allclose([s.p_holm for s in mine], stats.holm([s.p for s in mine]))
    assert summaries[0].p_holm is None  # copies, not mutation
    assert set(corrected[0].to_dict()) >= {"mean_delta", "ci_low", "p_holm", "control_multiple"}
    json.dumps([c.to_dict() for c in corrected])
