"""The evaluator benchmark runs both sides end to end, and they compute the same scores."""

import numpy as np
import pytest

from pathjax.bench import evaluate

# Benchmark smoke runs (both sides, torch too): the second lane of `make test-all`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def report(weights_dir):
    return evaluate.run(
        preset="tiny-smollm2",
        random_weights=True,
        num_prompts=3,
        batch=2,  # A short last batch on both sides.
        dtypes=("float32",),
        repeats=1,
        torch_threads=1,  # Fast on a loaded machine too.
        work_dir=str(weights_dir),  # Keeps the exported weights for the last test.
    )


def test_report_has_both_sides_both_parts_and_ratios(report):
    rows = {(r["side"], r["part"]) for r in report["results"]}
    assert rows == {(s, p) for s in (evaluate.PATHJAX, evaluate.REFERENCE) for p in evaluate.PARTS}
    for r in report["results"]:
        assert r["prompts"] == 3
        assert r["positions"] == report["positions"][r["part"]]
        assert r["prompts_per_s"] > 0 and r["positions_per_s"] > 0
        assert r["first_call_s"] > 0
        assert (r["compile_s"] is None) == (r["side"] == evaluate.REFERENCE)
    assert set(report["speedup_vs_reference"]["float32"]) == {"score", "drift", "total"}
    table = evaluate.format_table(report)
    assert f"pathjax / {evaluate.REFERENCE} (float32)" in table
    assert "agreement (float32): ok" in table


def test_positions_count_scored_tokens_of_every_model(report):
    data = report["data"]
    # Four models: base + 3 adapters.
    expected_score = 4 * data["prompts"] * 2 * data["mean_continuation_tokens"]
    assert report["positions"]["score"] == pytest.approx(expected_score)
    assert report["positions"]["drift"] == pytest.approx(4 * 3 * data["mean_text_tokens"])


def test_sides_agree_and_adapters_matter(report):
    check = report["agreement"]["float32"]
    assert check["ok"]
    assert check["max_abs_diff"]["logp"] <= 1e-3
    for name in ("prompt_jsd_bits", "drift_jsd_bits", "drift_kl_model_base"):
        assert check["max_abs_diff"][name] <= 1e-4
    # The agreement is not vacuous: each adapter moves the distributions well past the tolerance.
    effect = report["adapter_effect"]["float32"]
    assert min(effect["mean_drift_jsd_bits"]) > 10 * check["tolerance"]["drift_jsd_bits"]


def test_compare_flags_a_difference_and_misplaced_padding():
    ours = {"logp": np.array([[1.0, np.nan]]), "drift_jsd_bits": np.array([0.1])}
    assert evaluate.compare(ours, ours) == {"logp": 0.0, "drift_jsd_bits": 0.0}
    shifted = {"logp": np.array([[1.5, np.nan]]), "drift_jsd_bits": np.array([0.1])}
    assert evaluate.compare(ours, shifted)["logp"] == pytest.approx(0.5)
    misplaced = {"logp": np.array([[np.nan, 1.0]]), "drift_jsd_bits": np.array([0.1])}
    assert evaluate.compare(ours, misplaced)["logp"] == float("inf")


def test_pathjax_side_passes_batch_prompts_per_model(report, weights_dir, monkeypatch):
    """The budget the benchmark sets makes the evaluator group exactly `batch` prompts."""
    from pathjax.models import tokenizers
    from pathjax.probes import evaluator as evaluator_lib

    tok = tokenizers.load_tokenizer("smollm2-135m")
    work = evaluate.make_workload(tok, num_prompts=5, add_bos=False)
    del report  # Only for the weights it exported.
    base = str(weights_dir / "base")
    peft_folders = [str(weights_dir / n) for n in evaluate.adapter_names()]
    side = evaluate.PathjaxSide(base, peft_folders, tok, "float32", add_bos=False)
    rows = []
    for name in ("_prefill", "_drift"):
        original = getattr(evaluator_lib, name)

        def recording(graphdef, state, ids, *args, _original=original, _name=name, **kwargs):
            rows.append((_name, ids.shape[0]))
            return _original(graphdef, state, ids, *args, **kwargs)

        monkeypatch.setattr(evaluator_lib, name, recording)
    side.score(work, batch=2)
    side.drift(work, batch=2)
    assert rows == [("_prefill", 2)] * 3 + [("_drift", 2)] * 3
