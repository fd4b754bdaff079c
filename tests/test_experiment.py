"""The main job end to end on a tiny random model: every stage, the report, and resuming.

One test on purpose: the study is the expensive part, and the interrupted-then-resumed run
is the same study finished.
"""

import json
import os
import subprocess
import sys

import pytest

from pathjax import experiment
from pathjax.configs import tiny
from pathjax.probes import families, schema


class _Interrupted(Exception):
    pass


def _files(folder):
    return {
        os.path.join(root, name): os.path.getmtime(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    }


@pytest.mark.longest
def test_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    config = tiny.get_config("random")
    workdir = str(tmp_path / "study")

    # First run: killed while scoring P5, after training and the first families finished.
    def interrupt(*args, **kwargs):
        raise _Interrupted("killed")

    with monkeypatch.context() as patch:
        patch.setattr(families.family("P5"), "score", interrupt)
        with pytest.raises(_Interrupted):
            experiment.run_experiment([config], workdir)
    arch = os.path.join(workdir, "tiny-random")
    trained = _files(os.path.join(arch, "runs"))
    scored = _files(os.path.join(arch, "eval"))
    assert any(path.endswith("P4.jsonl") for path in scored)
    assert not any(path.endswith("P5.jsonl") for path in scored)

    # The rerun trains nothing again and rescores no finished family.
    results = experiment.run_experiment([config], workdir)
    after = _files(arch)
    assert all(after[path] == mtime for path, mtime in trained.items())
    assert all(after[path] == mtime for path, mtime in scored.items())

    paths = results[0]["paths"]
    for name in ("report.json", "report.md", "generations.md"):
        assert os.path.getsize(paths[name]) > 0
    figures = [p for p in paths if p.startswith("figures/")]
    assert figures and all(open(paths[f], "rb").read(4) == b"\x89PNG" for f in figures)

    report = json.loads(open(paths["report.json"]).read())
    text = open(paths["report.md"]).read()
    assert text.index("## Headline") < text.index("## P1")  # The headline comes first.
    records = [
        json.loads(line)
        for root, _, names in os.walk(os.path.join(arch, "eval"))
        for name in names
        if name.endswith(".jsonl")
        for line in open(os.path.join(root, name))
    ]
    seen = {(r["family"], r["model"]) for r in records}
    for family in schema.FAMILIES:
        for model in ("base", "control", "depression", "paranoia"):
            assert (family, model) in seen, (family, model)
    # Dose-response: intermediate checkpoints and other multipliers of D and P.
    assert {r["step"] for r in records if r["model"] == "depression"} >= {2, 4, None}
    assert {r["multiplier"] for r in records if r["model"] == "paranoia"} >= {0.5, 1.0, 1.5}
    assert report  # Parsed: strict JSON.

    # pathjax/launch/evaluate.py on the study's adapters: the same models, items and suite give the
    # same record set (reused, not rescored), and the launcher writes the report beside it.
    runs = os.path.join(arch, "runs")
    command = [
        sys.executable,
        "-m",
        "pathjax.launch.evaluate",
        "--config=pathjax/configs/tiny.py:random",
        f"--config.data.data_dir={os.path.join(arch, 'data')}",
        f"--workdir={os.path.join(arch, 'eval')}",
        *(
            f"--adapters={c}={os.path.join(runs, c + '-seed0')}"
            for c in ("depression", "paranoia", "control")
        ),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report.md" in done.stdout
    assert os.path.exists(os.path.join(arch, "eval", "report", "figures"))
    assert all(_files(arch)[path] == mtime for path, mtime in scored.items())
