"""The stacked-training benchmark runs all its sides end to end and reports sane numbers."""

import pytest

from pathjax.bench import stacked, train

# Benchmark smoke runs (both sides, torch too): the second lane of `make test-all`.
pytestmark = pytest.mark.slow


def test_stacked_training_benchmark_reports_all_sides():
    report = stacked.run(
        preset="tiny-llama", batch=2, seq_len=16, adapters=3, dtypes=("float32",), steps=2
    )
    results = {r["side"]: r for r in report["results"]}
    assert set(results) == set(stacked.SIDES)
    for r in results.values():
        assert r["adapters"] == 3 and r["steps"] == 2
        assert r["tokens_per_s"] > 0 and r["wall_s"] > 0
        assert 0 < r["mfu"] <= 1
        # The wall time holds every step, the compiling first ones too.
        assert r["wall_s"] >= r["first_steps_s"] > 0
    assert [results[s]["compiles"] for s in stacked.SIDES] == [1, 1, 3, 0]
    # Steady state counts all three adapters' tokens: per step of all of them, 3 x 2 x 16.
    stacked_side = results[stacked.STACKED]
    assert stacked_side["tokens_per_s"] == pytest.approx(3 * 2 * 16 / stacked_side["step_s"])
    versus = report["stacked_vs"]["float32"]
    assert set(versus) == set(stacked.BASELINES)
    for ratio in versus.values():
        assert ratio["tokens_per_s"] > 0 and ratio["wall_time"] > 0
    assert report["peak_flops_per_s"]["float32"] > 0
    assert (
        "matmul peak" in report["mfu_ceiling"]["float32"]
        or "fastest" in (report["mfu_ceiling"]["float32"])
    )
    assert report["machine"]["devices"] and "peft" in report["machine"]["versions"]
    table = stacked.format_table(report)
    for side in stacked.SIDES:
        assert f"| {side} | float32 |" in table
    assert f"stacked / {stacked.REFERENCE} (float32)" in table
    assert "MFU ceiling (float32)" in table
    assert train.REFERENCE in table


def test_stacked_training_benchmark_needs_a_steady_step():
    with pytest.raises(ValueError, match="steps=1 >= 2"):
        stacked.run(preset="tiny-llama", batch=2, seq_len=16, steps=1)
