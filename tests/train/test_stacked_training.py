"""Stacked training: K adapters (conditions x seeds) in one run, each updated exactly as if it
were trained alone, with its own outputs; resumable as one; refused when they cannot stack.
"""

import json
import os

import jax
import numpy as np
import pytest

from pathjax.configs import tiny
from pathjax.train import checkpointing, loop, metrics, restore, stacking

CONDITIONS = ("depression", "paranoia", "control")
SEEDS = (0, 1)


def _config(data_dir, **overrides):
    config = tiny.get_config("paranoia,random")
    config.data.data_dir = str(data_dir)
    config.mesh.shape = (1, 1, 1)
    config.train.num_steps = 5
    config.train.checkpoint_every = 2
    config.train.eval_every = 5
    config.train.grad_accumulation = 2
    # Clipping that engages (the tiny model's gradient norms are ~0.1-1): each adapter must
    # clip by its own norm, not the stack's.
    config.train.max_grad_norm = 0.05
    config.lora.dropout = 0.1  # Each adapter draws its own dropout masks from its own key.
    # One length bucket: every adapter's batches have the same shape, so the separate runs
    # below compute on exactly the shapes the stacked one does.
    config.data.buckets = (128,)
    for dotted, value in overrides.items():
        section, field = dotted.split("__")
        config[section][field] = value
    return config


def _runs(data_dir, root, conditions=CONDITIONS[:2], seeds=SEEDS[:1], **overrides):
    # Seeds that differ from the condition order: initialization and data order per adapter.
    return stacking.adapter_runs(_config(data_dir, **overrides), conditions, seeds, str(root))


def _relative_difference(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def stacked(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("stacked")
    runs = stacking.adapter_runs(_config(data_dir), CONDITIONS, (0,), str(root))
    runs[1] = stacking.AdapterRun(
        runs[1].name, _with_seed(runs[1].config, 1), runs[1].workdir
    )  # Different seeds too.
    return runs, loop.train_stacked(runs, str(root / "stacked"))


def _with_seed(config, seed):
    config = config.copy_and_resolve_references()
    config.train.seed = seed
    return config


def test_stacked_training_equals_each_adapter_trained_alone(stacked, tmp_path):
    runs, results = stacked
    for run, result in zip(runs, results, strict=True):
        alone = loop.train(run.config, str(tmp_path / run.name))
        rows = metrics.read_metrics(alone.workdir)
        assert any(
            r["grad_norm"] > run.config.train.max_grad_norm for r in rows if "grad_norm" in r
        )
        ours, theirs = jax.tree.leaves(result.adapters), jax.tree.leaves(alone.adapters)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert _relative_difference(a, b) <= 1e-6, run.name
        # The metrics each adapter logs are its own run's.
        stacked_rows = [r for r in metrics.read_metrics(run.workdir) if r["split"] == "train"]
        alone_rows = [r for r in rows if r["split"] == "train"]
        np.testing.assert_allclose(
            [r["loss"] for r in stacked_rows], [r["loss"] for r in alone_rows], rtol=1e-6
        )
    # Different conditions and seeds: different adapters.
    first, second = (jax.tree.leaves(r.adapters)[0] for r in results[:2])
    assert not np.allclose(first, second)


def test_stacked_training_writes_each_adapter_its_own_outputs(stacked):
    runs, results = stacked
    for k, (run, result) in enumerate(zip(runs, results, strict=True)):
        assert os.path.isfile(os.path.join(run.workdir, "adapter", "adapter_config.json"))
        with open(os.path.join(run.workdir, restore.STACKED_POINTER)) as f:
            assert json.load(f)["index"] == k
        # Each adapter's folder says what made it: its config and the provenance block.
        with open(os.path.join(run.workdir, "config.json")) as f:
            assert json.load(f)["data"]["condition"] == run.config.data.condition
        with open(os.path.join(run.workdir, "provenance.json")) as f:
            assert json.load(f)["libraries"]["jax"]
        assert [r["step"] for r in metrics.read_metrics(run.workdir) if r["split"] == "train"] == [
            1,
            2,
            3,
            4,
            5,
        ]
        # A checkpoint step of one adapter loads through its workdir (dose-response does).
        assert restore.checkpoint_steps(run.workdir) == [2, 4, 5]
        loaded = restore.load_trained(run.config, run.workdir)
        leaves = jax.tree.leaves(result.adapters)
        for a, b in zip(jax.tree.leaves(_adapters_of(loaded.model)), leaves, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _adapters_of(model):
    from flax import nnx

    from pathjax import lora

    return nnx.state(model, lora.ADAPTERS)


def test_stacked_training_resumes_bit_identical(stacked, data_dir, tmp_path):
    runs, results = stacked
    moved = [stacking.AdapterRun(r.name, r.config, str(tmp_path / r.name)) for r in runs]
    first = loop.train_stacked(moved, str(tmp_path / "stacked"), max_steps=3)
    assert [r.final_step for r in first] == [3, 3, 3]
    resumed = loop.train_stacked(moved, str(tmp_path / "stacked"))
    for ours, theirs in zip(resumed, results, strict=True):
        for a, b in zip(
            jax.tree.leaves(ours.adapters), jax.tree.leaves(theirs.adapters), strict=True
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        # The steps run again after the checkpoint at 2 are logged once.
        steps = [r["step"] for r in metrics.read_metrics(ours.workdir) if r["split"] == "train"]
        assert steps == [1, 2, 3, 4, 5]


def test_stacked_training_refuses_a_resume_with_other_adapters(data_dir, tmp_path):
    runs = _runs(data_dir, tmp_path, train__num_steps=2)
    loop.train_stacked(runs, str(tmp_path / "stacked"), max_steps=2)
    other = _runs(data_dir, tmp_path, conditions=("depression", "control"), train__num_steps=2)
    with pytest.raises(checkpointing.CheckpointMismatchError, match="control-seed0"):
        loop.train_stacked(other, str(tmp_path / "stacked"))


def test_stacked_training_refuses_adapters_that_cannot_share_a_step(data_dir, tmp_path):
    runs = _runs(data_dir, tmp_path)
    other = _config(data_dir, lora__rank=4)
    mixed = [runs[0], stacking.AdapterRun("other", other, str(tmp_path / "other"))]
    with pytest.raises(ValueError, match=r"lora\.rank: 8 vs 4"):
        loop.train_stacked(mixed, str(tmp_path / "stacked"))
    with pytest.raises(ValueError, match="own workdir"):
        loop.train_stacked(
            [runs[0], stacking.AdapterRun("b", runs[1].config, runs[0].workdir)], "x"
        )


@pytest.mark.slow  # Multi-device equality: the second lane of `make test-all`.
def test_stacked_training_on_a_2x2x2_mesh_equals_one_device(stacked, data_dir, tmp_path):
    assert jax.device_count() == 8
    runs, results = stacked
    sharded_runs = stacking.adapter_runs(
        _config(data_dir, mesh__shape=(2, 2, 2)), CONDITIONS[:2], (0,), str(tmp_path)
    )
    sharded = loop.train_stacked(sharded_runs, str(tmp_path / "stacked"))
    # Adapter 0 is the same run in both (depression, seed 0).
    for a, b in zip(
        jax.tree.leaves(sharded[0].adapters), jax.tree.leaves(results[0].adapters), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)
