"""GPT-2 (124M): weights are not shipped offline; point `model.source` at a local HF folder.

    python -m pathjax.launch.train --config=gpt2:paranoia \
        --config.model.source=/path/to/gpt2 --workdir=runs/gpt2-paranoia

The default source is the hub id, which loads only where the hub is reachable (with
HF_HUB_OFFLINE unset). Variant `random` uses the preset architecture with random weights
(benchmarks, sharding dry runs).
"""

from pathjax.configs import base


def _random(config):
    config.model.source = ""
    config.model.preset = "gpt2"


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "openai-community/gpt2"
    config.model.dtype = "bfloat16"
    config.train.global_batch_size = 16
    config.train.num_steps = 300
    config.train.learning_rate = 2e-4
    config.data.max_length = 256
    return base.apply_variants(config, arg, "gpt2", {"random": _random})
