"""Trains LoRA adapters and checkpoints them; a rerun resumes.

One adapter (the config's condition and seed):
    python -m pathjax.launch.train --config=smollm2_135m:paranoia --workdir=runs/paranoia
Several, stacked in one run (one compile; each adapter in WORKDIR/<condition>-seed<seed>, the
shared checkpoints in WORKDIR/stacked):
    python -m pathjax.launch.train --config=smollm2_135m --workdir=runs/study \
        --conditions=depression,paranoia,control --seeds=0,1
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import storage  # noqa: E402
from pathjax.train import loop, stacking  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (with :variants).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and TensorBoard logs.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop early (resumable) after this step.")
_CONDITIONS = flags.DEFINE_list(
    "conditions", [], "Train these conditions stacked (default: the config's one condition)."
)
_SEEDS = flags.DEFINE_list("seeds", [], "Seeds of each stacked condition (default: the config's).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    config, workdir = _CONFIG.value, _WORKDIR.value
    if not _CONDITIONS.value and not _SEEDS.value:
        result = loop.train(config, workdir, max_steps=_MAX_STEPS.value)
        print(f"Trained to step {result.final_step}; validation: {result.validation}")
        print(f"Checkpoints and metrics in {storage.absolute(result.workdir)}")
        return
    runs = stacking.adapter_runs(
        config,
        _CONDITIONS.value or [config.data.condition],
        [int(s) for s in _SEEDS.value] or [int(config.train.seed)],
        workdir,
    )
    results = loop.train_stacked(
        runs, storage.join_normalized(workdir, "stacked"), max_steps=_MAX_STEPS.value
    )
    for run, result in zip(runs, results, strict=True):
        print(f"{run.name}: step {result.final_step}; validation: {result.validation}")
    print(f"Adapters in {storage.absolute(workdir)}/<condition>-seed<seed>")


def cli() -> None:
    """The console script (`pathjax-train`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
