"""SmolLM2-135M (embedded GGUF, offline): the default model of the study.

    python -m launch.generate --config=configs/smollm2_135m.py
    python -m launch.generate --config=configs/smollm2_135m.py:bf16 \
        --config.generate.temperature=0.8
"""

from configs import base


def get_config(arg: str | None = None):
    config = base.get_base_config()
    config.model.source = "smollm2-135m"
    variants = set(filter(None, (arg or "").split(",")))
    unknown = variants - {"bf16"}
    if unknown:
        raise ValueError(f"Unknown variant(s) {sorted(unknown)} for smollm2_135m; known: bf16.")
    if "bf16" in variants:
        config.model.dtype = "bfloat16"
    return config
