"""Runs through the real launcher in subprocesses: a SIGKILLed run resumes to the same adapters,
and two processes joined by jax.distributed train like one."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from pathjax import data as data_lib
from tests.train import launcher


def _flags(data_dir, workdir, *extra):
    return [
        sys.executable,
        "-m",
        "launch.train",
        "--config=configs/tiny.py:paranoia,random",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.train.tensorboard=False",
        *extra,
    ]


def _adapter(workdir):
    return load_file(os.path.join(workdir, "adapter", "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    data_lib.build("paranoia", folder, train_size=64, eval_size=16, seed=0)
    return folder


@pytest.mark.longest
def test_sigkilled_run_resumes_to_the_same_adapters(data_dir, tmp_path):
    steps = [
        "--config.train.num_steps=24",
        "--config.mesh.shape=(1,1,1)",
        "--config.train.eval_every=1000",
    ]
    # The reference runs the same way (a one-device process): XLA's CPU kernels may round
    # differently with another device count, and this test wants bit equality.
    reference = subprocess.run(
        _flags(data_dir, tmp_path / "reference", *steps),
        cwd=launcher.REPO,
        env=launcher.env(1),
        capture_output=True,
        text=True,
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(
        _flags(data_dir, workdir, *steps),
        cwd=launcher.REPO,
        env=launcher.env(1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (workdir / "checkpoints" / "4").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (workdir / "adapter").exists(), "killed before the end"
    resumed = subprocess.run(
        _flags(data_dir, workdir, *steps),
        cwd=launcher.REPO,
        env=launcher.env(1),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from step" in resumed.stdout
    ours, theirs = _adapter(workdir), _adapter(tmp_path / "reference")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.longest
def test_two_processes_train_like_one(data_dir, tmp_path):
    common = [
        "--config.train.num_steps=4",
        "--config.mesh.shape=(1,-1,1)",
        "--config.train.eval_every=1000",
    ]
    single = subprocess.run(
        _flags(data_dir, tmp_path / "one", *common),
        cwd=launcher.REPO,
        env=launcher.env(8),
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    procs = [
        subprocess.Popen(
            _flags(
                data_dir,
                tmp_path / "two",
                *common,
                "--config.distributed.enabled=True",
                f"--config.distributed.coordinator_address=localhost:{port}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
            ),
            cwd=launcher.REPO,
            env=launcher.env(4),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    one, two = _adapter(tmp_path / "one"), _adapter(tmp_path / "two")
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=2e-4, atol=2e-6, err_msg=key)


def _stacked_flags(data_dir, workdir, *extra):
    return _flags(data_dir, workdir, "--conditions=paranoia,depression", "--seeds=0,1", *extra)


@pytest.mark.longest
def test_sigkilled_stacked_training_resumes_bit_identical(tmp_path):
    data_dir = tmp_path / "data"
    steps = [
        "--config.train.num_steps=12",
        "--config.train.checkpoint_every=2",
        "--config.mesh.shape=(1,1,1)",
        "--config.train.eval_every=1000",
    ]
    run = lambda workdir: subprocess.run(  # noqa: E731
        _stacked_flags(data_dir, workdir, *steps),
        cwd=launcher.REPO,
        env=launcher.env(1),
        capture_output=True,
        text=True,
    )
    reference = run(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(
        _stacked_flags(data_dir, workdir, *steps),
        cwd=launcher.REPO,
        env=launcher.env(1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (workdir / "stacked" / "checkpoints" / "4").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = run(workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from step" in resumed.stdout
    for name in ("paranoia-seed0", "paranoia-seed1", "depression-seed0", "depression-seed1"):
        ours, theirs = _adapter(workdir / name), _adapter(tmp_path / "reference" / name)
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name} {key}")


@pytest.mark.longest
def test_two_processes_stacked_training_like_one(tmp_path):
    data_dir = tmp_path / "data"
    common = [
        "--config.train.num_steps=3",
        "--config.mesh.shape=(1,-1,1)",
        "--config.train.eval_every=1000",
    ]
    single = subprocess.run(
        _stacked_flags(data_dir, tmp_path / "one", *common),
        cwd=launcher.REPO,
        env=launcher.env(8),
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    port = _free_port()
    procs = [
        subprocess.Popen(
            _stacked_flags(
                data_dir,
                tmp_path / "two",
                *common,
                "--config.distributed.enabled=True",
                f"--config.distributed.coordinator_address=localhost:{port}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
            ),
            cwd=launcher.REPO,
            env=launcher.env(4),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    for name in ("paranoia-seed0", "depression-seed1"):
        one, two = _adapter(tmp_path / "one" / name), _adapter(tmp_path / "two" / name)
        for key in one:
            np.testing.assert_allclose(two[key], one[key], rtol=2e-4, atol=2e-6, err_msg=key)
