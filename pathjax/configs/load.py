"""Finding and loading configs: `path[:arg]` specs, and bare names of the shipped configs.

A launcher's `--config` (and `--also`) may name a shipped config by name (`smollm2_135m`,
`tiny:paranoia,random`) instead of a path, so the launchers run from any folder once pathjax is
installed; a path that exists always wins.
"""

import importlib.util
import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))


def resolve_spec(spec: str) -> str:
    """`spec` with its config resolved to a file: a path as given if it exists, else the shipped
    config of that name (`smollm2_135m`, `smollm2_135m.py`, or a repo-relative
    `pathjax/configs/smollm2_135m.py` run from another folder)."""
    path, sep, arg = spec.partition(":")
    if os.path.isfile(path):
        return spec
    name = os.path.basename(path)
    shipped = os.path.join(CONFIG_DIR, name if name.endswith(".py") else name + ".py")
    bare_or_shipped = os.path.dirname(path) in ("", "configs") or path.endswith(
        os.path.join("pathjax", "configs", name)
    )
    if bare_or_shipped and os.path.isfile(shipped):
        return shipped + sep + arg
    return spec


def shipped_names() -> list[str]:
    return sorted(
        f[:-3]
        for f in os.listdir(CONFIG_DIR)
        if f.endswith(".py") and f not in ("__init__.py", "base.py", "load.py")
    )


def config_from_spec(spec: str):
    path, _, arg = resolve_spec(spec).partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No config file {path!r} (from {spec!r}); shipped configs: "
            f"{', '.join(shipped_names())}."
        )
    module_spec = importlib.util.spec_from_file_location(
        "pathjax_config_" + os.path.basename(path)[:-3], path
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
