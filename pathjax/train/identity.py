"""What identifies a training run: its LoRA configuration, base model and dataset.

Written into every checkpoint and compared on resume and on restore, so a checkpoint is never
continued or loaded under another model or dataset (`checkpointing.Checkpointer`).
"""

from __future__ import annotations

import json
from typing import Any

from pathjax import data as data_lib
from pathjax import lora


def lora_config_from(config) -> lora.LoraConfig:
    targets = config.lora.targets
    if not isinstance(targets, str):
        targets = tuple(targets)
    return lora.LoraConfig(
        rank=config.lora.rank,
        alpha=config.lora.alpha,
        dropout=config.lora.dropout,
        targets=targets,
        use_rslora=config.lora.use_rslora,
        top_layers=int(config.lora.get("top_layers", 0)),
    )


def dataset_identity(config) -> dict[str, Any]:
    d = config.data
    return {
        "name": "pathjax_behavior",
        "version": str(data_lib.VERSION),
        "condition": d.condition,
        "train_size": d.train_size,
        "eval_size": d.eval_size,
        "seed": d.seed,
    }


def model_identity(config, model) -> dict[str, Any]:
    identity = {
        "source": config.model.source or f"preset:{config.model.preset}",
        "architecture": json.loads(json.dumps(model.config.to_hf(), default=str)),
    }
    if getattr(model.config, "scan_layers", False):
        # Adapters of stacked layers have another shape ([layers, ...]); the value names the
        # setting, so a mismatch error shows the fix. Absent in the loop layout: checkpoints
        # written before the setting existed keep matching.
        identity["layer_layout"] = "stacked: model.scan_layers=True"
    return identity
