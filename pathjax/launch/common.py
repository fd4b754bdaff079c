"""What every launcher shares: whether the model hub is reachable, and quiet library logs.

Hub access. Offline is the default (`HF_HUB_OFFLINE=1`), so a run never downloads unless asked to.
`--allow_downloads` on the command line, or `PATHJAX_ALLOW_DOWNLOADS=1` in the environment,
leaves `HF_HUB_OFFLINE` unset so that a hub id loads; a value the user set is always kept.

huggingface_hub reads `HF_HUB_OFFLINE` once, when it is first imported, so this runs on the raw
command line before absl parses it: each launcher calls `set_hub_access()` above its imports.

Logs. Launchers start through `run(main)`: library logs (orbax, jax and TFDS through absl, and
Python loggers that inherit the root's level) show warnings only, unless `--verbosity` is given
(`--verbosity=0`: INFO, absl's usual default). TFDS's "Downloading and preparing dataset"
banners, printed unconditionally, become INFO logs under the same switch. pathjax's own stage
lines and progress bars are printed, not logged, so they stay.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from absl import app, flags, logging

from pathjax.configs import load

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


def run(main) -> None:
    """`absl.app.run(main)` with library logs quiet unless `--verbosity` was given, and
    `--config` naming a shipped config by name resolved to its file (`configs.load`)."""
    sys.argv = resolve_config_flags(sys.argv)

    def main_with_quiet_libraries(argv):
        quiet_library_logs()
        return main(argv)

    app.run(main_with_quiet_libraries)


def quiet_library_logs() -> None:
    verbose = flags.FLAGS["verbosity"].present
    if not verbose:
        # absl's handler sits on the root logger, so this sets every library's threshold.
        logging.set_verbosity(logging.WARNING)
    quiet_tfds(verbose)


def quiet_tfds(verbose: bool) -> None:
    """TFDS prints banners for a dataset it prepares (for a generated one: "Unknown size") with
    no switch to turn them off: they become absl INFO logs. Unless verbose, its progress bars
    are off and its warning that pathjax's configs are not registered ones (by design) is
    dropped."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import dataset_builder

    builder = dataset_builder.DatasetBuilder
    builder._log_download_bytes = lambda self: logging.info(
        "Preparing dataset %s in %s", self.name, self.data_dir
    )
    builder._log_download_done = lambda self: logging.info(
        "Dataset %s prepared in %s", self.name, self.data_dir
    )
    if not verbose:
        tfds.display_progress_bar(False)
        logging.get_absl_logger().addFilter(
            lambda record: not str(record.msg).startswith("Using custom data configuration")
        )


def resolve_config_flags(argv: Sequence[str]) -> list[str]:
    """`--config=NAME[:variants]` (or `--config NAME`) with NAME resolved by `resolve_spec`."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + load.resolve_spec(arg[len("--config=") :])
        elif arg == "--config" and i + 1 < len(out):
            out[i + 1] = load.resolve_spec(out[i + 1])
    return out
