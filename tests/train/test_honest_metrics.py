"""Numbers a run logs must be true: MFU never above 1 against a labelled ceiling, only real
tokens counted, one row per step after a resume, and a second seed reuses the compiled step."""

import json

import ml_collections
import pytest

from pathjax.configs import tiny
from pathjax.models import flops, presets
from pathjax.train import loop, metrics, peak
from pathjax.train.throughput import Throughput


def _config(peak_flops: float = 0.0):
    return ml_collections.ConfigDict(
        {"train": {"peak_flops_per_device": peak_flops}, "model": {"dtype": "float32"}}
    )


def test_mfu_stays_at_most_one_when_the_measured_ceiling_was_low(monkeypatch):
    model_config = presets.preset_config("tiny-llama")
    # A ceiling measured under load: far below what the window then reaches.
    monkeypatch.setattr(peak, "measured_matmul_peak", lambda dtype, fresh=False: 1.0)
    meter = Throughput(_config(), model_config, [(64, 64, 4)])
    meter.add([1000.0], [100.0], rows=8)
    window = meter.window()
    assert window["mfu"] <= 1.0
    assert window["mfu_ceiling_flops_per_s"] >= 1.0
    assert "measured float32 matmul peak" in meter.describe()


def test_a_datasheet_ceiling_is_labelled_as_one():
    meter = Throughput(_config(989e12), presets.preset_config("tiny-llama"), [(64, 64, 4)])
    assert "datasheet" in meter.describe() and "989000.0 GFLOP/s" in meter.describe()


def test_only_real_tokens_count():
    model_config = presets.preset_config("tiny-llama")
    meter = Throughput(_config(1e12), model_config, [(64, 64, 4)])
    meter.add([300.0], [40.0], rows=8)
    # 300 real tokens in rows of mean length 37.5, whatever length the batch was padded to.
    expected = flops.lora_training_flops(model_config, [(64, 64, 4)], 300.0, 37.5, 40.0)
    assert meter.flops == pytest.approx(expected) and meter.tokens == 300.0


def test_a_resumed_run_logs_each_step_once(tmp_path):
    writer = metrics.MetricsWriter(str(tmp_path), tensorboard=False)
    for step in range(1, 7):
        writer.write(step, "train", {"loss": 1.0})
    writer.close()
    # Killed after step 6; the last checkpoint was step 4: steps 5 and 6 run again.
    writer = metrics.MetricsWriter(str(tmp_path), tensorboard=False, resume_step=4)
    for step in (5, 6):
        writer.write(step, "train", {"loss": 0.5})
    writer.close()
    rows = metrics.read_metrics(str(tmp_path))
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in rows[4:]] == [0.5, 0.5]
    with open(tmp_path / "metrics.jsonl") as f:
        assert all(json.loads(line) for line in f)


def test_a_second_seed_reuses_the_compiled_step(tmp_path):
    config = tiny.get_config("paranoia,random")
    config.data.data_dir = str(tmp_path / "data")
    config.train.num_steps = 1
    config.train.eval_every = 1000
    loop.train(config, str(tmp_path / "seed0"))
    compiled = dict(loop._STEP_CACHE)
    other = config.copy_and_resolve_references()
    other.train.seed = 1
    other.train.log_every = 7  # Logging does not change the step either.
    loop.train(other, str(tmp_path / "seed1"))
    assert list(loop._STEP_CACHE.values()) == list(compiled.values())
