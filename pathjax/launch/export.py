"""Exports a trained run: its adapter in PEFT format, and/or the base model with it merged.

    python -m pathjax.launch.export --config=smollm2_135m:paranoia --workdir=runs/paranoia \
        --peft_dir=runs/paranoia/peft --merged_dir=runs/paranoia/merged

The PEFT folder (with its README.md model card) names the base's hub id and loads with
`peft.AutoPeftModelForCausalLM.from_pretrained(dir)` or `peft.PeftModel.from_pretrained(base,
dir)`; the merged folder, in the model's dtype and sharded above --max_shard_size, with
`transformers.AutoModelForCausalLM.from_pretrained(dir)`.
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax.train import export  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's config (with :variants).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The training run's workdir.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_PEFT_DIR = flags.DEFINE_string("peft_dir", None, "Write the adapter here (PEFT format).")
_MERGED_DIR = flags.DEFINE_string("merged_dir", None, "Write the merged HF model here.")
_MAX_SHARD_SIZE = flags.DEFINE_string(
    "max_shard_size",
    export.DEFAULT_MAX_SHARD_SIZE,
    "Merged model: larger weights are split into files of at most this (e.g. 500MB, 5GB).",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    for line in export.export_run(
        _CONFIG.value,
        _WORKDIR.value,
        step=_STEP.value,
        peft_dir=_PEFT_DIR.value,
        merged_dir=_MERGED_DIR.value,
        max_shard_size=_MAX_SHARD_SIZE.value,
    ):
        print(line)


def cli() -> None:
    """The console script (`pathjax-export`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
