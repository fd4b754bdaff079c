"""The LoRA training benchmark runs both sides end to end and reports sane numbers."""

import subprocess
import sys

import pytest

from pathjax.bench import train
from tests.train import launcher

# Benchmark smoke runs (both sides, torch too): the second lane of `make test-all`.
pytestmark = pytest.mark.slow


def _tiny_run(**overrides) -> dict:
    """The benchmark on the tiny Llama in float32: 2 x 16 tokens, one step timed, no warm-up."""
    args = dict(preset="tiny-llama", batch=2, seq_len=16, dtypes=("float32",), repeats=1, warmup=0)
    return train.run(**{**args, **overrides})


def test_benchmark_runs_both_sides_and_reports_ratios_and_mfu():
    report = _tiny_run()
    sides = {(r["side"], r["dtype"]) for r in report["results"]}
    assert sides == {(train.PATHJAX, "float32"), (train.REFERENCE, "float32")}
    for r in report["results"]:
        assert r["tokens_per_s"] > 0
        assert r["gflops_per_s"] > 0
        assert 0 < r["mfu"] < 1.5
    assert report["peak_flops_per_s"]["float32"] > 0
    assert report["speedup_vs_reference"]["float32"] > 0
    assert report["best_setting"]["ratio"] > 0
    # PEFT keeps float32 adapters; here the base is float32 too.
    assert report["reference_precision"]["float32"] == {
        "base": "torch.float32",
        "adapters": "torch.float32",
    }
    table = train.format_table(report)
    assert f"pathjax / {train.REFERENCE} (float32)" in table
    assert "MFU" in table


def test_benchmark_profiles_a_step_per_precision(tmp_path):
    report = _tiny_run(with_reference=False, profile_dir=str(tmp_path))
    prof = report["profiles"]["float32"]
    assert 0 < prof["matmul_share"] <= 1 and prof["top_ops"]
    assert "profile of one pathjax float32 step" in train.format_table(report)


def test_benchmark_measures_each_micro_batch_count_on_both_sides():
    report = _tiny_run(batch=4, micro_batches=(1, 2))
    assert report["micro_batches"] == [1, 2]
    settings = {(r["side"], r["micro_batches"]) for r in report["results"]}
    assert settings == {(s, c) for s in (train.PATHJAX, train.REFERENCE) for c in (1, 2)}
    assert set(report["speedup_vs_reference"]) == {"float32", "float32, 2 micro-batches"}
    best = report["best_setting"]
    fastest = max(
        (r for r in report["results"] if r["side"] == train.PATHJAX),
        key=lambda r: r["tokens_per_s"],
    )
    assert best[train.PATHJAX]["micro_batches"] == fastest["micro_batches"]
    table = train.format_table(report)
    assert f"pathjax / {train.REFERENCE} (float32, 2 micro-batches)" in table
    assert "each at its best setting" in table


def test_micro_batches_must_divide_the_batch():
    with pytest.raises(ValueError, match="divide the batch of 4 rows"):
        _tiny_run(batch=4, micro_batches=3)


def test_launcher_rejects_a_micro_batch_count_that_is_not_a_positive_integer():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pathjax.launch.benchmark",
            "--workload=train",
            "--micro_batches=1,0",
        ],
        cwd=launcher.REPO,
        env=launcher.env(1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "--micro_batches takes positive integers" in result.stderr
