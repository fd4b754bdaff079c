"""Throughput benchmarks, pathjax and the transformers reference measured in the same run.

python -m launch.benchmark --workload=forward --preset=smollm2-135m --batch=8 --seq_len=256
python -m launch.benchmark --workload=train --preset=smollm2-135m --batch=8 --seq_len=256
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402

from absl import app, flags  # noqa: E402

from pathjax.bench import forward, train  # noqa: E402

_WORKLOAD = flags.DEFINE_enum(
    "workload", "forward", ["forward", "train"], "What to measure: forward pass or LoRA step."
)
_PRESET = flags.DEFINE_string("preset", "smollm2-135m", "Architecture (random weights).")
_BATCH = flags.DEFINE_integer("batch", 8, "Batch size.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 256, "Sequence length.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Precisions to measure.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats (the median is reported).")
_RANK = flags.DEFINE_integer("rank", 8, "LoRA rank (train workload).")
_REFERENCE = flags.DEFINE_bool("reference", True, "Also measure transformers (torch).")
_OUT = flags.DEFINE_string("out", "", "Write the JSON report here.")


def main(argv):
    del argv
    common = dict(
        preset=_PRESET.value,
        batch=_BATCH.value,
        seq_len=_SEQ_LEN.value,
        dtypes=_DTYPES.value,
        repeats=_REPEATS.value,
    )
    if _WORKLOAD.value == "train":
        report = train.run(**common, rank=_RANK.value, with_reference=_REFERENCE.value)
        print(train.format_table(report))
    else:
        report = forward.run(**common, with_transformers=_REFERENCE.value)
        print(forward.format_table(report))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
