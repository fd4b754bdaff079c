"""LoRA adapters in PEFT's on-disk format: `adapter_config.json` + `adapter_model.safetensors`
(+ the README.md model card, `adapter_card.py`, on export).

Keys are `base_model.model.<transformers module>.lora_A.weight` (`[r, in]`) and `lora_B.weight`
(`[out, r]`), what `peft.PeftModel.from_pretrained` reads and `save_pretrained` writes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from etils import epath
from flax import nnx

from pathjax import adapter_card
from pathjax import lora as lora_lib
from pathjax.models import checkpoints, registry

PREFIX = "base_model.model."
_KEY = re.compile(r"base_model\.model\.(.+?)\.lora_([AB])(?:\.default)?\.weight")
_UNSUPPORTED = {
    "use_dora": False,
    "modules_to_save": None,
    "layer_replication": None,
    "rank_pattern": {},
    "alpha_pattern": {},
}


class AdapterError(ValueError):
    """An adapter that does not fit the model or uses PEFT features pathjax lacks."""


def _hf_module(family, path: str) -> str:
    key, _ = checkpoints.hf_key(family, [*path.split("."), "kernel"])
    return key[: -len(".weight")]


def _pathjax_path(family, hf_module: str) -> str:
    if hf_module.startswith(family.HF_PREFIX):
        return hf_module[len(family.HF_PREFIX) :]
    return hf_module


def _target_modules(model: nnx.Module, family, paths: list[str]) -> list[str] | str:
    """PEFT's list form when whole names are adapted everywhere, else an exact regex."""
    all_paths = [
        p for path, m in lora_lib.linear_modules(model) for p in lora_lib.per_layer_paths(path, m)
    ]
    leaves = sorted({p.split(".")[-1] for p in paths})
    if {p for p in all_paths if p.split(".")[-1] in leaves} == set(paths):
        return leaves
    return "(" + "|".join(re.escape(_hf_module(family, p)) for p in sorted(paths)) + ")"


def export_peft(
    model: nnx.Module,
    config: lora_lib.LoraConfig,
    folder: str,
    *,
    base_model: str = "",
    training: Mapping[str, Any] | None = None,
) -> str:
    """Writes the adapter of `model` into `folder`. `base_model` is pathjax's name of the base
    (config.model.source or `preset:<name>`): the folder names its hub id, which
    `peft.AutoPeftModelForCausalLM` resolves. `training` (label -> value) goes into the card."""
    base = adapter_card.base_model(base_model)
    family = registry.family_of(model.config)
    pairs = lora_lib.adapters(model)
    if not pairs:
        raise AdapterError("The model has no adapters to export.")
    linear = dict(lora_lib.linear_modules(model))
    tensors, paths = {}, []
    for path, lora in pairs:
        if lora.stacked:
            raise AdapterError("Stacked adapters: export them one at a time.")
        # Stacked layers: one PEFT module per layer, as the loop layout names them.
        names = lora_lib.per_layer_paths(path, linear[path])
        a = np.asarray(lora.lora_a[...]).reshape(len(names), *lora.lora_a.shape[-2:])
        b = np.asarray(lora.lora_b[...]).reshape(len(names), *lora.lora_b.shape[-2:])
        for name, a_ir, b_ro in zip(names, a, b, strict=True):
            module = PREFIX + _hf_module(family, name)
            tensors[f"{module}.lora_A.weight"] = np.ascontiguousarray(a_ir.T)
            tensors[f"{module}.lora_B.weight"] = np.ascontiguousarray(b_ro.T)
        paths.extend(names)
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base.name_or_path,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "use_rslora": config.use_rslora,
        "target_modules": _target_modules(model, family, paths),
        # GPT-2's Conv1D stores [in, out]; PEFT needs to know for merging.
        "fan_in_fan_out": not family.HF_LINEAR_TRANSPOSED,
        "bias": "none",
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
    }
    from safetensors.numpy import save

    out = epath.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    # Bytes, then epath: safetensors writes local files only, epath writes buckets too.
    (out / "adapter_model.safetensors").write_bytes(save(tensors, metadata={"format": "pt"}))
    (out / "README.md").write_text(adapter_card.model_card(base, adapter_config, training))
    return folder


def read_peft_config(folder: str) -> tuple[lora_lib.LoraConfig, dict]:
    path = epath.Path(folder) / "adapter_config.json"
    if not path.is_file():
        raise AdapterError(f"{folder} has no adapter_config.json: not a PEFT adapter folder.")
    raw = json.loads(path.read_text())
    if raw.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{path}: peft_type {raw['peft_type']!r}; only LORA is supported.")
    for field, neutral in _UNSUPPORTED.items():
        if raw.get(field, neutral) not in (neutral, None, {}, False):
            raise AdapterError(f"{path}: {field}={raw[field]!r} is not supported by pathjax.")
    if raw.get("bias", "none") != "none":
        raise AdapterError(f"{path}: bias={raw['bias']!r}; only 'none' is supported.")
    config = lora_lib.LoraConfig(
        rank=int(raw["r"]),
        alpha=float(raw["lora_alpha"]),
        dropout=float(raw.get("lora_dropout", 0.0)),
        use_rslora=bool(raw.get("use_rslora", False)),
    )
    return config, raw


def read_peft_tensors(folder: str, family) -> dict[str, dict[str, np.ndarray]]:
    """`{pathjax module path: {"A": [in, r], "B": [r, out]}}` from the adapter's safetensors."""
    from safetensors.numpy import load

    path = epath.Path(folder) / "adapter_model.safetensors"
    if not path.is_file():
        names = [p.name for p in epath.Path(folder).iterdir()]
        bins = sorted(n for n in names if n.endswith(checkpoints.PICKLE_SUFFIXES))
        hint = f" It holds {bins}: pickles are never read." if bins else ""
        raise AdapterError(f"{folder} has no adapter_model.safetensors.{hint}")
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, array in load(path.read_bytes()).items():
        match = _KEY.fullmatch(key)
        if not match:
            raise AdapterError(f"{path}: unexpected tensor {key!r} (not a LoRA A/B weight).")
        module, which = match.groups()
        modules.setdefault(_pathjax_path(family, module), {})[which] = array.T
    return modules


def load_peft(model: nnx.Module, folder: str) -> lora_lib.LoraConfig:
    """Adds the adapter in `folder` to `model` (in place) and returns its config."""
    family = registry.family_of(model.config)
    config, _ = read_peft_config(folder)
    modules = read_peft_tensors(folder, family)
    # Per-layer path -> (module, its layer in a stacked module or None).
    linear = {
        name: (module, layer)
        for name, (_, module, layer) in lora_lib.per_layer_modules(model).items()
    }
    unknown = sorted(set(modules) - set(linear))
    if unknown:
        raise AdapterError(
            f"{folder} adapts modules this {model.config.model_type} model does not have, e.g. "
            f"{unknown[:3]}: the adapter was trained on another base model."
        )
    exact = "(" + "|".join(re.escape(p) for p in sorted(modules)) + ")"
    lora_lib.add_lora(model, dataclasses.replace(config, targets=exact), rngs=nnx.Rngs(0))
    stacked_values = {}  # id of a stacked variable -> (variable, its values, layer by layer)
    for path, weights in modules.items():
        module, layer = linear[path]
        for which, variable in (("A", module.lora.lora_a), ("B", module.lora.lora_b)):
            shape = variable.shape if layer is None else variable.shape[1:]
            if weights[which].shape != shape:
                raise AdapterError(
                    f"{folder}: {path}.lora_{which} has shape {weights[which].T.shape} (PEFT "
                    f"layout) but this model needs {shape[::-1]}: the adapter belongs "
                    "to a base model of another size."
                )
            value = np.asarray(weights[which], np.float32)
            if layer is None:
                variable[...] = value
            else:
                _, values = stacked_values.setdefault(
                    id(variable), (variable, np.zeros(variable.shape, np.float32))
                )
                values[layer] = value
    for variable, values in stacked_values.values():
        variable[...] = values  # Every layer is set: `add_lora` refuses partly adapted stacks.
    return dataclasses.replace(config, targets=exact)
