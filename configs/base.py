"""Fields every model config shares; `configs/<model>.py` files start from `get_base_config()`."""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    # An HF folder, a .gguf file, an embedded name (smollm2-135m) or a hub id (online only).
    config.model.source = ""
    # A preset architecture with random weights instead of a checkpoint (benchmarks, tests).
    config.model.preset = ""
    config.model.dtype = "float32"  # Parameter and compute dtype: float32 or bfloat16.

    config.mesh = ml_collections.ConfigDict()
    config.mesh.shape = (1, -1, 1)  # (data, fsdp, tensor); -1 takes the remaining devices.
    config.mesh.rules = ml_collections.ConfigDict()  # Logical name -> mesh axis overrides.

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
