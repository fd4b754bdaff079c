"""SmolLM2-135M (embedded GGUF, offline): the default model of the study.

    python -m pathjax.launch.experiment --workdir=runs/study               # the whole study (CPU)
    python -m pathjax.launch.experiment --config=smollm2_135m:full --workdir=runs/full
    python -m pathjax.launch.train --config=smollm2_135m:paranoia --workdir=runs/paranoia
    python -m pathjax.launch.train --config=smollm2_135m:control,fp32 --workdir=runs/control
    python -m pathjax.launch.generate --config=smollm2_135m

The default is sized so that the whole study finishes within half an hour on a 2-core CPU
(measured from a fresh clone: 15 min 31 s on data 2.3.0, install included):
short training and a subset of every probe family. Variant `full` is the study as designed
(one epoch over 5,000 items per condition, the whole probe suite): an accelerator's job.

Variants: a condition (depression, paranoia, control, shuffled); bf16 (default) or fp32; full.
"""

from pathjax.configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "smollm2-135m"
    config.model.dtype = "bfloat16"  # Frozen base in bf16; adapters, optimizer, loss in fp32.
    base.cpu_study(config, top_layers=15)  # The upper half of its 30 layers.
    config.experiment.name = "smollm2-135m"
    return base.apply_variants(config, arg, "smollm2_135m")
