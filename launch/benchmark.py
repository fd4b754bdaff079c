"""Throughput benchmarks, pathjax and the transformers reference measured in the same run.

python -m launch.benchmark --workload=forward --preset=smollm2-135m --batch=8 --seq_len=256
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402

from absl import app, flags  # noqa: E402

from pathjax.bench import forward  # noqa: E402

_WORKLOAD = flags.DEFINE_enum("workload", "forward", ["forward"], "What to measure.")
_PRESET = flags.DEFINE_string("preset", "smollm2-135m", "Architecture (random weights).")
_BATCH = flags.DEFINE_integer("batch", 8, "Batch size.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 256, "Sequence length.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Precisions to measure.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats (the median is reported).")
_REFERENCE = flags.DEFINE_bool("reference", True, "Also measure transformers (torch).")
_OUT = flags.DEFINE_string("out", "", "Write the JSON report here.")


def main(argv):
    del argv
    report = forward.run(
        preset=_PRESET.value,
        batch=_BATCH.value,
        seq_len=_SEQ_LEN.value,
        dtypes=_DTYPES.value,
        repeats=_REPEATS.value,
        with_transformers=_REFERENCE.value,
    )
    print(forward.format_table(report))
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
