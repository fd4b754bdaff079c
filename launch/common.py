"""What every launcher does before it imports pathjax: decide whether the model hub is reachable.

Offline is the default (`HF_HUB_OFFLINE=1`), so a run never downloads unless asked to.
`--allow_downloads` on the command line, or `PATHJAX_ALLOW_DOWNLOADS=1` in the environment,
leaves `HF_HUB_OFFLINE` unset so that a hub id loads; a value the user set is always kept.

huggingface_hub reads `HF_HUB_OFFLINE` once, when it is first imported, so this runs on the raw
command line before absl parses it: each launcher calls `set_hub_access()` above its imports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from absl import flags

ALLOW_DOWNLOADS_ENV = "PATHJAX_ALLOW_DOWNLOADS"
_TRUE = ("1", "true", "yes")

# Read from sys.argv by `set_hub_access` before parsing; defined so that absl accepts the flag
# and `--help` lists it.
flags.DEFINE_bool(
    "allow_downloads",
    False,
    f"Let hub ids (e.g. openai-community/gpt2) download; offline otherwise. Same as "
    f"{ALLOW_DOWNLOADS_ENV}=1. A HF_HUB_OFFLINE you set yourself is kept.",
)


def downloads_requested(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether the command line (last word wins) or else the environment asks for downloads."""
    requested = environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in _TRUE
    for arg in argv[1:]:
        if arg == "--":  # absl: what follows is positional.
            break
        if not arg.startswith("-"):
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name == "allow_downloads":
            requested = not has_value or value.strip().lower() in _TRUE
        elif name == "noallow_downloads":
            requested = False
    return requested


def set_hub_access(
    argv: Sequence[str] | None = None, environ: MutableMapping[str, str] | None = None
) -> bool:
    """Forces the hub offline unless downloads were requested; returns whether they were."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    allowed = downloads_requested(argv, environ)
    if not allowed:
        environ.setdefault("HF_HUB_OFFLINE", "1")
    return allowed
