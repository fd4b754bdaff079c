"""Export of a trained run (what `launch/export.py` runs)."""

from __future__ import annotations

from pathjax import lora, peft_format
from pathjax.models import checkpoints
from pathjax.train import restore


def export_run(config, workdir: str, *, step=None, peft_dir=None, merged_dir=None) -> list[str]:
    """Writes the PEFT adapter and/or the merged model; returns lines saying what was written."""
    if not peft_dir and not merged_dir:
        raise ValueError("Nothing to export: pass peft_dir and/or merged_dir.")
    trained = restore.load_trained(config, workdir, step)
    written = []
    if peft_dir:
        source = config.model.source or f"preset:{config.model.preset}"
        peft_format.export_peft(trained.model, trained.lora_config, peft_dir, base_model=source)
        written.append(f"PEFT adapter of step {trained.step}: {peft_dir}")
    if merged_dir:
        lora.merge(trained.model)
        # float32 on disk: safetensors' numpy writer has no bfloat16.
        checkpoints.export_hf(trained.model, merged_dir, trained.tokenizer, dtype="float32")
        written.append(f"Merged model of step {trained.step}: {merged_dir}")
    return written
