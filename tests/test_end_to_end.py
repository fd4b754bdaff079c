"""The fast lane's one end-to-end path on the tiny random model: train through the launcher,
stop at a checkpoint, resume, evaluate every probe family, write the report.

`make test` runs this instead of the whole-study test (tests/test_experiment.py, `make
test-all`): one adapter, a couple of items per family, no dose-response, one device.
"""

import json
import os
import subprocess
import sys

from pathjax.configs import tiny
from pathjax.probes import run, schema
from tests.train import launcher


def _train(data_dir, workdir, *extra) -> str:
    """`python -m pathjax.launch.train` on one CPU device, as a user runs it; returns its stdout."""
    command = [
        sys.executable,
        "-m",
        "pathjax.launch.train",
        "--config=pathjax/configs/tiny.py:paranoia,random",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.mesh.shape=(1,1,1)",
        "--config.train.num_steps=4",
        *extra,
    ]
    done = subprocess.run(
        command, cwd=launcher.REPO, env=launcher.env(1), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _eval_config(data_dir):
    config = tiny.get_config("paranoia,random")
    config.data.data_dir = str(data_dir)
    limits = config.eval.limits
    limits.p1_items_per_split = limits.p2 = limits.p3 = limits.p7 = 2
    limits.p4 = limits.p5 = limits.p6 = 1
    limits.p6_samples, limits.p6_max_new_tokens = 1, 4
    config.eval.dose_families = ""  # Dose-response is the whole-study test's.
    return config


def test_launcher_trains_stops_at_a_checkpoint_resumes_evaluates_and_reports(tmp_path):
    data_dir, workdir = tmp_path / "data", tmp_path / "run"

    stopped = _train(data_dir, workdir, "--max_steps=2")
    assert "Trained to step 2" in stopped
    resumed = _train(data_dir, workdir)
    assert "from step 2" in resumed and "Trained to step 4" in resumed
    steps = sorted(int(name) for name in os.listdir(workdir / "checkpoints"))
    assert steps == [2, 4]
    assert os.path.isfile(workdir / "adapter" / "adapter_model.safetensors")

    source = run.AdapterSource("paranoia", str(workdir), "paranoia")
    paths = run.evaluate_and_report(_eval_config(data_dir), [source], str(tmp_path / "eval"))

    for name in ("report.json", "report.md", "generations.md"):
        assert os.path.getsize(paths[name]) > 0, name
    report = json.loads(open(paths["report.json"]).read())  # Strict JSON: it parses.
    assert report["metadata"]["adapters"][0]["name"] == "paranoia"
    assert "## Headline" in open(paths["report.md"]).read()
    records = [
        json.loads(line)
        for root, _, names in os.walk(tmp_path / "eval" / "records")
        for name in names
        if name.endswith(".jsonl")
        for line in open(os.path.join(root, name))
    ]
    seen = {(r["family"], r["model"]) for r in records}
    for family in schema.FAMILIES:
        for model in (schema.BASE_MODEL, "paranoia"):
            assert (family, model) in seen, (family, model)
