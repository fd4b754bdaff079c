"""Model loading: one entry point for HF folders, hub ids, GGUF files and embedded models."""

from __future__ import annotations

import os
import re

import jax.numpy as jnp

from pathjax import sharding as sharding_lib
from pathjax.models import checkpoints, embedded, gguf_import, registry, tokenizers
from pathjax.models.checkpoints import CheckpointError, export_hf
from pathjax.models.registry import count_params, init_model, supported_model_types
from pathjax.models.tokenizers import TokenizerError, load_tokenizer

__all__ = [
    "CheckpointError",
    "TokenizerError",
    "count_params",
    "export_hf",
    "init_model",
    "load_model",
    "load_tokenizer",
    "supported_model_types",
]

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def load_model(
    source: str,
    dtype="float32",
    *,
    tokenizer="auto",
    mesh=None,
    rules=sharding_lib.DEFAULT_RULES,
    num_layers: int | None = None,
    attention: str = "auto",
    scan_layers: bool = False,
    remat: str = "none",
):
    """Returns `(model, tokenizer)`.

    Args:
      source: an HF folder (config.json + safetensors), a `.gguf` file, an embedded model name
        (`smollm2-135m`, `gemma3-270m`), or an HF hub id (only when the hub is reachable).
      dtype: parameter and compute dtype ("float32", "bfloat16").
      tokenizer: "auto" (the checkpoint's own; the exact GPT-2 tokenizer for GPT-2 folders
        without one), a tokenizer source for `load_tokenizer`, a tokenizer object, or None.
      mesh: place parameters straight into the shardings their logical names ask for.
      num_layers: keep only the first layers (a fast pretrained stand-in for smoke runs).
      attention: the attention kernel (`attention_backends.BACKENDS`; "auto" picks by platform).
      scan_layers: decoder layers stacked on a leading axis and run under `nnx.scan`.
      remat: rematerialization of each layer: "none", "full" or "dots" (`layer_stack`).
    """
    dtype = jnp.dtype(dtype)
    if embedded.is_embedded(source):
        source = embedded.embedded_path(source)
    if source.endswith(".gguf"):
        gguf_file = gguf_import.GGUFFile(source)
        hf_config = gguf_file.hf_config()
        family, config = registry.config_from_hf(hf_config, origin=source)
        config = registry.with_attention(registry.truncate(config, num_layers), attention)
        config = registry.with_layout(config, scan_layers=scan_layers, remat=remat)
        abstract = registry.abstract_model(family, config, dtype=dtype)
        model = checkpoints.fill_model(
            abstract, family, gguf_file.tensor_source(hf_config), mesh=mesh, rules=rules
        )
        auto_tokenizer = lambda: tokenizers.gguf_tokenizer(source)  # noqa: E731
    else:
        folder = _local_folder(source)
        model = checkpoints.load_hf_folder(
            folder,
            dtype=dtype,
            mesh=mesh,
            rules=rules,
            num_layers=num_layers,
            attention=attention,
            scan_layers=scan_layers,
            remat=remat,
        )
        auto_tokenizer = lambda: _folder_tokenizer(folder, model.config)  # noqa: E731

    if isinstance(tokenizer, str):
        tokenizer = auto_tokenizer() if tokenizer == "auto" else load_tokenizer(tokenizer)
    if tokenizer is not None:
        tokenizers.check_fits(tokenizer, model.config.vocab_size, origin=source)
    return model, tokenizer


def _folder_tokenizer(folder: str, config):
    if tokenizers.has_tokenizer_files(folder):
        return tokenizers.folder_tokenizer(folder)
    if config.model_type == "gpt2":
        return tokenizers.gpt2_tokenizer()
    raise TokenizerError(
        f"{folder} holds no tokenizer files. Pass tokenizer=<folder, .gguf or 'gpt2'>, or "
        "tokenizer=None to load the model alone."
    )


def _local_folder(source: str) -> str:
    if os.path.isdir(source):
        return source
    if os.path.isfile(source):
        if source.endswith(checkpoints.PICKLE_SUFFIXES):
            raise CheckpointError(
                f"{source} is a pickle checkpoint; pathjax never unpickles (it can run arbitrary "
                "code). Use the model's safetensors folder or a .gguf file."
            )
        raise CheckpointError(
            f"{source} is a file pathjax cannot load: pass an HF folder (config.json + "
            "safetensors), a .gguf file, or an embedded name "
            f"({', '.join(embedded.EMBEDDED)})."
        )
    if _HUB_ID.match(source) and not source.startswith((".", "/")):
        return _hub_snapshot(source)
    raise FileNotFoundError(
        f"No model at {source!r}: not a folder, a .gguf file, an embedded name "
        f"({', '.join(embedded.EMBEDDED)}) or a hub id."
    )


def _hub_snapshot(repo_id: str) -> str:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise FileNotFoundError(
            f"{repo_id!r} looks like a hub id, but HF_HUB_OFFLINE is set: pass --allow_downloads "
            "to the launcher (or unset HF_HUB_OFFLINE), or download it once on a machine with "
            f"access (`hf download {repo_id} --local-dir <folder>`) and pass that folder."
        )
    from huggingface_hub import snapshot_download

    # Safetensors, configs and tokenizer files only: a pickle is never fetched, let alone read.
    return snapshot_download(
        repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "tokenizer.model"]
    )
