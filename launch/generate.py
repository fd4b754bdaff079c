"""Generates completions from a model, e.g. the embedded SmolLM2-135M.

python -m launch.generate --config=configs/smollm2_135m.py
"""

from launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import cli  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/smollm2_135m.py", "Model config.")
_PROMPTS = flags.DEFINE_multi_string("prompt", None, "Prompts (default: the config's).")


def main(argv):
    del argv
    cli.generate_and_print(_CONFIG.value, _PROMPTS.value)


if __name__ == "__main__":
    app.run(main)
