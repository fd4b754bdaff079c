"""Loading a config from `path[:arg]` outside absl's config flags (e.g. `--also` lists)."""

import importlib.util
import os


def config_from_spec(spec: str):
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No config file {path!r} (from {spec!r}).")
    module_spec = importlib.util.spec_from_file_location(
        "pathjax_config_" + os.path.basename(path)[:-3], path
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)
