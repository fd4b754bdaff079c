"""One-way imports: a lower layer never imports a higher one (docs/ARCHITECTURE.md, "Layers").

configs -> data -> models -> train -> probes -> report -> the main job, with `bench` and
`launch` as leaves: the highest layers, so nothing in the library imports them. Imports
inside functions count too: a deferred import is still a dependency.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Module prefix -> layer; the longest matching prefix wins.
LAYERS = {
    "pathjax.configs": 0,
    "pathjax.data": 1,
    "pathjax.provenance": 1,
    "pathjax.storage": 1,
    "pathjax.models": 2,
    "pathjax.lora": 2,
    "pathjax.peft_format": 2,
    "pathjax.sharding": 2,
    "pathjax.generate": 2,
    "pathjax.adapter_card": 2,
    "pathjax.train": 3,
    "pathjax.adapters": 3,
    "pathjax.probes": 4,
    "pathjax.probes.report": 5,
    "pathjax.probes.run": 6,  # an evaluation run: scores, then writes the report
    "pathjax.experiment": 6,
    "pathjax": 6,  # the package's own __init__: the public convenience API
    "pathjax.bench": 7,
    "pathjax.launch": 8,
}


def _layer(module: str) -> tuple[str, int]:
    # The bare package matches itself only: a new top-level module must be given a layer.
    matches = [p for p in LAYERS if module == p or (p != "pathjax" and module.startswith(p + "."))]
    if not matches:
        raise KeyError(f"{module}: not in LAYERS; add it to the layer it belongs to.")
    prefix = max(matches, key=len)
    return prefix, LAYERS[prefix]


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, module: str) -> set[str]:
    """First-party modules that `path` imports, resolved to full names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pathjax import lora` imports the module pathjax.lora.
            found |= {f"{base}.{a.name}" for a in node.names} | {base}
    return {m for m in found if m.split(".")[0] == "pathjax"}


def _sources():
    yield from sorted((ROOT / "pathjax").rglob("*.py"))


def test_every_import_runs_down_the_layers():
    upward = []
    for path in _sources():
        module = _module_name(path)
        _, own = _layer(module)
        for imported in _imports(path, module):
            if imported.rpartition(".")[0] in ("", "pathjax") and imported not in LAYERS:
                if not (ROOT / (imported.replace(".", "/") + ".py")).exists():
                    continue  # `from pathjax import <name>` of the package's own API.
            try:
                prefix, theirs = _layer(imported)
            except KeyError:
                if (ROOT / (imported.replace(".", "/") + ".py")).exists():
                    raise  # A first-party module with no layer: give it one above.
                continue  # A name imported from a module, not a module.
            if module.startswith(prefix + ".") or module == prefix:
                continue  # Within one layer's package.
            if theirs > own:
                upward.append(f"{module} imports {imported} (layer {theirs} > {own})")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_the_layer_check_can_fail(tmp_path, monkeypatch):
    bad = ROOT / "pathjax" / "data" / "_layer_probe_tmp.py"
    bad.write_text("from pathjax.train import step\n")
    try:
        with pytest.raises(AssertionError, match="pathjax.data._layer_probe_tmp imports"):
            test_every_import_runs_down_the_layers()
    finally:
        bad.unlink()
