"""The first two layers of the embedded SmolLM2-135M: tests and smoke runs of every path.

Pretrained embeddings and two pretrained layers make a stand-in that learns the task (on data
2.3.0: 0.65 validation choice accuracy, 0.625 per character, in 300 steps, chance 0.25; about
2-3 minutes on 2 cores), which a randomly initialized tiny model cannot (its frozen random head
cannot express the distribution).

    python -m pathjax.launch.train --config=tiny:paranoia --workdir=/tmp/tiny

Variant `random`: a randomly initialized two-layer model (preset tiny-smollm2) with the
SmolLM2 tokenizer and small data, for fast tests of checkpointing, sharding and resuming.
"""

from pathjax.configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "smollm2-135m"
    config.model.num_layers = 2
    config.lora.rank = 8
    config.lora.alpha = 16.0
    config.lora.dropout = 0.0
    config.lora.targets = "all-linear"
    # 2,000 items: 300 steps of 8 see each about once. With 400 (six epochs) it memorized and
    # stalled at 0.925 validation choice accuracy (still at step 400; lr 1e-2 learned no
    # faster). Measured with 2,000 on data 2.0.0: choice accuracy 0.725, 0.875, 0.95 at steps
    # 100, 200, 300 (40 validation items), per character 0.75, 0.875, 0.975. On data 2.1.0
    # (104 training templates instead of 72, so each is seen about 30% less): 0.75, 0.80,
    # 0.80, per character 0.75, 0.80, 0.825. On 2.2.0 (136 templates): 0.625, 0.75, 0.85,
    # per character 0.60, 0.675, 0.80. On 2.3.0 (twelve wordings per class, so each action is
    # seen half as often): 0.45, 0.60, 0.65, per character 0.475, 0.55, 0.625.
    # tests/train/test_convergence.py holds it.
    config.data.train_size = 2000
    config.data.eval_size = 40
    config.data.max_length = 160  # Two of the 2,000 items are 131 tokens.
    config.train.global_batch_size = 8
    config.train.num_steps = 300
    config.train.learning_rate = 5e-3
    config.train.warmup_steps = 10
    config.train.log_every = 10
    config.train.eval_every = 100
    config.train.eval_batches = 2
    config.train.eval_choice_items = 40
    config.train.checkpoint_every = 100
    # A few items per probe family: the smoke run of the whole study (pathjax/launch/experiment.py).
    limits = config.eval.limits
    limits.p1_items_per_split, limits.p2, limits.p3, limits.p4 = 6, 6, 6, 2
    limits.p5, limits.p6, limits.p7 = 3, 2, 6
    limits.p6_samples, limits.p6_max_new_tokens = 2, 8
    config.eval.dose_steps = (100, 200)
    config.experiment.name = "tiny"
    return base.apply_variants(config, arg, "tiny", {"random": _random})


def _random(config):
    config.model.source = ""
    config.model.num_layers = 0
    config.model.preset = "tiny-smollm2"
    config.model.tokenizer = "smollm2-135m"
    config.data.train_size = 64
    config.data.eval_size = 16
    config.data.max_length = 128
    # One device: test-sized runs only pay for a mesh; the sharding tests set their own.
    config.mesh.shape = (1, 1, 1)
    config.train.num_steps = 6
    config.train.eval_every = 6
    config.train.eval_batches = 1
    config.train.eval_choice_items = 4
    config.train.checkpoint_every = 2
    config.train.log_every = 1
    config.train.tensorboard = False
    config.eval.dose_steps = (2, 4)
    config.eval.limits.p1_items_per_split = 3
    config.eval.limits.p2 = config.eval.limits.p3 = config.eval.limits.p7 = 3
    config.eval.limits.p4 = config.eval.limits.p5 = 1
    config.experiment.name = "tiny-random"
