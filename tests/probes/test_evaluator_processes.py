"""`pathjax.launch.evaluate` as two processes joined by jax.distributed (four CPU devices each, one
mesh over all eight) writes the records one process with eight devices writes."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from pathjax import lora, peft_format
from pathjax.configs import tiny
from pathjax.models import from_config
from pathjax.probes import records as records_lib
from pathjax.train import identity
from tests.train import launcher

FAMILIES = "P2,P3,P4,P7"  # Scoring and drift; P1 needs a built dataset, P6 samples text.
LIMITS = (
    "--config.eval.limits.p2=2",
    "--config.eval.limits.p3=2",
    "--config.eval.limits.p4=1",
    "--config.eval.limits.p7=2",
    # Eight CPU devices share this machine's memory: a small logits budget per pass.
    "--config.eval.max_logits=4194304",
)


def _command(adapter, workdir, *extra):
    return [
        sys.executable,
        "-m",
        "pathjax.launch.evaluate",
        "--config=pathjax/configs/tiny.py:paranoia,random",
        f"--workdir={workdir}",
        f"--adapters=paranoia={adapter}",
        f"--config.eval.families={FAMILIES}",
        "--config.mesh.shape=(1,-1,1)",
        *LIMITS,
        *extra,
    ]


def _adapter(folder):
    """A PEFT adapter of the tiny config's model with non-zero B (an untrained one is a no-op)."""
    config = tiny.get_config("paranoia,random")
    model, _ = from_config.model_from_config(config.model)
    lora_config = identity.lora_config_from(config)
    lora.add_lora(model, lora_config, rngs=nnx.Rngs(0))
    for _, a in lora.adapters(model):
        a.lora_b[...] = 0.3 * jax.random.normal(jax.random.key(a.index), a.lora_b.shape)
    peft_format.export_peft(model, lora_config, str(folder), base_model="preset:tiny-smollm2")
    return folder


def _records(workdir):
    (folder,) = (workdir / "records").iterdir()
    return [records_lib.read_jsonl(path) for path in sorted(folder.glob("*.jsonl"))]


@pytest.mark.longest
def test_two_processes_evaluate_like_one(tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    one = subprocess.run(
        _command(adapter, tmp_path / "one"),
        cwd=launcher.REPO,
        env=launcher.env(8),
        capture_output=True,
        text=True,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    outputs = launcher.two_processes(lambda *flags: _command(adapter, tmp_path / "two", *flags))
    # Process 0 alone wrote the report; the other printed no paths.
    assert (tmp_path / "two" / "report" / "report.json").is_file()
    assert "report.json" in outputs[0][0] and "report.json" not in outputs[1][0]

    want, got = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert len(got) == len(want) and all(len(g) > 0 for g in got)
    for got_family, want_family in zip(got, want, strict=True):
        assert [r.identity for r in got_family] == [r.identity for r in want_family]
        np.testing.assert_allclose(
            [r.score for r in got_family], [r.score for r in want_family], rtol=1e-5, atol=1e-6
        )
