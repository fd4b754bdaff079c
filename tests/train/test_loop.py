"""The training loop end to end on a tiny random model: resume, faults, sharding, bad config."""

import logging
import os
import shutil

import jax
import numpy as np
import pytest

from pathjax.configs import tiny
from pathjax.train import checkpointing, loop, metrics


def _config(data_dir, **overrides):
    config = tiny.get_config("paranoia,random")
    config.data.data_dir = str(data_dir)
    config.train.tensorboard = True
    config.mesh.shape = (1, 1, 1)  # One device: 8 virtual CPU devices only add overhead here.
    for dotted, value in overrides.items():
        section, field = dotted.split("__")
        config[section][field] = value
    return config


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("full")
    return loop.train(_config(data_dir), str(workdir))


def test_run_writes_metrics_and_checkpoints(uninterrupted):
    rows = metrics.read_metrics(uninterrupted.workdir)
    train_rows = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
    assert all(
        np.isfinite(r["loss"]) and r["tokens_per_s"] > 0 and r["mfu"] > 0 for r in train_rows
    )
    assert any(r["split"] == "validation" and "choice_accuracy" in r for r in rows)
    steps = checkpointing.Checkpointer(
        os.path.join(uninterrupted.workdir, "checkpoints"), every=2, keep=3
    ).steps()
    assert steps == [2, 4, 6]
    assert any(n.startswith("events.") for n in os.listdir(uninterrupted.workdir + "/tensorboard"))


def test_read_only_checkpointer_opens_quietly(uninterrupted, caplog):
    # Evaluation and export open checkpoints read-only on purpose; orbax's warnings about it
    # (the folder is read-only, the save interval was reset) were printed at every restore.
    with caplog.at_level(logging.WARNING):
        steps = checkpointing.Checkpointer(
            os.path.join(uninterrupted.workdir, "checkpoints"), every=2, read_only=True
        ).steps()
    assert steps == [2, 4, 6]
    noise = [r.getMessage() for r in caplog.records if "read only" in r.getMessage().lower()]
    assert not noise


def test_resumed_run_equals_uninterrupted(uninterrupted, data_dir, tmp_path):
    first = loop.train(_config(data_dir), str(tmp_path), max_steps=3)
    assert first.final_step == 3
    resumed = loop.train(_config(data_dir), str(tmp_path))
    assert resumed.final_step == 6
    for a, b in zip(_leaves(resumed.adapters), _leaves(uninterrupted.adapters), strict=True):
        np.testing.assert_array_equal(a, b)


def test_corrupt_latest_checkpoint_falls_back_to_previous(data_dir, tmp_path, capsys):
    loop.train(_config(data_dir), str(tmp_path), max_steps=4)  # Checkpoints 2 and 4.
    latest = tmp_path / "checkpoints" / "4" / "state"
    for root, _, files in os.walk(latest):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    result = loop.train(_config(data_dir), str(tmp_path), max_steps=5)
    out = capsys.readouterr().out
    assert "Resuming from step 2" in out and "[4]" in out
    assert result.final_step == 5


def test_resume_with_another_dataset_is_refused(data_dir, tmp_path):
    loop.train(_config(data_dir), str(tmp_path), max_steps=2)
    with pytest.raises(checkpointing.CheckpointMismatchError, match="dataset"):
        loop.train(_config(data_dir, data__seed=7), str(tmp_path), max_steps=3)


def test_nan_loss_stops_with_a_clear_message_and_keeps_good_checkpoints(data_dir, tmp_path):
    config = _config(data_dir, train__learning_rate=1e30, train__checkpoint_every=1)
    with pytest.raises(loop.TrainingDivergedError, match="last good checkpoint is step"):
        loop.train(config, str(tmp_path))
    remaining = checkpointing.Checkpointer(str(tmp_path / "checkpoints"), every=1, keep=3).steps()
    assert remaining, "the checkpoints before the divergence are kept"


@pytest.mark.parametrize(
    "field, value",
    [("train__num_steps", 0), ("train__grad_accumulation", 3), ("data__condition", "sad")],
)
def test_config_errors_name_the_field(data_dir, tmp_path, field, value):
    name = field.split("__")[1]
    with pytest.raises(ValueError, match=name if name != "condition" else "condition"):
        loop.train(_config(data_dir, **{field: value}), str(tmp_path))


@pytest.mark.slow  # Multi-device equality: the second lane of `make test-all`.
def test_sharded_step_on_a_2x2x2_mesh_equals_one_device(uninterrupted, data_dir, tmp_path):
    assert jax.device_count() == 8
    sharded = loop.train(_config(data_dir, mesh__shape=(2, 2, 2)), str(tmp_path / "mesh"))
    single = loop.train(_config(data_dir, mesh__shape=(1, 1, 1)), str(tmp_path / "one"))
    for a, b in zip(_leaves(sharded.adapters), _leaves(single.adapters), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def test_gradient_accumulation_equals_one_batch(uninterrupted, data_dir, tmp_path):
    accumulated = loop.train(_config(data_dir, train__grad_accumulation=4), str(tmp_path))
    for a, b in zip(_leaves(accumulated.adapters), _leaves(uninterrupted.adapters), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def teardown_module():
    shutil.rmtree("/tmp/pathjax-test-unused", ignore_errors=True)
