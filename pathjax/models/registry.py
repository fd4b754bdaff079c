"""The architecture families: which module serves which transformers `model_type`."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import jax.numpy as jnp
from flax import nnx

from pathjax.models import attention_backends, decoder, gpt2, layer_stack

FAMILIES: dict[str, ModuleType] = {
    **{model_type: gpt2 for model_type in gpt2.MODEL_TYPES},
    **{model_type: decoder for model_type in decoder.MODEL_TYPES},
}
# Model types close to a supported family but not loadable by it: why, in one phrase. Other
# Gemmas share parts of Gemma 3's design but not all of it.
NEAR_MISSES: dict[str, str] = {
    "gemma3": "the multimodal Gemma 3 (Gemma3ForConditionalGeneration); pathjax ports the text "
    "model only (model_type 'gemma3_text', e.g. gemma-3-270m or gemma-3-1b)",
    "gemma": "Gemma 1 (no q/k norms, no sliding window)",
    "gemma2": "Gemma 2 (logit soft-capping, a 4096 window on every other layer)",
    "gemma3n": "Gemma 3n (per-layer embeddings, AltUp, LAuReL)",
    "gemma4": "Gemma 4",
    "gemma4_text": "Gemma 4",
}


def supported_model_types() -> list[str]:
    return sorted(FAMILIES)


def family_for(model_type: str | None, *, origin: str = "config") -> ModuleType:
    if model_type not in FAMILIES:
        why = f" ({NEAR_MISSES[model_type]})" if model_type in NEAR_MISSES else ""
        raise ValueError(
            f"{origin}: model_type {model_type!r}{why} is not supported. Supported model types: "
            f"{', '.join(supported_model_types())}."
        )
    return FAMILIES[model_type]


def config_from_hf(hf_config: dict[str, Any], *, origin: str = "config") -> tuple[ModuleType, Any]:
    family = family_for(hf_config.get("model_type"), origin=origin)
    try:
        return family, family.Config.from_hf(hf_config)
    except KeyError as e:
        raise ValueError(f"{origin}: config.json lacks the field {e.args[0]!r}.") from e


def truncate(config: Any, num_layers: int | None) -> Any:
    """The config with only its first `num_layers` layers (None: unchanged)."""
    if num_layers is None or num_layers == config.num_layers:
        return config
    if not 1 <= num_layers <= config.num_layers:
        raise ValueError(f"num_layers={num_layers} is not in [1, {config.num_layers}].")
    changes: dict[str, Any] = {"num_layers": num_layers}
    if getattr(config, "layer_types", None):
        changes["layer_types"] = config.layer_types[:num_layers]
    return dataclasses.replace(config, **changes)


def with_attention(config: Any, attention: str) -> Any:
    """The config with attention backend `attention` (`attention_backends.BACKENDS`)."""
    attention_backends.check_name(attention)
    return dataclasses.replace(config, attention=attention)


def with_layout(config: Any, *, scan_layers: bool = False, remat: str = "none") -> Any:
    """The config with its layers stacked under `nnx.scan` or listed, and remat policy `remat`
    (`layer_stack`). Families without these fields (GPT-2) accept only the defaults."""
    layer_stack.check_remat(remat)
    if not hasattr(config, "scan_layers"):
        if scan_layers or remat != "none":
            raise ValueError(
                f"model.scan_layers / model.remat are not supported for {config.model_type}; "
                "set model.scan_layers=False and model.remat='none'."
            )
        return config
    return dataclasses.replace(config, scan_layers=bool(scan_layers), remat=remat)


def family_of(config: Any) -> ModuleType:
    return family_for(config.model_type)


def abstract_model(family: ModuleType, config: Any, *, dtype=jnp.float32) -> nnx.Module:
    """The model's structure with `ShapeDtypeStruct` leaves: no memory, no initialization."""
    return nnx.eval_shape(
        lambda: family.Model(config, rngs=nnx.Rngs(0), dtype=dtype, param_dtype=dtype)
    )


def init_model(config: Any, *, seed: int = 0, dtype=jnp.float32) -> nnx.Module:
    """A randomly initialized model (tests, benchmarks, training from scratch).

    Initialized under one jit: eagerly, every parameter's initializer would compile alone.
    """
    family = family_of(config)

    @nnx.jit
    def create():
        return family.Model(config, rngs=nnx.Rngs(seed), dtype=dtype, param_dtype=dtype)

    return create()


def count_params(model: nnx.Module) -> int:
    import jax

    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
