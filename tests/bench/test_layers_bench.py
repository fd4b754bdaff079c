"""The layer-layout benchmark measures both layouts end to end, on cold compiles."""

import json
import os
import subprocess
import sys

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from pathjax.bench import layers
from tests.train import launcher

_CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


def _compile_fresh(scale: float) -> None:
    """Compiles a function no other test compiles (its constant is in the cache key)."""
    jax.jit(lambda x: x * scale + 1.0).lower(1.0).compile()


def test_the_cold_cache_writes_no_entry_and_the_cache_works_again_after(tmp_path):
    cache_dir = tmp_path / "cache"
    saved = {name: getattr(jax.config, name) for name in _CACHE_SETTINGS}
    try:
        # Every compile cached, into an empty folder.
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        compilation_cache.reset_cache()
        # In use before, as in a process that compiled with it already (a test session).
        _compile_fresh(2.5)
        entries = len(os.listdir(cache_dir))
        assert entries >= 1
        with layers.cold_compilation_cache():
            _compile_fresh(3.25)
        assert len(os.listdir(cache_dir)) == entries
        _compile_fresh(4.75)  # The cache is back on: this one is written.
        assert len(os.listdir(cache_dir)) > entries
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


@pytest.mark.slow
def test_benchmark_measures_both_layouts_for_each_remat(tmp_path):
    report = layers.run(
        preset="tiny-llama",
        batch=2,
        seq_len=16,
        remats=("none", "dots"),
        repeats=1,
        warmup=0,
        profile_dir=str(tmp_path),
    )
    settings = [(r["layout"], r["remat"]) for r in report["results"]]
    assert settings == [("loop", "none"), ("scan", "none"), ("loop", "dots"), ("scan", "dots")]
    for r in report["results"]:
        assert r["lower_s"] > 0 and r["compile_s"] > 0 and r["median_s"] > 0
        assert r["tokens_per_s"] == pytest.approx(2 * 16 / r["median_s"])
        assert r["temp_mib"] >= 0
        assert 0 < r["mfu"] <= 1  # Against a labelled ceiling that is never beaten.
    assert set(report["scan_vs_loop"]) == {"float32, remat none", "float32, remat dots"}
    for ratio in report["scan_vs_loop"].values():
        assert all(value > 0 for value in ratio.values())
    # One profile per setting; the scanned step's operations are not the listed step's.
    ops = {name: {o["op"] for o in p["top_ops"]} for name, p in report["profiles"].items()}
    assert len(ops) == 4 and all(ops.values())
    scan_ops = ops[layers.setting_name("float32", "scan", "none")]
    assert scan_ops != ops[layers.setting_name("float32", "loop", "none")]
    assert "while" not in scan_ops  # A loop's event spans its body's: not counted twice.
    assert report["machine"]["provenance"]["libraries"]["jax"]
    table = layers.format_table(report)
    assert "| loop | none | float32 |" in table and "| scan | dots | float32 |" in table
    assert "scan / loop (float32, remat dots)" in table
    assert "MFU ceiling (float32)" in table
    assert "profile of one step (float32, scan, remat none)" in table


def _benchmark(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pathjax.launch.benchmark", "--workload=layers", *flags],
        cwd=launcher.REPO,
        env=launcher.env(1),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_launcher_runs_the_layers_workload_and_writes_its_report(tmp_path):
    out = tmp_path / "layers.json"
    result = _benchmark(
        "--preset=tiny-llama",
        "--batch=2",
        "--seq_len=16",
        "--repeats=1",
        "--dtypes=float32",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scan / loop (float32, remat none)" in result.stdout
    report = json.loads(out.read_text())
    assert report["workload"] == "layers"
    assert [r["layout"] for r in report["results"]] == list(layers.LAYOUTS)


def test_launcher_rejects_an_unknown_remat_policy():
    result = _benchmark("--remat=none,some")
    assert result.returncode != 0
    assert "--remat takes policies among none, full, dots" in result.stderr
