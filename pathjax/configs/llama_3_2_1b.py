"""Llama-3.2-1B: weights are not shipped offline; point `model.source` at a local HF folder.

    python -m pathjax.launch.train --config=llama_3_2_1b:paranoia \
        --config.model.source=/path/to/llama-3.2-1b --workdir=runs/llama-3.2-1b-paranoia

The default source is the hub id, which loads only where the hub is reachable (with
HF_HUB_OFFLINE unset). Variant `random` uses the preset architecture with random weights
(benchmarks, sharding dry runs).
"""

from pathjax.configs import base


def _random(config):
    config.model.source = ""
    config.model.preset = "llama-3.2-1b"


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "meta-llama/Llama-3.2-1B"
    config.model.dtype = "bfloat16"
    config.train.global_batch_size = 16
    config.train.num_steps = 300
    config.train.learning_rate = 2e-4
    config.data.max_length = 256
    return base.apply_variants(config, arg, "llama_3_2_1b", {"random": _random})
