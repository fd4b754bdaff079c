"""Throughput benchmarks, pathjax and the transformers reference measured in the same run.

pathjax-benchmark --workload=forward --preset=smollm2-135m --batch=8 --seq_len=256
pathjax-benchmark --workload=train --preset=smollm2-135m --batch=8 --seq_len=256
pathjax-benchmark --workload=evaluate --preset=smollm2-135m --num_prompts=32 --batch=8
pathjax-benchmark --workload=stacked --preset=smollm2-135m --batch=8 --seq_len=128 \
  --adapters=3 --repeats=3 --dtypes=float32
pathjax-benchmark --workload=layers --preset=smollm2-135m --batch=8 --seq_len=128 \
  --repeats=3 --dtypes=float32 --remat=none,dots
(`pathjax-benchmark` is `python -m pathjax.launch.benchmark`.)
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

import json  # noqa: E402

from absl import flags  # noqa: E402

from pathjax.bench import evaluate, forward, layers, stacked, train  # noqa: E402
from pathjax.models import attention_backends, layer_stack  # noqa: E402

_WORKLOAD = flags.DEFINE_enum(
    "workload",
    "forward",
    ["forward", "train", "evaluate", "stacked", "layers"],
    "What to measure: forward pass, LoRA step, the probe evaluator (base + 3 adapters), "
    "--adapters LoRA adapters trained stacked in one step against sequential runs, or the "
    "LoRA step's compile and step times with the decoder's layers looped against scanned.",
)
_PRESET = flags.DEFINE_string(
    "preset",
    "smollm2-135m",
    "Architecture (random weights; evaluate: the embedded checkpoint unless --random_weights).",
)
_BATCH = flags.DEFINE_integer("batch", 8, "Batch size (evaluate: prompts per pass).")
_SEQ_LEN = flags.DEFINE_integer(
    "seq_len", 256, "Sequence length (forward, train, stacked, layers)."
)
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Precisions to measure.")
_REPEATS = flags.DEFINE_integer(
    "repeats",
    5,
    "Timed repeats (the median is reported); stacked: steps per adapter and run, the first "
    "compiling (the wall time counts them all, the steady state is the median of the rest).",
)
_RANK = flags.DEFINE_integer("rank", 8, "LoRA rank (train, stacked, layers and evaluate).")
_TARGETS = flags.DEFINE_string(
    "targets",
    "default",
    "train, stacked, layers and evaluate: LoRA targets ('default' = q_proj,v_proj; 'all-linear').",
)
_ADAPTERS = flags.DEFINE_integer(
    "adapters", 3, "stacked: adapters trained (K), stacked and in K sequential runs.", lower_bound=1
)
_NUM_PROMPTS = flags.DEFINE_integer(
    "num_prompts", 32, "evaluate: P2 stems scored and P7 texts drifted per call."
)
_RANDOM_WEIGHTS = flags.DEFINE_bool(
    "random_weights", False, "evaluate: random weights of --preset, not its embedded checkpoint."
)
_TOKENIZER = flags.DEFINE_string(
    "tokenizer",
    "smollm2-135m",
    "evaluate with --random_weights: the text's tokenizer ('gpt2', an embedded name, a .gguf "
    "file or an HF folder); it must fit the preset's vocabulary.",
)
_TORCH_THREADS = flags.DEFINE_integer(
    "torch_threads", 0, "evaluate: torch intra-op threads (0: one per CPU)."
)
_REFERENCE = flags.DEFINE_bool("reference", True, "Also measure transformers (torch).")
_HEAD_AT_TARGETS = flags.DEFINE_bool(
    "head_at_targets",
    True,
    "train: pathjax runs the output head at the loss's positions only, as its training does "
    "(--nohead_at_targets: at every position, as transformers does).",
)
_PROFILE_DIR = flags.DEFINE_string(
    "profile_dir",
    "",
    "train: profile one more pathjax step per precision into this folder (Perfetto trace) and "
    "print its time per XLA operation; layers: one per precision, layout and remat.",
)
_MICRO_BATCHES = flags.DEFINE_list(
    "micro_batches",
    ["1"],
    "train: split each step's batch into this many micro-batches on both sides (gradient "
    "accumulation; the same update); several counts (`1,4`) are each measured, and each "
    "side's best setting is reported. Smaller activations stay in the CPU's cache.",
)
flags.register_validator(
    "micro_batches",
    lambda counts: all(count.isdigit() and int(count) >= 1 for count in counts),
    message="--micro_batches takes positive integers separated by commas, e.g. 1,4.",
)
_REMAT = flags.DEFINE_list(
    "remat",
    ["none"],
    f"layers: remat policies measured, each in both layouts ({', '.join(layer_stack.REMAT)}).",
)
flags.register_validator(
    "remat",
    lambda names: bool(names) and all(name in layer_stack.REMAT for name in names),
    message=f"--remat takes policies among {', '.join(layer_stack.REMAT)}, e.g. none,dots.",
)
_ATTENTION = flags.DEFINE_enum(
    "attention",
    "auto",
    list(attention_backends.BACKENDS),
    "train, layers: pathjax's attention kernel (model.attention); auto picks by platform (cuDNN's "
    "fused attention on a GPU where it applies).",
)
_OUT = flags.DEFINE_string("out", "", "Write the JSON report here.")


def main(argv):
    del argv
    sizes = dict(
        preset=_PRESET.value, batch=_BATCH.value, dtypes=_DTYPES.value, repeats=_REPEATS.value
    )
    if _WORKLOAD.value == "evaluate":
        report = evaluate.run(
            **sizes,
            num_prompts=_NUM_PROMPTS.value,
            rank=_RANK.value,
            targets=_TARGETS.value,
            random_weights=_RANDOM_WEIGHTS.value,
            tokenizer=_TOKENIZER.value,
            with_reference=_REFERENCE.value,
            torch_threads=_TORCH_THREADS.value,
        )
        print(evaluate.format_table(report))
    elif _WORKLOAD.value == "train":
        report = train.run(
            **sizes,
            seq_len=_SEQ_LEN.value,
            rank=_RANK.value,
            targets=_TARGETS.value,
            with_reference=_REFERENCE.value,
            head_at_targets=_HEAD_AT_TARGETS.value,
            profile_dir=_PROFILE_DIR.value,
            micro_batches=[int(count) for count in _MICRO_BATCHES.value],
            attention=_ATTENTION.value,
        )
        print(train.format_table(report))
    elif _WORKLOAD.value == "stacked":
        report = stacked.run(
            preset=_PRESET.value,
            batch=_BATCH.value,
            seq_len=_SEQ_LEN.value,
            adapters=_ADAPTERS.value,
            dtypes=_DTYPES.value,
            rank=_RANK.value,
            targets=_TARGETS.value,
            steps=_REPEATS.value,
            with_reference=_REFERENCE.value,
        )
        print(stacked.format_table(report))
    elif _WORKLOAD.value == "layers":
        report = layers.run(
            **sizes,
            seq_len=_SEQ_LEN.value,
            remats=_REMAT.value,
            rank=_RANK.value,
            targets=_TARGETS.value,
            profile_dir=_PROFILE_DIR.value,
            attention=_ATTENTION.value,
        )
        print(layers.format_table(report))
    else:
        report = forward.run(**sizes, seq_len=_SEQ_LEN.value, with_transformers=_REFERENCE.value)
        print(forward.format_table(report))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {_OUT.value}")


def cli() -> None:
    """The console script (`pathjax-benchmark`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
