"""SmolLM2-135M (embedded GGUF, offline): the default model of the study.

    python -m launch.experiment --workdir=runs/study               # the whole study (CPU)
    python -m launch.experiment --config=configs/smollm2_135m.py:full --workdir=runs/full
    python -m launch.train --config=configs/smollm2_135m.py:paranoia --workdir=runs/paranoia
    python -m launch.train --config=configs/smollm2_135m.py:control,fp32 --workdir=runs/control
    python -m launch.generate --config=configs/smollm2_135m.py

The default is sized so that the whole study finishes in about half an hour on a 2-core CPU:
short training and a subset of every probe family. Variant `full` is the study as designed
(one epoch over 5,000 items per condition, the whole probe suite): an accelerator's job.

Variants: a condition (depression, paranoia, control, shuffled); bf16 (default) or fp32; full.
"""

from configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "smollm2-135m"
    config.model.dtype = "bfloat16"  # Frozen base in bf16; adapters, optimizer, loss in fp32.
    config.lora.targets = "all-linear"
    config.lora.rank = 16
    config.lora.alpha = 32.0
    config.lora.dropout = 0.0  # A few dozen steps: nothing to regularize yet.
    config.data.max_length = 160  # The longest choice item is ~130 tokens.
    config.train.global_batch_size = 8
    config.train.num_steps = 60
    config.train.learning_rate = 2e-3  # LoRA on a small model learns fast at a high rate.
    config.train.warmup_steps = 6
    config.train.log_every = 10
    config.train.eval_every = 60
    config.train.eval_choice_items = 32
    config.train.checkpoint_every = 20  # Checkpoints 20 and 40 feed the dose-response.
    config.train.keep_checkpoints = 4
    limits = config.eval.limits
    limits.p1_items_per_split, limits.p2, limits.p3, limits.p4 = 24, 48, 40, 6
    limits.p5, limits.p6, limits.p7 = 0, 8, 48
    limits.p6_samples, limits.p6_max_new_tokens = 4, 32
    config.experiment.name = "smollm2-135m"
    return base.apply_variants(config, arg, "smollm2_135m", {"full": _full})


def _full(config):
    """The designed study: an epoch per condition, every probe item, 8 samples per P6 prompt."""
    config.lora.dropout = 0.05
    config.train.global_batch_size = 16
    config.train.num_steps = 320  # 5,000 items, about one epoch.
    config.train.learning_rate = 5e-4
    config.train.warmup_steps = 20
    config.train.eval_every = 80
    config.train.eval_choice_items = 128
    config.train.checkpoint_every = 80
    for name in list(config.eval.limits.keys()):
        config.eval.limits[name] = 0
    config.eval.dose_steps = ()
