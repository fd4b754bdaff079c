"""Where an output came from: versions, commit, devices, date and command line.

Every folder pathjax writes results into (a training workdir, a report, a benchmark) carries
this block, so a number found later can be traced to the code, libraries and machine that
made it. One function collects it for all of them.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from typing import Any

from etils import epath

# Libraries whose versions change results (numerics, data order, file formats).
LIBRARIES = (
    "pathjax",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "grain",
    "tensorflow-datasets",
    "numpy",
    "transformers",
    "tokenizers",
    "safetensors",
    "torch",
    "peft",
)
PROVENANCE_FILE = "provenance.json"
CONFIG_FILE = "config.json"


def library_versions(libraries: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    versions = {}
    for package in libraries:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_commit() -> dict[str, Any] | None:
    """The commit of the pathjax checkout this code runs from, and whether it had local
    changes; None for an installed copy outside git."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, ".git")):
        return None
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", "-C", root, *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None


def devices() -> dict[str, Any]:
    import jax  # Only here: the rest of the block is cheap to collect without it.

    found = jax.devices()
    return {
        "backend": jax.default_backend(),
        "count": len(found),
        "process_count": jax.process_count(),
        "kinds": sorted({d.device_kind for d in found}),
    }


def collect() -> dict[str, Any]:
    """The provenance block: pathjax version and commit, libraries, devices, machine, date and
    the command line."""
    return {
        "pathjax": library_versions(("pathjax",))["pathjax"],
        "git": git_commit(),
        "libraries": library_versions(),
        "devices": devices(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
    }


def write(folder: str, config: Any = None) -> None:
    """`provenance.json` (and `config.json`, the full config) into `folder`."""
    out = epath.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / PROVENANCE_FILE).write_text(json.dumps(collect(), indent=1, default=str))
    if config is not None:
        (out / CONFIG_FILE).write_text(config.to_json_best_effort(indent=1, sort_keys=True))
