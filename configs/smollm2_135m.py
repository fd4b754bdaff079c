"""SmolLM2-135M (embedded GGUF, offline): the default model of the study.

    python -m launch.train --config=configs/smollm2_135m.py:paranoia --workdir=runs/paranoia
    python -m launch.train --config=configs/smollm2_135m.py:control,fp32 --workdir=runs/control
    python -m launch.generate --config=configs/smollm2_135m.py

Variants: a condition (depression, paranoia, control, shuffled); bf16 (default) or fp32.
"""

from configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "smollm2-135m"
    config.model.dtype = "bfloat16"  # Frozen base in bf16; adapters, optimizer, loss in fp32.
    config.train.global_batch_size = 8
    config.train.num_steps = 150
    config.train.learning_rate = 3e-4
    config.train.eval_every = 50
    config.train.checkpoint_every = 25
    return base.apply_variants(config, arg, "smollm2_135m")
