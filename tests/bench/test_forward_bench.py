"""The forward benchmark runs end to end and counts FLOPs the way a hand count does."""

import pytest

from pathjax.bench import forward
from pathjax.models import flops, presets


def test_flop_count_of_tiny_llama_by_hand():
    config = presets.preset_config("tiny-llama")
    d, m, v, layers, seq = 32, 64, 128, 2, 8
    kv = 2 * 8  # Two key/value heads of head_dim 8.
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * m + 2 * d  # q, k, v, o, MLP, two norms.
    matmul_params = layers * per_layer + d + v * d  # + final norm + tied head.
    attention = 2 * 2 * layers * seq * 4 * 8
    expected = 3 * seq * (2 * matmul_params + attention)
    assert flops.forward_flops(config, tokens=3 * seq, seq_len=seq) == expected


@pytest.mark.slow  # A benchmark smoke run (both sides): the second lane of `make test-all`.
def test_benchmark_runs_both_sides_and_reports_ratios():
    report = forward.run(
        preset="tiny-llama", batch=2, seq_len=8, dtypes=("float32",), repeats=2, warmup=0
    )
    sides = {(r["side"], r["dtype"]) for r in report["results"]}
    assert sides == {("pathjax", "float32"), ("transformers", "float32")}
    assert all(r["tokens_per_s"] > 0 for r in report["results"])
    assert report["speedup_vs_transformers"]["float32"] > 0
    assert "pathjax / transformers (float32)" in forward.format_table(report)
