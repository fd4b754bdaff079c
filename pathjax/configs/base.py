"""Fields every model config shares; `<model>.py` files beside this one start from
`get_base_config()`.

`arg` (after the colon: `smollm2_135m:paranoia,bf16`) is a comma-separated list of
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
    # Attention kernel: auto (cudnn on GPUs, else cpu; falls back with a logged reason), xla
    # (jax.nn.dot_product_attention), cudnn (fused flash attention), cpu (tuned for XLA's CPU).
    config.model.attention = "auto"
    # Decoder layers as one stacked module under nnx.scan: compiles one layer, not every one.
    config.model.scan_layers = False
    config.model.remat = "none"  # Recompute each layer in the backward pass: none, full, dots.

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
    # An ablation: training items drawn from each template's first N wordings per class (of
    # six); 0: all. Held-out splits always use every wording.
    config.data.wordings = 0
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


def cpu_study(config, top_layers: int = 0):
    """The study sized for a 2-core CPU within half an hour (the default main job): short
    training, a subset of every probe family. Shared by the model configs that run the study.

    The recipe was found by measurement (docs/TRAINING.md has the table): adapters on the
    upper layers only (`top_layers`; gradients then stop there, so a step costs about half),
    one format per batch (narrative batches pad to 64 tokens instead of a choice item's 136),
    and as many steps as the budget leaves after the probes.
    """
    config.lora.targets = "all-linear"
    config.lora.rank = 16
    config.lora.alpha = 32.0
    config.lora.dropout = 0.0  # A few hundred steps over 5,000 items: nothing to regularize.
    config.lora.top_layers = top_layers
    config.data.max_length = 160  # The longest choice item is ~130 tokens.
    # Each bucket is a compiled shape (a train step compiles in about a minute on this CPU):
    # narrative batches fit 64 tokens, choice batches 136.
    config.data.buckets = (64, 136, 160)
    config.data.batch_by_format = True
    # Many small updates learn faster per example than few large ones at this budget.
    config.train.global_batch_size = 4
    config.train.num_steps = 160
    config.train.learning_rate = 2e-3  # LoRA on a small model learns fast at a high rate.
    config.train.warmup_steps = 10
    config.train.log_every = 20
    # The learning curve: held-out decisions scored at every checkpoint (report, TensorBoard).
    config.train.eval_every = 40
    config.train.eval_choice_items = 24
    config.train.eval_choice_splits = ("test_domains",)
    config.train.checkpoint_every = 40
    config.train.keep_checkpoints = 4
    limits = config.eval.limits
    limits.p1_items_per_split, limits.p2, limits.p3, limits.p4 = 48, 48, 40, 4
    # P6: 8 prompts per key (depression, paranoia, neutral), so S's bootstrap has items to
    # resample; 2 samples each keep the generation time of the former 8 x 4.
    limits.p5, limits.p6, limits.p7 = 16, 24, 48
    limits.p6_samples, limits.p6_max_new_tokens = 2, 32
    config.eval.dose_families = "P2,P3"
    config.eval.dose_steps = (80,)  # Half-way: one intermediate checkpoint per adapter.
    return config


def full_study(config):
    """The designed study: two epochs over 5,000 items per condition on every layer, three
    seeds, every probe item, 8 samples per P6 prompt. An accelerator's job (variant `full`)."""
    config.lora.dropout = 0.05
    config.lora.top_layers = 0  # Every layer: an accelerator has the compute.
    config.train.global_batch_size = 16
    # Two epochs over 5,000 items on every layer. On a 2-core CPU the upper-layer default
    # levels off on held-out domains at 0.78-0.82 (depression) and 0.69-0.73 (paranoia), all
    # 500 items (docs/TRAINING.md): the choice format passes 0.9, the narrative format stays
    # near 0.7. This variant is the designed study, not a claim that it reaches 0.95.
    config.train.num_steps = 640
    config.train.learning_rate = 1e-3
    config.train.warmup_steps = 20
    config.train.eval_every = 80
    config.train.eval_choice_items = 128
    config.train.checkpoint_every = 80
    for name in list(config.eval.limits.keys()):
        config.eval.limits[name] = 0
    config.eval.dose_steps = ()
    config.eval.dose_families = "P2,P3,P5"
    # Three seeds per condition, trained stacked with the conditions (nine adapters, one
    # compile): the report's seed-to-seed noise floors and seed-resampled CIs need several.
    config.experiment.seeds = (0, 1, 2)
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
