"""Generates completions from a model, e.g. the embedded SmolLM2-135M, with or without an adapter.

python -m launch.generate --config=configs/smollm2_135m.py
python -m launch.generate --config=configs/smollm2_135m.py --adapter=runs/paranoia/adapter
python -m launch.generate --config=configs/smollm2_135m.py:paranoia --adapter=runs/paranoia@80

`--adapter` is a PEFT folder, a training workdir (its final adapter, else its latest checkpoint)
or `WORKDIR@STEP` (a checkpoint: --config must then be the run's, condition variant included).
"""

from launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import generate  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/smollm2_135m.py", "Model config.")
_PROMPTS = flags.DEFINE_multi_string("prompt", None, "Prompts (default: the config's).")
_ADAPTER = flags.DEFINE_string(
    "adapter", None, "PEFT folder, training workdir, or WORKDIR@STEP (a checkpoint)."
)


def main(argv):
    del argv
    generate.generate_and_print(_CONFIG.value, _PROMPTS.value, adapter=_ADAPTER.value)


if __name__ == "__main__":
    common.run(main)
