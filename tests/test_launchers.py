"""What every launcher shares: offline unless downloads are asked for."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

from pathjax.launch import common

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCHERS = sorted(
    p
    for p in (ROOT / "pathjax" / "launch").glob("*.py")
    if p.name not in ("__init__.py", "common.py")
)


@pytest.mark.parametrize(
    ("argv", "environ", "requested"),
    [
        ([], {}, False),
        (["--allow_downloads"], {}, True),
        (["-allow_downloads"], {}, True),
        (["--allow_downloads=true"], {}, True),
        (["--allow_downloads=false"], {}, False),
        (["--allow_downloads", "--noallow_downloads"], {}, False),
        ([], {common.ALLOW_DOWNLOADS_ENV: "1"}, True),
        (["--noallow_downloads"], {common.ALLOW_DOWNLOADS_ENV: "1"}, False),
        (["--", "--allow_downloads"], {}, False),  # Positional after `--`.
        (["--allow_downloads_extra"], {}, False),
    ],
)
def test_downloads_requested(argv, environ, requested):
    assert common.downloads_requested(["launcher", *argv], environ) is requested


def test_offline_unless_asked_and_a_users_value_is_kept():
    environ = {}
    assert not common.set_hub_access(["launcher"], environ)
    assert environ == {"HF_HUB_OFFLINE": "1"}
    environ = {}
    assert common.set_hub_access(["launcher", "--allow_downloads"], environ)
    assert "HF_HUB_OFFLINE" not in environ
    environ = {common.ALLOW_DOWNLOADS_ENV: "1"}
    assert common.set_hub_access(["launcher"], environ)
    assert "HF_HUB_OFFLINE" not in environ
    environ = {"HF_HUB_OFFLINE": "1"}  # Set by the user: kept even with the opt-in.
    common.set_hub_access(["launcher", "--allow_downloads"], environ)
    assert environ == {"HF_HUB_OFFLINE": "1"}
    environ = {"HF_HUB_OFFLINE": "0"}
    common.set_hub_access(["launcher"], environ)
    assert environ == {"HF_HUB_OFFLINE": "0"}


def _imports_pathjax(node: ast.stmt) -> bool:
    """Any pathjax import but the launchers' `common`, which decides hub access (its import
    pulls in no hub library: the test after the parametrized one checks)."""
    if isinstance(node, ast.ImportFrom):
        if node.module == "pathjax.launch" and [a.name for a in node.names] == ["common"]:
            return False
        return (node.module or "").split(".")[0] == "pathjax"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "pathjax" for alias in node.names)
    return False


def _calls_set_hub_access(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "common.set_hub_access"
    )


def test_the_launchers_are_found():
    # An empty list would make the parametrized test below pass by running nothing (it did
    # after the launchers moved into the package).
    assert {"train", "evaluate", "generate", "benchmark"} <= {p.stem for p in LAUNCHERS}


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.stem)
def test_every_launcher_decides_hub_access_before_importing_pathjax(path):
    source = path.read_text()
    assert "HF_HUB_OFFLINE" not in source, "pathjax/launch/common.py alone decides it"
    body = ast.parse(source).body
    calls = [i for i, node in enumerate(body) if _calls_set_hub_access(node)]
    imports = [i for i, node in enumerate(body) if _imports_pathjax(node)]
    assert calls and imports and calls[0] < imports[0]


def test_importing_the_launchers_common_module_loads_no_hub_library():
    code = (
        "import sys, pathjax.launch.common\n"
        "print([m for m in ('huggingface_hub', 'transformers', 'jax') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def _hub_state_after_import(*argv: str) -> str:
    """`HF_HUB_OFFLINE` and huggingface_hub's reading of it, once a launcher is imported."""
    # huggingface_hub also reads TRANSFORMERS_OFFLINE (conftest sets both).
    unset = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", common.ALLOW_DOWNLOADS_ENV)
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    code = (
        f"import sys; sys.argv = ['pathjax.launch.generate', *{list(argv)!r}]\n"
        "import os, pathjax.launch.generate\n"
        "from huggingface_hub import constants\n"
        "print(os.environ.get('HF_HUB_OFFLINE'), constants.HF_HUB_OFFLINE)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-2:]


def test_a_launcher_goes_offline_by_default_and_online_on_request():
    assert _hub_state_after_import() == ["1", "True"]
    assert _hub_state_after_import("--allow_downloads") == ["None", "False"]


def _launch_data(cwd, *flags):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pathjax.launch.data",
            "--condition=control",
            "--size=20",
            "--eval_size=8",
        ]
        + list(flags),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_launch_data_writes_where_the_configs_read_and_keeps_library_logs_quiet(tmp_path):
    from pathjax.configs import base

    # The configs' data_dir is relative: where the user runs from.
    result = _launch_data(tmp_path)
    built = tmp_path / base.get_base_config().data.data_dir / "pathjax_behavior"
    assert built.is_dir() and any(built.glob("control-train20-eval8-seed0/*/CARD.md"))
    output = result.stdout + result.stderr
    assert "Data and card:" in result.stdout  # pathjax's own lines stay.
    assert "preparing dataset" not in output.lower() and "Generating dataset" not in output
    assert "Generating splits" not in output and "custom data configuration" not in output
    # --verbosity brings the library logs back.
    (tmp_path / "verbose").mkdir()
    verbose = _launch_data(tmp_path / "verbose", "--verbosity=0")
    assert "Preparing dataset pathjax_behavior" in verbose.stderr
    assert "Generating dataset" in verbose.stderr  # TFDS's own absl INFO line.
    assert "custom data configuration" in verbose.stderr


def test_shipped_configs_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    from pathjax.configs import load

    monkeypatch.chdir(tmp_path)  # Outside the repository, as after `pip install`.
    resolved = load.resolve_spec("tiny:paranoia,random")
    path, _, arg = resolved.partition(":")
    assert os.path.isfile(path) and path.endswith("tiny.py") and arg == "paranoia,random"
    # A repo-relative path (the README's spelling) resolves to the shipped file too.
    assert load.resolve_spec("pathjax/configs/tiny.py").endswith("tiny.py")
    assert load.config_from_spec("tiny:random").experiment.name == "tiny-random"
    # A path that exists wins over a shipped name; an unknown name fails listing the known.
    mine = tmp_path / "tiny.py"
    mine.write_text("def get_config(arg=None):\n    return None\n")
    assert load.resolve_spec(str(mine)) == str(mine)
    with pytest.raises(FileNotFoundError, match="smollm2_135m"):
        load.config_from_spec("no_such_model")


def test_a_launcher_runs_as_an_installed_command_outside_the_repository(tmp_path):
    import shutil

    command = shutil.which("pathjax-data", path=os.path.dirname(sys.executable))
    assert command, "pip install -e . installs the pathjax-* console scripts (setup.py)"
    result = subprocess.run(
        [command, "--condition=control", "--size=20", "--eval_size=8", "--data_dir=built"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "built" / "pathjax_behavior").is_dir()


@pytest.mark.slow  # About a minute: every benchmark step of the GPU check on tiny presets.
def test_the_h200_check_script_runs_on_cpu_with_tiny_settings(tmp_path):
    # The script is run only when a device is lent, so its CPU smoke settings (its header) are
    # what keeps it runnable: a broken path or flag would otherwise surface on the device.
    env = {
        **os.environ,
        "OUT": str(tmp_path),
        "WHEELS": "",
        "PYTHON": sys.executable,
        "PRESET": "tiny-llama",
        "SEQ_LEN": "64",
        "BATCH": "2",
        "FALLBACK_BATCH": "2",
        "REPEATS": "1",
        "EVAL_PRESET": "tiny-smollm2",
        "EVAL_TOKENIZER": "smollm2-135m",
        "NUM_PROMPTS": "2",
        "EVAL_BATCH": "2",
        "EVAL_REPEATS": "1",
        "STACKED_PRESET": "tiny-llama",
        "STACKED_SEQ_LEN": "16",
        "STACKED_BATCH": "2",
        "STACKED_STEPS": "2",
        "LAYERS_PRESET": "tiny-llama",
        "LAYERS_SEQ_LEN": "16",
        "LAYERS_BATCH": "2",
        "LAYERS_REPEATS": "1",
    }
    script = ROOT / "pathjax" / "launch" / "h200_check.sh"
    out = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    written = {p.name for p in tmp_path.iterdir()}
    assert {"train.json", "evaluate.json", "stacked.json", "layers.json", "env.txt"} <= written
    assert "== summary" in out.stdout and "scan / loop" in out.stdout
