"""`python -m pathjax.launch.data` builds the data and prints examples."""

import os
import subprocess
import sys

from pathjax.data import builder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_launcher_builds_and_prints_examples(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["--condition=depression", f"--data_dir={tmp_path}", "--size=30", "--eval_size=10"]
    result = subprocess.run(
        [sys.executable, "-m", "pathjax.launch.data", *args, "--examples=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "=== test_format | third_person" in result.stdout
    assert "target withdrawal" in result.stdout
    version_dir = (
        tmp_path / "pathjax_behavior" / "depression-train30-eval10-seed0" / builder.VERSION
    )
    assert (version_dir / "CARD.md").is_file() and (version_dir / "train_vocabulary.txt").is_file()


def test_launcher_rejects_an_unknown_condition(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pathjax.launch.data",
            "--condition=anxious",
            f"--data_dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "depression" in result.stderr
