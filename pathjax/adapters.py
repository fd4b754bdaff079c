"""Where an adapter comes from, as the launchers spell it, and the model it gives.

An adapter is a PEFT folder, a training workdir (its final `adapter/` folder, else its latest
checkpoint) or `WORKDIR@STEP` (one checkpoint). The evaluate launcher (through
`probes/run.py`) and the generate launcher read that spelling with `split_step`; generate loads
with `model_with_adapter`.
"""

from __future__ import annotations

import os
from typing import Any

from etils import epath
from flax import nnx

from pathjax import peft_format
from pathjax.models import from_config

FINAL_ADAPTER = "adapter"  # The PEFT folder a finished training run writes into its workdir.


def split_step(text: str) -> tuple[str, int | None]:
    """`PATH` or `PATH@STEP` -> `(path, step or None)`.

    A path that exists as written wins (a folder may be named `run@40`). Otherwise the text
    splits at its last `@`, and only when a step number follows: `runs/a@b/run@40` is
    `runs/a@b/run` at step 40, and `runs/user@host/run` stays one path.
    """
    if epath.Path(text).exists():
        return text, None
    path, sep, step = text.rpartition("@")
    if sep and path and step.isdigit():
        return path, int(step)
    return text, None


def peft_folder(path: str) -> str | None:
    """`path` if it is a PEFT folder, its finished run's `adapter/` folder, else None."""
    for folder in (path, os.path.join(os.fspath(path), FINAL_ADAPTER)):
        if (epath.Path(folder) / "adapter_config.json").is_file():
            return folder
    return None


def model_with_adapter(config, spec: str) -> tuple[nnx.Module, Any, str]:
    """`(model, tokenizer, label)`: `config`'s model with the adapter `spec` attached.

    A checkpoint is restored with `config` as the run's config (model, LoRA and data condition
    must match the run's: `<model>:<condition>`); a PEFT folder needs only the model.
    """
    path, step = split_step(spec)
    if not epath.Path(path).is_dir():
        raise FileNotFoundError(f"Adapter {spec!r}: {path} is not a folder.")
    folder = peft_folder(path) if step is None else None
    if folder is not None:
        model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
        peft_format.load_peft(model, folder)
        return model, tokenizer, folder
    from pathjax.train import restore  # Training code only when checkpoints are read.

    trained = restore.load_trained(config, path, step)
    return trained.model, trained.tokenizer, f"{path} step {trained.step}"
