"""Fields every model config shares; `configs/<model>.py` files start from `get_base_config()`.

`arg` (after the colon: `configs/smollm2_135m.py:paranoia,bf16`) is a comma-separated list of
variants: a condition (depression, paranoia, control, shuffled) and the variants that
`apply_variants` knows.
"""

import ml_collections

CONDITIONS = ("depression", "paranoia", "control", "shuffled")


def get_base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    # An HF folder, a .gguf file, an embedded name (smollm2-135m) or a hub id (online only).
    config.model.source = ""
    # A preset architecture with random weights instead of a checkpoint (benchmarks, tests).
    config.model.preset = ""
    config.model.tokenizer = ""  # Overrides the checkpoint's tokenizer; required for presets.
    config.model.dtype = "float32"  # Base weights and compute: float32 or bfloat16.
    config.model.num_layers = 0  # >0: keep only the first layers of the checkpoint.

    config.mesh = ml_collections.ConfigDict()
    config.mesh.shape = (1, -1, 1)  # (data, fsdp, tensor); -1 takes the remaining devices.
    config.mesh.rules = ml_collections.ConfigDict()  # Logical name -> mesh axis overrides.

    config.distributed = ml_collections.ConfigDict()
    config.distributed.enabled = False  # jax.distributed.initialize() (multi-host runs).
    config.distributed.coordinator_address = ""  # Empty: auto-detected (TPU pods, SLURM).
    config.distributed.num_processes = 1
    config.distributed.process_id = 0

    config.lora = ml_collections.ConfigDict()
    config.lora.rank = 8
    config.lora.alpha = 16.0
    config.lora.dropout = 0.05  # On the adapter input only, as in PEFT.
    config.lora.targets = "default"  # "default" (PEFT's per family), "all-linear", names, regex.
    config.lora.use_rslora = False  # scale = alpha / sqrt(rank) instead of alpha / rank.
    config.lora.top_layers = 0  # Adapt only the last N decoder layers; 0: every layer.

    config.data = ml_collections.ConfigDict()
    config.data.condition = "depression"
    config.data.data_dir = "data"  # Where the TFDS builder writes (and reuses) the data.
    config.data.train_size = 5000
    config.data.eval_size = 500
    config.data.seed = 0
    config.data.max_length = 256  # Longest example in tokens; batches pad to buckets below.
    # Padded batch lengths (each a compiled shape); empty: powers of two from 64, then
    # max_length. Fewer buckets: fewer compilations, more padding.
    config.data.buckets = ()
    # One format per training batch (narrative prompts are a third as long as choice ones).
    config.data.batch_by_format = False

    config.train = ml_collections.ConfigDict()
    config.train.seed = 0
    config.train.global_batch_size = 8
    config.train.grad_accumulation = 1  # Micro-batches per step (same update as one batch).
    config.train.num_steps = 300
    config.train.learning_rate = 2e-4
    config.train.final_lr_fraction = 0.1  # Cosine decays to this fraction of the peak.
    config.train.warmup_steps = 20
    config.train.weight_decay = 0.0
    config.train.b1 = 0.9
    config.train.b2 = 0.999
    config.train.max_grad_norm = 1.0
    config.train.log_every = 10
    config.train.eval_every = 100
    config.train.eval_batches = 4  # Validation batches for loss and token accuracy.
    config.train.eval_choice_items = 64  # Items per split scored over their 4 options.
    # Held-out splits scored like validation at every evaluation (a learning curve of the
    # decision itself; "validation" is always scored). E.g. ("test_domains",).
    config.train.eval_choice_splits = ()
    config.train.checkpoint_every = 100
    config.train.keep_checkpoints = 3
    config.train.peak_flops_per_device = 0.0  # 0: measure a matmul (MFU's ceiling).
    config.train.tensorboard = True

    config.eval = ml_collections.ConfigDict()
    config.eval.suite_version = ""  # Empty: the newest packaged probe suite.
    config.eval.families = "P1,P2,P3,P4,P5,P6,P7"
    config.eval.max_logits = 2**27  # Batch budget: rows x positions x vocab fp32 logits.
    config.eval.vocab_chunk = 2048  # Divergences stream over vocabulary slices this wide.
    config.eval.limits = ml_collections.ConfigDict()  # Items per family; 0 = the whole family.
    for name in ("p1_items_per_split", "p2", "p3", "p4", "p5", "p6", "p7"):
        config.eval.limits[name] = 0
    config.eval.limits.p6_samples = 0  # 0: the suite's samples per prompt.
    config.eval.limits.p6_max_new_tokens = 0  # 0: the suite's length.
    # Dose-response: these families again at the training checkpoints in `dose_steps` and at
    # the adapter multipliers in `dose_multipliers` (1.0 is the main evaluation).
    config.eval.dose_families = "P2,P3,P5"
    config.eval.dose_steps = ()  # Empty: every checkpoint the run kept.
    config.eval.dose_multipliers = (0.5, 1.5)

    config.experiment = ml_collections.ConfigDict()
    config.experiment.conditions = ("depression", "paranoia", "control")
    config.experiment.seeds = (0,)
    config.experiment.name = ""  # Names the architecture in a cross-architecture summary.

    config.generate = ml_collections.ConfigDict()
    config.generate.prompts = (
        "On Saturday morning I finally had some free time, so I",
        "The new neighbors moved in last week. When I saw them on the stairs,",
    )
    config.generate.max_new_tokens = 40
    config.generate.temperature = 0.0  # 0 = greedy.
    config.generate.top_k = 0  # 0 = off.
    config.generate.top_p = 1.0  # 1 = off.
    config.seed = 0
    return config


def cpu_study(config):
    """The study sized for a 2-core CPU in about half an hour (the default main job): short
    training, a subset of every probe family. Shared by the model configs that run the study.

    Measured on the 2-core CPU: 7 min per adapter at 60 steps and ~15 min of probes with 24
    P1 items per split and P5 in the dose pass; trimmed to 48 steps, 12 P1 items per split and
    a dose pass over P2 and P3 at one checkpoint to fit 30 minutes.
    """
    config.lora.targets = "all-linear"
    config.lora.rank = 16
    config.lora.alpha = 32.0
    config.lora.dropout = 0.0  # A few dozen steps: nothing to regularize yet.
    config.data.max_length = 160  # The longest choice item is ~130 tokens.
    # One compiled shape for nearly every batch: a 30-layer train step takes about a minute to
    # compile on this CPU, more than the padding of narrative items (~50 tokens) costs over 48
    # steps of mostly mixed batches (a choice item, up to 133 SmolLM2 tokens, sets the length).
    config.data.buckets = (136, 160)
    # Many small updates learn faster per example than few large ones at this budget.
    config.train.global_batch_size = 4
    config.train.num_steps = 48
    config.train.learning_rate = 2e-3  # LoRA on a small model learns fast at a high rate.
    config.train.warmup_steps = 6
    config.train.log_every = 8
    config.train.eval_every = 48
    config.train.eval_choice_items = 32
    config.train.checkpoint_every = 24  # Checkpoint 24 feeds the dose-response.
    config.train.keep_checkpoints = 4
    limits = config.eval.limits
    limits.p1_items_per_split, limits.p2, limits.p3, limits.p4 = 12, 48, 40, 4
    limits.p5, limits.p6, limits.p7 = 16, 8, 48
    limits.p6_samples, limits.p6_max_new_tokens = 4, 32
    config.eval.dose_families = "P2,P3"
    return config


def full_study(config):
    """The designed study: about an epoch over 5,000 items per condition, every probe item,
    8 samples per P6 prompt. An accelerator's job (variant `full`)."""
    config.lora.dropout = 0.05
    config.train.global_batch_size = 16
    config.train.num_steps = 320
    config.train.learning_rate = 5e-4
    config.train.warmup_steps = 20
    config.train.eval_every = 80
    config.train.eval_choice_items = 128
    config.train.checkpoint_every = 80
    for name in list(config.eval.limits.keys()):
        config.eval.limits[name] = 0
    config.eval.dose_steps = ()
    config.eval.dose_families = "P2,P3,P5"
    return config


def apply_variants(config, arg: str | None, name: str, extra=None):
    """Applies `arg`'s comma-separated variants; unknown ones are an error that lists them."""
    variants = {
        "bf16": lambda c: setattr(c.model, "dtype", "bfloat16"),
        "fp32": lambda c: setattr(c.model, "dtype", "float32"),
        "full": full_study,
        **{cond: (lambda c, cond=cond: setattr(c.data, "condition", cond)) for cond in CONDITIONS},
        **(extra or {}),
    }
    for variant in filter(None, (arg or "").split(",")):
        if variant not in variants:
            raise ValueError(
                f"Unknown variant {variant!r} for {name}; known: {', '.join(sorted(variants))}."
            )
        variants[variant](config)
    return config
