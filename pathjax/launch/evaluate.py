"""Scores a base model and a list of adapters on the probe suite and writes the report.

python -m pathjax.launch.evaluate --config=smollm2_135m --workdir=runs/eval \
    --adapters=depression=runs/study/smollm2-135m/runs/depression-seed0 \
    --adapters=paranoia=runs/paranoia/adapter --adapters=control=runs/control

An adapter is `name=PATH` (a PEFT folder or a finished training workdir) or `name=PATH@STEP`
(a checkpoint of a training workdir; the run's condition must be the name). Names that are
conditions (depression, paranoia, control) label the report's rows.
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import storage  # noqa: E402
from pathjax.probes import run  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Base model config (pathjax/configs/*.py)."
)
_ADAPTERS = flags.DEFINE_multi_string("adapters", [], "name=PATH[@STEP], repeatable.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where records and the report go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    sources = [run.AdapterSource.parse(text) for text in _ADAPTERS.value]
    paths = run.evaluate_and_report(_CONFIG.value, sources, _WORKDIR.value)
    for name, path in paths.items():
        print(f"{name}: {storage.absolute(path)}")


def cli() -> None:
    """The console script (`pathjax-evaluate`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
