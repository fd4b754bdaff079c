"""Multi-model probe contrasts on synthetic records with planted effects (and with none).

The specificity/dissociation/dose-response machinery must recover planted patterns and not
invent them.
"""

import json

import numpy as np
import pytest

from pathjax.probes import contrasts, stats
from pathjax.probes.records import Record
from tests.probes.test_stats import FAMILY, METRIC, synthetic_records

# --------------------------------------------------------------------------------------------
# Specificity matrix and dissociation.

PLANTED = {"control": (0.1, 0.1), "depression": (1.0, 0.0), "paranoia": (0.0, 1.0)}


def test_specificity_recovers_a_planted_pattern():
    rng = np.random.default_rng(12)
    rs = synthetic_records(rng, PLANTED, seeds=(0, 1), seed_sd=0.05)
    rs += synthetic_records(rng, PLANTED, seeds=(0, 1), seed_sd=0.05, family="P5", metric="score")
    metrics = {FAMILY: METRIC, "P5": "score"}
    m = contrasts.specificity_matrix(rs, metrics, n_resamples=2000)
    assert m.models == ("base", "control", "depression", "paranoia")
    assert m.keys == ("depression", "paranoia")
    np.testing.assert_array_equal(m.d_z_mk[0], 0.0)
    np.testing.assert_array_equal(m.ci_low_mk[0], 0.0)
    dep, par = m.cell("depression", "depression"), m.cell("depression", "paranoia")
    assert dep.low > 1.0 and par.low < 0 < par.high
    assert m.cell("paranoia", "paranoia").low > 1.0
    assert m.cell("paranoia", "depression").low < 0 < m.cell("paranoia", "depression").high
    assert (m.ci_low_mk <= m.d_z_mk).all() and (m.d_z_mk <= m.ci_high_mk).all()
    assert m.n_items_k.tolist() == [60, 60] and m.n_seeds_m.tolist() == [1, 2, 2, 2]
    # A one-family cell is exactly d_z of that family's deltas on that key.
    one = contrasts.specificity_matrix(rs, {FAMILY: METRIC}, n_resamples=200)
    pd = stats.paired_deltas(rs, "depression", family=FAMILY, metric=METRIC, key="paranoia")
    assert one.cell("depression", "paranoia").estimate == pytest.approx(stats.cohens_dz(pd))

    s = contrasts.dissociation_contrast(rs, metrics, n_resamples=2000, n_permutations=2000)
    cells = s.cells
    assert cells["depression/depression"] == pytest.approx(dep.estimate)
    expected = (cells["depression/depression"] - cells["depression/paranoia"]) - (
        cells["paranoia/depression"] - cells["paranoia/paranoia"]
    )
    assert s.s == pytest.approx(expected)
    assert s.s > 2 and s.ci_low > 0 and s.p < 0.01
    assert s.n_items == {"depression": 60, "paranoia": 60}
    assert s.n_seeds == {"depression": 2, "paranoia": 2}
    json.dumps(m.to_dict()), json.dumps(s.to_dict())  # report.json takes them as they are


def test_resample_of_equal_items_has_no_runaway_dz():
    """Three copies of one float have an sd of ~1e-16, not 0: d_z must be 0, not ~1e16."""
    y_ri = np.array([[0.7, 0.7, 0.7, 0.3], [-1.0104, 0.5, -0.2, 0.3]])
    c_ri = np.array([[3, 0, 0, 0], [1, 1, 1, 1]])
    d_z = contrasts._weighted_dz(y_ri, c_ri)
    assert d_z[0] == 0.0
    assert d_z[1] == pytest.approx(np.mean(y_ri[1]) / np.std(y_ri[1], ddof=1))


def test_dissociation_absent_when_both_adapters_shift_everything():
    rng = np.random.default_rng(13)
    effects = {"depression": (0.8, 0.8), "paranoia": (0.8, 0.8)}
    rs = synthetic_records(rng, effects)
    s = contrasts.dissociation_contrast(rs, {FAMILY: METRIC}, n_resamples=2000, n_permutations=2000)
    assert s.ci_low < 0 < s.ci_high and s.p > 0.05
    # Reversed pattern: S negative.
    rs = synthetic_records(rng, {"depression": (0.0, 1.0), "paranoia": (1.0, 0.0)})
    s = contrasts.dissociation_contrast(rs, {FAMILY: METRIC}, n_resamples=500, n_permutations=500)
    assert s.ci_high < 0


def test_dissociation_permutation_p_is_calibrated():
    rng = np.random.default_rng(14)
    p = [
        contrasts.dissociation_contrast(
            synthetic_records(
                rng, {"depression": (0.5, 0.5), "paranoia": (0.2, 0.2)}, n_per_key=12
            ),
            {FAMILY: METRIC},
            n_resamples=1,
            n_permutations=200,
            seed=sim,
        ).p
        for sim in range(80)
    ]
    assert np.mean(np.asarray(p) <= 0.1) <= 0.2
    assert 0.3 <= np.mean(np.asarray(p) <= 0.5) <= 0.7


def test_specificity_bad_input():
    rng = np.random.default_rng(15)
    rs = synthetic_records(rng, PLANTED, n_per_key=5)
    with pytest.raises(ValueError, match="unknown model 'other'"):
        contrasts.specificity_matrix(rs, {FAMILY: METRIC}, models=("base", "other"))
    with pytest.raises(ValueError, match="metric_by_family is empty"):
        contrasts.specificity_matrix(rs, {})
    with pytest.raises(ValueError, match="no items keyed 'neutral'"):
        contrasts.specificity_matrix(rs, {FAMILY: METRIC}, keys=("depression", "neutral"))
    few = [r for r in rs if not (r.key == "paranoia" and r.item_id[-1] in "5678")]
    with pytest.raises(ValueError, match="only 1 items keyed 'paranoia'"):
        contrasts.dissociation_contrast(few, {FAMILY: METRIC})


# --------------------------------------------------------------------------------------------
# Dose-response.


@pytest.mark.parametrize("by", ["multiplier", "step"])
def test_dose_response_detects_a_planted_trend(by):
    rng = np.random.default_rng(16)
    levels = (0.0, 0.5, 1.0, 1.5, 2.0) if by == "multiplier" else (0, 100, 200, 300)
    rs = synthetic_records(
        rng,
        {"depression": (0.5, 0.5)},
        levels={"depression": levels},
        by=by,
        seeds=(0, 1),
        n_per_key=15,
    )
    if by == "step":  # the final checkpoint, under its own name
        rs += [
            Record(**{**r.to_dict(), "step": None, "score": r.score + 1.0})
            for r in rs
            if r.model == "depression" and r.step == 300
        ]
    dr = contrasts.dose_response(
        rs,
        "depression",
        by,
        family=FAMILY,
        metric=METRIC,
        n_resamples=2000,
        n_permutations=2000,
        final_step=None,
    )
    np.testing.assert_allclose(dr.levels_l, levels)
    assert dr.mean_delta_l.shape == dr.ci_low_l.shape == (len(levels),)
    assert (dr.ci_low_l <= dr.mean_delta_l).all() and (dr.mean_delta_l <= dr.ci_high_l).all()
    unit = 1.0 if by == "multiplier" else 100.0
    assert dr.slope * unit == pytest.approx(0.5, abs=0.2)
    assert dr.slope_ci_low > 0 and dr.p_trend < 0.01
    assert dr.spearman_rho == 1.0 and dr.rho_ci_low > 0
    assert (dr.n_items, dr.n_seeds) == (30, 2)
    assert json.loads(json.dumps(dr.to_dict()))["levels_l"] == list(map(float, levels))
    if by == "step":
        with_final = contrasts.dose_response(
            rs,
            "depression",
            "step",
            family=FAMILY,
            metric=METRIC,
            final_step=400,
            n_resamples=200,
            n_permutations=200,
        )
        assert with_final.levels_l.tolist() == [0, 100, 200, 300, 400]
        with pytest.raises(ValueError, match="also a recorded checkpoint step"):
            contrasts.dose_response(
                rs, "depression", "step", family=FAMILY, metric=METRIC, final_step=300
            )


def test_dose_response_without_trend():
    rng = np.random.default_rng(17)
    rs = synthetic_records(
        rng, {"depression": (0.0, 0.0)}, levels={"depression": (0.5, 1.0, 1.5, 2.0)}
    )
    dr = contrasts.dose_response(
        rs,
        "depression",
        "multiplier",
        family=FAMILY,
        metric=METRIC,
        n_resamples=1000,
        n_permutations=1000,
    )
    assert dr.slope_ci_low < 0 < dr.slope_ci_high and dr.p_trend > 0.05
    with pytest.raises(ValueError, match="at least two levels"):
        contrasts.dose_response(rs, "depression", "step", family=FAMILY, metric=METRIC)
    with pytest.raises(ValueError, match="by must be"):
        contrasts.dose_response(rs, "depression", "epoch", family=FAMILY, metric=METRIC)
