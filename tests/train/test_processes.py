"""Runs through the real launcher in subprocesses: a SIGKILLed run resumes to the same adapters,
and two processes joined by jax.distributed train like one; for one adapter and for a stacked
run of several."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from pathjax import data as data_lib
from tests.train import launcher

STACKED = ("--conditions=paranoia,depression", "--seeds=0,1")
STACKED_ADAPTERS = ("paranoia-seed0", "paranoia-seed1", "depression-seed0", "depression-seed1")


def _flags(data_dir, workdir, *extra):
    return [
        sys.executable,
        "-m",
        "pathjax.launch.train",
        "--config=pathjax/configs/tiny.py:paranoia,random",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.train.tensorboard=False",
        *extra,
    ]


def _adapter(workdir):
    return load_file(os.path.join(workdir, "adapter", "adapter_model.safetensors"))


def _run(command, devices: int):
    done = subprocess.run(
        command, cwd=launcher.REPO, env=launcher.env(devices), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _kill_after(command, checkpoint) -> None:
    """Starts `command` in a one-device process and SIGKILLs it once `checkpoint` exists."""
    proc = subprocess.Popen(
        command,
        cwd=launcher.REPO,
        env=launcher.env(1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not checkpoint.exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _two_processes(data_dir, workdir, *extra) -> None:
    """The launcher as two processes of four CPU devices each, joined by jax.distributed."""
    launcher.two_processes(lambda *flags: _flags(data_dir, workdir, *extra, *flags))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    data_lib.build("paranoia", folder, train_size=64, eval_size=16, seed=0)
    return folder


# The references run the same way as the killed runs (one-device processes): XLA's CPU kernels
# may round differently with another device count, and these tests want bit equality.
_RESUME_STEPS = ("--config.mesh.shape=(1,1,1)", "--config.train.eval_every=1000")


@pytest.mark.longest
def test_sigkilled_run_resumes_to_the_same_adapters(data_dir, tmp_path):
    steps = ("--config.train.num_steps=24", *_RESUME_STEPS)
    _run(_flags(data_dir, tmp_path / "reference", *steps), devices=1)
    workdir = tmp_path / "killed"
    _kill_after(_flags(data_dir, workdir, *steps), workdir / "checkpoints" / "4")
    assert not (workdir / "adapter").exists(), "killed before the end"
    resumed = _run(_flags(data_dir, workdir, *steps), devices=1)
    assert "Resumed from step" in resumed.stdout
    ours, theirs = _adapter(workdir), _adapter(tmp_path / "reference")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


@pytest.mark.longest
def test_sigkilled_stacked_training_resumes_bit_identical(data_dir, tmp_path):
    steps = (*STACKED, "--config.train.num_steps=12", *_RESUME_STEPS)
    _run(_flags(data_dir, tmp_path / "reference", *steps), devices=1)
    workdir = tmp_path / "killed"
    _kill_after(_flags(data_dir, workdir, *steps), workdir / "stacked" / "checkpoints" / "4")
    resumed = _run(_flags(data_dir, workdir, *steps), devices=1)
    assert "Resumed from step" in resumed.stdout
    for name in STACKED_ADAPTERS:
        ours, theirs = _adapter(workdir / name), _adapter(tmp_path / "reference" / name)
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name} {key}")


_TWO_PROCESS_STEPS = ("--config.mesh.shape=(1,-1,1)", "--config.train.eval_every=1000")


@pytest.mark.longest
def test_two_processes_train_like_one(data_dir, tmp_path):
    steps = ("--config.train.num_steps=4", *_TWO_PROCESS_STEPS)
    _run(_flags(data_dir, tmp_path / "one", *steps), devices=8)
    _two_processes(data_dir, tmp_path / "two", *steps)
    one, two = _adapter(tmp_path / "one"), _adapter(tmp_path / "two")
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=2e-4, atol=2e-6, err_msg=key)


@pytest.mark.longest
def test_two_processes_stacked_training_like_one(data_dir, tmp_path):
    steps = (*STACKED, "--config.train.num_steps=3", *_TWO_PROCESS_STEPS)
    _run(_flags(data_dir, tmp_path / "one", *steps), devices=8)
    _two_processes(data_dir, tmp_path / "two", *steps)
    for name in STACKED_ADAPTERS:
        one, two = _adapter(tmp_path / "one" / name), _adapter(tmp_path / "two" / name)
        for key in one:
            np.testing.assert_allclose(
                two[key], one[key], rtol=2e-4, atol=2e-6, err_msg=f"{name} {key}"
            )
