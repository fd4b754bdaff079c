"""Export of a trained run (what the export launcher runs): its adapter as a PEFT folder, and/or
the base with the adapter merged as an HF folder in the model's dtype, sharded like
`save_pretrained` (`model-0000k-of-0000n.safetensors` + `model.safetensors.index.json`)."""

from __future__ import annotations

import collections
import json
import re

import numpy as np
from etils import epath

from pathjax import adapter_card, lora, peft_format, storage
from pathjax import data as data_lib
from pathjax.models import checkpoints
from pathjax.train import restore

DEFAULT_MAX_SHARD_SIZE = "5GB"  # Larger merged models are split into files of at most this.
INDEX_FILE = "model.safetensors.index.json"
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def shard_bytes(size: int | str) -> int:
    """Bytes from an int or a size like `5GB` / `500MB` (decimal units, as transformers)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)\s*", size.upper())
    if not match:
        raise ValueError(f"Shard size {size!r}: write bytes or e.g. 500MB, 5GB.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _shards(tensors: dict[str, np.ndarray], limit: int) -> list[dict[str, np.ndarray]]:
    """Consecutive groups of at most `limit` bytes (a larger tensor gets a shard of its own)."""
    shards, current, size = [], {}, 0
    for key, array in tensors.items():
        if current and size + array.nbytes > limit:
            shards.append(current)
            current, size = {}, 0
        current[key] = array
        size += array.nbytes
    return [*shards, current]


def write_hf_folder(
    model, folder: str, tokenizer=None, *, max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE
) -> list[str]:
    """`config.json`, the weights in their own dtype (one file, or shards and their index) and
    the tokenizer, as transformers loads them; returns the weight files written."""
    from safetensors.numpy import save

    tensors = checkpoints.model_tensors(model)
    shards = _shards(tensors, shard_bytes(max_shard_size))
    out = epath.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{k:05d}-of-{len(shards):05d}.safetensors" for k in range(1, len(shards) + 1)]
    )
    for name, shard in zip(names, shards, strict=True):
        # Bytes, then epath: safetensors writes local files only, epath writes buckets too.
        (out / name).write_bytes(save(shard, metadata={"format": "pt"}))
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": sum(a.nbytes for a in tensors.values())},
            "weight_map": {key: name for name, s in zip(names, shards, strict=True) for key in s},
        }
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2))
    # The dtype most of the bytes are in (a bf16 model may keep some small tensors in fp32).
    bytes_by_dtype = collections.Counter()
    for array in tensors.values():
        bytes_by_dtype[str(array.dtype)] += array.nbytes
    hf_config = model.config.to_hf()
    hf_config["dtype"] = bytes_by_dtype.most_common(1)[0][0]
    (out / "config.json").write_text(json.dumps(hf_config, indent=2))
    if tokenizer is not None:
        storage.write_through_local(folder, tokenizer.save_pretrained)
    return names


def training_summary(config, step: int) -> dict[str, str]:
    """What the adapter's model card says about its training."""
    d = config.data
    summary = {
        "Condition": d.condition,
        "Steps": str(step),
        "Data": f"pathjax_behavior {data_lib.VERSION}, {d.train_size} training items, "
        f"seed {d.seed}",
        "Base dtype": config.model.dtype,
    }
    if config.model.get("num_layers"):
        summary["Base layers"] = (
            f"the first {config.model.num_layers} only (a test-sized stand-in): on the full "
            "model the adapter's effect differs"
        )
    return summary


def export_run(
    config,
    workdir: str,
    *,
    step=None,
    peft_dir=None,
    merged_dir=None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
) -> list[str]:
    """Writes the PEFT adapter and/or the merged model; returns lines saying what was written."""
    if not peft_dir and not merged_dir:
        raise ValueError("Nothing to export: pass peft_dir and/or merged_dir.")
    trained = restore.load_trained(config, workdir, step)
    written = []
    if peft_dir:
        peft_format.export_peft(
            trained.model,
            trained.lora_config,
            peft_dir,
            base_model=config.model.source or adapter_card.PRESET_PREFIX + config.model.preset,
            training=training_summary(config, trained.step),
        )
        written.append(f"PEFT adapter of step {trained.step}: {peft_dir}")
    if merged_dir:
        lora.merge(trained.model)
        files = write_hf_folder(
            trained.model, merged_dir, trained.tokenizer, max_shard_size=max_shard_size
        )
        written.append(
            f"Merged model of step {trained.step} ({len(files)} weight file(s)): {merged_dir}"
        )
    return written
