"""Trains one LoRA adapter (one condition) and checkpoints it; a rerun resumes.

python -m launch.train --config=configs/smollm2_135m.py:paranoia --workdir=runs/paranoia
python -m launch.train --config=configs/tiny.py --workdir=/tmp/tiny --config.train.num_steps=20
"""

import os

from launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax.train import loop  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (with :variants).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and TensorBoard logs.")
_MAX_STEPS = flags.DEFINE_integer("max_steps", None, "Stop early (resumable) after this step.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    result = loop.train(_CONFIG.value, _WORKDIR.value, max_steps=_MAX_STEPS.value)
    print(f"Trained to step {result.final_step}; validation: {result.validation}")
    print(f"Checkpoints and metrics in {os.path.abspath(result.workdir)}")


if __name__ == "__main__":
    common.run(main)
