"""LoRA adapters with PEFT's semantics, added to a model without moving its base parameters.

`delta(x) = multiplier * scale * dropout(x) @ A @ B`, `A: [in, r] ~ U(-1/sqrt(in), 1/sqrt(in))`,
`B: [r, out] = 0`, `scale = alpha / r` (rsLoRA: `alpha / sqrt(r)`): PEFT's `lora_A.weight` is
`A.T` and `lora_B.weight` is `B.T`, so an adapter at init changes nothing.

Adapters are `nnx.LoRAParam`s in a `lora` child of each targeted `Linear`: base paths such as
`layers.0.self_attn.q_proj.kernel` are unchanged, and `BASE` / `ADAPTERS` filters split the
state. Per-call inputs (the multiplier, the dropout key, which adapter each row uses) are
`LoRAControl` variables set by `set_controls` inside a jitted step: with `K` stacked adapters
and a per-row multiplier, one pass scores the base model (multiplier 0) and every adapter.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax.models import layer_stack, layers


class LoRAControl(nnx.Variable):
    """A per-call input of the adapters: neither trained nor saved."""


BASE = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))
ADAPTERS = nnx.LoRAParam


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    # "default" (PEFT's per-family targets), "all-linear" (every Linear but the output head),
    # a tuple of module names (matched as path suffixes, like PEFT's list form) or a regex
    # string matched against the whole module path (like PEFT's string form).
    targets: str | tuple[str, ...] = "default"
    use_rslora: bool = False
    # Only the last `top_layers` decoder layers (0: every layer), like PEFT's
    # `layers_to_transform`. Gradients then stop at the lowest adapted layer, so a step costs
    # about forward + 2 x (top_layers / layers) forwards instead of three.
    top_layers: int = 0

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}.")
        if self.top_layers < 0:
            raise ValueError(
                f"lora.top_layers must be >= 0 (0: every layer), got {self.top_layers}."
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}.")

    @property
    def scale(self) -> float:
        return self.alpha / (math.sqrt(self.rank) if self.use_rslora else self.rank)


# PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the supported families.
DEFAULT_TARGETS = {
    "gpt2": ("c_attn",),
    "llama": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "gemma3_text": ("q_proj", "v_proj"),
}
OUTPUT_HEADS = ("lm_head",)


def initial_a(rngs: nnx.Rngs, shape: tuple[int, ...]) -> jax.Array:
    """A's initial values, `[..., in, rank]`: kaiming_uniform_(a=sqrt(5)), as PEFT draws them."""
    bound = 1.0 / math.sqrt(shape[-2])
    return jax.random.uniform(rngs.params(), shape, jnp.float32, -bound, bound)


class LoRA(nnx.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rank: int,
        scale: float,
        dropout: float,
        axes: tuple[str, str],
        index: int,
        num_adapters: int | None = None,
        num_layers: int | None = None,
        rngs: nnx.Rngs,
    ):
        # Leading axes: the layers of a stacked decoder layer (scanned away before a call sees
        # them), then the K adapters of the evaluator (kept: every row picks its adapter). The
        # layer axis comes first because `nnx.scan` slices axis 0 of every parameter.
        stack = tuple(n for n in (num_layers, num_adapters) if n is not None)
        stack_axes = (None,) * len(stack)
        self.lora_a = nnx.LoRAParam(
            initial_a(rngs, (*stack, in_features, rank)),
            out_sharding=(*stack_axes, axes[0], None),
            eager_sharding=False,
        )
        self.lora_b = nnx.LoRAParam(
            jnp.zeros((*stack, rank, out_features), jnp.float32),
            out_sharding=(*stack_axes, None, axes[1]),
            eager_sharding=False,
        )
        self.scale = scale
        self.dropout = dropout
        self.index = index  # Distinct per module: folds into the dropout key.
        self.adapter_stacked = num_adapters is not None
        # Stacked layers share one module (one `index`): each layer folds its own index too.
        self.layer_index = (
            None if num_layers is None else layer_stack.PerLayer(jnp.arange(num_layers))
        )
        self.multiplier = LoRAControl(jnp.ones((), jnp.float32))  # Scalar or per row [b].
        self.adapter_index = LoRAControl(jnp.zeros((), jnp.int32))  # Per row [b] if stacked.
        self.dropout_key = LoRAControl(jnp.zeros((2,), jnp.uint32))
        self.train_mode = False  # Static: dropout only in training steps.

    @property
    def stacked(self) -> bool:
        """K adapters on a leading axis (after the layer axis of stacked layers, which a call
        never sees)."""
        return self.adapter_stacked

    def __call__(self, x_btd: jax.Array) -> jax.Array:
        dtype = x_btd.dtype
        if self.train_mode and self.dropout > 0:
            key = jax.random.fold_in(jax.random.wrap_key_data(self.dropout_key[...]), self.index)
            if self.layer_index is not None:
                key = jax.random.fold_in(key, self.layer_index[...])
            keep = jax.random.bernoulli(key, 1.0 - self.dropout, x_btd.shape)
            x_btd = jnp.where(keep, x_btd / (1.0 - self.dropout), 0).astype(dtype)
        a, b = self.lora_a[...].astype(dtype), self.lora_b[...].astype(dtype)
        if self.stacked:
            # Every adapter on every row, then each row keeps its own: K small matmuls cost far
            # less than gathering a [b, in, r] copy of A (and B) per row.
            index_b = jnp.broadcast_to(self.adapter_index[...], x_btd.shape[:1])
            keep_kb = jax.nn.one_hot(index_b, a.shape[0], dtype=jnp.float32).T
            h_kbtr = jnp.einsum("btd,kdr->kbtr", x_btd, a, preferred_element_type=jnp.float32)
            h_kbtr = (h_kbtr * keep_kb[:, :, None, None]).astype(dtype)
            delta = jnp.einsum("kbtr,kro->bto", h_kbtr, b, preferred_element_type=jnp.float32)
        else:
            h_btr = layers.matmul(x_btd, a, dtype)
            delta = layers.matmul(h_btr, b, jnp.float32)
        multiplier = self.multiplier[...]
        if multiplier.ndim == 1:
            multiplier = multiplier[:, None, None]
        return (delta * (self.scale * multiplier)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Adding, finding and controlling adapters.


def linear_modules(model: nnx.Module) -> list[tuple[str, layers.Linear]]:
    """Every `Linear` with its dotted path (`layers.0.self_attn.q_proj`; in stacked layers
    `layers.self_attn.q_proj`, one module for every layer)."""
    return [
        (".".join(str(p) for p in path), module)
        for path, module in model.iter_modules()
        if isinstance(module, layers.Linear)
    ]


def stacked_layers(module: layers.Linear) -> int | None:
    """How many layers a `Linear` of stacked layers stands for (None: one, not stacked)."""
    return module.kernel.shape[0] if module.kernel.ndim == 3 else None


def per_layer_paths(path: str, module: layers.Linear) -> list[str]:
    """The paths a module has in the loop layout (and in PEFT names): itself, or one per layer."""
    n = stacked_layers(module)
    if n is None:
        return [path]
    return [".".join(map(str, layer_stack.per_layer_path(path.split("."), i))) for i in range(n)]


def per_layer_modules(model: nnx.Module) -> dict[str, tuple[str, layers.Linear, int | None]]:
    """Every `Linear` under its per-layer path (the loop layout's and PEFT's name): the path of
    the module that holds it, that module, and its layer in a stacked module (None: unstacked)."""
    return {
        name: (path, module, i if stacked_layers(module) is not None else None)
        for path, module in linear_modules(model)
        for i, name in enumerate(per_layer_paths(path, module))
    }


def per_layer_weights(model: nnx.Module) -> dict[str, tuple[LoRA, jax.Array, jax.Array]]:
    """Every attached adapter under its per-layer path: `(its LoRA, A, B)`, with A and B of that
    layer only (`[..., in, r]`, `[..., r, out]`; K stacked adapters keep their leading axis)."""
    out = {}
    for name, (_, module, layer) in per_layer_modules(model).items():
        if module.lora is None:
            continue
        a, b = module.lora.lora_a[...], module.lora.lora_b[...]
        out[name] = (module.lora, a, b) if layer is None else (module.lora, a[layer], b[layer])
    return out


_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h)\.(\d+)\.")


def _in_top_layers(paths: Sequence[str], top_layers: int) -> list[str]:
    """The paths inside the last `top_layers` numbered layers (all of them for 0)."""
    if top_layers <= 0:
        return list(paths)
    indices = {int(m.group(1)) for p in paths if (m := _LAYER_INDEX.search(p))}
    if not indices:
        raise ValueError("lora.top_layers needs numbered layers (layers.N or h.N); none found.")
    if top_layers > len(indices):
        raise ValueError(
            f"lora.top_layers={top_layers} but the model has {len(indices)} layers; use at most "
            f"{len(indices)} (or 0 for every layer)."
        )
    lowest = max(indices) + 1 - top_layers
    return [p for p in paths if (m := _LAYER_INDEX.search(p)) and int(m.group(1)) >= lowest]


def target_paths(model: nnx.Module, targets: str | Sequence[str], top_layers: int = 0) -> list[str]:
    """The model's module paths `targets` selects. Targets match per-layer paths
    (`layers.3.self_attn.q_proj`) in both layouts; a stacked module is chosen when all of its
    layers are, and refused when only some are (it has one adapter for every layer)."""
    stacked = {
        path: per_layer_paths(path, module)
        for path, module in linear_modules(model)
        if stacked_layers(module) is not None
    }
    if stacked and top_layers > 0:
        raise ValueError(
            f"lora.top_layers={top_layers} adapts some layers only, which stacked layers (one "
            f"module for all) cannot; set {layer_stack.SCAN_FIX} or lora.top_layers=0."
        )
    chosen = _chosen_per_layer(model, targets, top_layers)
    for path, names in stacked.items():
        hit = [name for name in names if name in chosen]
        if hit and len(hit) < len(names):
            raise ValueError(
                f"lora.targets={targets!r} adapts {len(hit)} of the {len(names)} layers' "
                f"{path.split('.')[-1]}; stacked layers adapt all of them or none. Set "
                f"{layer_stack.SCAN_FIX} to adapt some layers only."
            )
        chosen = [p for p in chosen if p not in names] + ([path] if hit else [])
    return chosen


def _chosen_per_layer(
    model: nnx.Module, targets: str | Sequence[str], top_layers: int
) -> list[str]:
    paths = [p for path, module in linear_modules(model) for p in per_layer_paths(path, module)]
    model_type = model.config.model_type
    if targets == "default":
        targets = DEFAULT_TARGETS[model_type]
    if targets == "all-linear":
        chosen = [p for p in paths if p.split(".")[-1] not in OUTPUT_HEADS]
    elif isinstance(targets, str):
        chosen = [p for p in paths if re.fullmatch(targets, p)]
    else:
        chosen = [p for p in paths if any(p == t or p.endswith("." + t) for t in targets)]
    chosen = _in_top_layers(chosen, top_layers) if chosen else chosen
    if not chosen:
        names = sorted({p.split(".")[-1] for p in paths})
        raise ValueError(
            f"lora.targets={targets!r} matches no linear layer of this {model_type} model; "
            f"its linear layers are named {names}."
        )
    return chosen


def add_lora(
    model: nnx.Module,
    config: LoraConfig,
    *,
    rngs: nnx.Rngs,
    num_adapters: int | None = None,
) -> list[str]:
    """Adds an adapter to every targeted `Linear` (in place); returns their paths."""
    chosen = set(target_paths(model, config.targets, config.top_layers))
    modules = dict(linear_modules(model))
    for index, path in enumerate(sorted(chosen)):
        module = modules[path]
        if module.lora is not None:
            raise ValueError(f"{path} already has an adapter.")
        # The kernel's own axes, without the layer axis of stacked layers.
        axes = tuple(module.kernel.get_metadata()["out_sharding"])[-2:]
        module.lora = LoRA(
            module.in_features,
            module.out_features,
            rank=config.rank,
            scale=config.scale,
            dropout=config.dropout,
            axes=axes,
            index=index,
            num_adapters=num_adapters,
            num_layers=stacked_layers(module),
            rngs=rngs,
        )
    return sorted(chosen)


def adapters(model: nnx.Module) -> list[tuple[str, LoRA]]:
    """`(path of the adapted Linear, its LoRA)` pairs."""
    return [(path, m.lora) for path, m in linear_modules(model) if m.lora is not None]


def set_controls(
    model: nnx.Module,
    *,
    multiplier: jax.Array | float | None = None,
    adapter_index: jax.Array | int | None = None,
    dropout_key: jax.Array | None = None,
) -> None:
    """Sets the adapters' per-call inputs (inside or outside jit)."""
    # set_value without an index replaces the value: a scalar may become per-row `[b]`.
    for _, lora in adapters(model):
        if multiplier is not None:
            lora.multiplier.set_value(jnp.asarray(multiplier, jnp.float32))
        if adapter_index is not None:
            lora.adapter_index.set_value(jnp.asarray(adapter_index, jnp.int32))
        if dropout_key is not None:
            lora.dropout_key.set_value(jax.random.key_data(dropout_key))


def set_train_mode(model: nnx.Module, train: bool) -> None:
    """Dropout on (train) or off; static, so a jitted function traces each mode once."""
    for _, lora in adapters(model):
        lora.train_mode = train


# ---------------------------------------------------------------------------------------------
# Merging.


def _fold_delta(module: layers.Linear, multiplier: float) -> None:
    """`kernel += multiplier * scale * A @ B`, in float32."""
    lora = module.lora
    delta = lora.scale * multiplier * (lora.lora_a[...] @ lora.lora_b[...])
    kernel = module.kernel[...]
    module.kernel[...] = (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)


def merge(model: nnx.Module, multiplier: float = 1.0) -> None:
    """Folds `multiplier * scale * A @ B` into each base kernel and removes the adapters."""
    for _, module in linear_modules(model):
        lora = module.lora
        if lora is None:
            continue
        if lora.stacked:
            raise ValueError("Merge one adapter at a time: these adapters are stacked.")
        _fold_delta(module, multiplier)
        module.lora = None


def unmerge(model: nnx.Module, adapter_state: nnx.State, config: LoraConfig, multiplier=1.0):
    """Undoes `merge`: subtracts the delta again and re-attaches the adapters."""
    add_lora(model, config, rngs=nnx.Rngs(0))
    nnx.update(model, adapter_state)
    for _, module in linear_modules(model):
        lora = module.lora
        if lora is None:
            continue
        _fold_delta(module, -multiplier)
