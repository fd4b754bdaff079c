"""Gemma 3 (text only: transformers' `Gemma3ForCausalLM`, model type `gemma3_text`).

What sets it apart from the Llama family: RMSNorms scale by `(1 + w)` and wrap both sublayers
(pre and post norms), per-head RMSNorms on queries and keys before the rotary embedding,
GeGLU with the tanh gelu, local (sliding-window) and global layers interleaved, each kind with
its own rotary base, embeddings scaled by `sqrt(hidden_size)`, attention scaled by
`query_pre_attn_scalar ** -0.5` rather than `head_dim ** -0.5`, tied embeddings, and optional
tanh soft-capping of the final logits.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax.models import layers

MODEL_TYPES = ("gemma3_text",)
LAYER_TYPES = ("sliding_attention", "full_attention")
# Other Gemmas share parts of this design but not all of it; their configs are refused with a
# message rather than loaded into the wrong architecture.
OTHER_GEMMAS = {
    "gemma3": "the multimodal Gemma 3 (Gemma3ForConditionalGeneration); pathjax ports the text "
    "model only (model_type 'gemma3_text', e.g. gemma-3-270m or gemma-3-1b)",
    "gemma": "Gemma 1 (no q/k norms, no sliding window)",
    "gemma2": "Gemma 2 (logit soft-capping, a 4096 window on every other layer)",
    "gemma3n": "Gemma 3n (per-layer embeddings, AltUp, LAuReL)",
    "gemma4": "Gemma 4",
    "gemma4_text": "Gemma 4",
}
# transformers' defaults (Gemma3TextConfig.default_theta) when a config leaves them out.
GLOBAL_THETA = 1_000_000.0
LOCAL_THETA = 10_000.0


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    # Per layer: "sliding_attention" (local) or "full_attention" (global).
    layer_types: tuple[str, ...]
    sliding_window: int | None = 4096
    rms_norm_eps: float = 1e-6
    rope_global: layers.RopeConfig = layers.RopeConfig(theta=GLOBAL_THETA)
    rope_local: layers.RopeConfig = layers.RopeConfig(theta=LOCAL_THETA)
    query_pre_attn_scalar: int = 256  # Attention logits are scaled by its inverse sqrt.
    # Kept for the round trip but not applied: transformers' Gemma 3 attention never passes it
    # on (Gemma 2 did), and every Gemma 3 checkpoint leaves it None.
    attn_logit_softcapping: float | None = None
    final_logit_softcapping: float | None = None
    attention_bias: bool = False
    tie_word_embeddings: bool = True
    max_position_embeddings: int = 32768
    initializer_range: float = 0.02  # Std of random initialization (tests, presets).
    model_type: str = "gemma3_text"
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 1
    pad_token_id: int | None = 0

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads="
                f"{self.num_kv_heads} (grouped-query attention)."
            )
        if len(self.layer_types) != self.num_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries for {self.num_layers} layers."
            )
        unknown = sorted(set(self.layer_types) - set(LAYER_TYPES))
        if unknown:
            raise ValueError(
                f"Gemma 3 layer types {unknown} are not supported; supported: {LAYER_TYPES}."
            )

    def window_of_layer(self, i: int) -> int | None:
        return self.sliding_window if self.layer_types[i] == "sliding_attention" else None

    def rope_of_layer(self, i: int) -> layers.RopeConfig:
        return self.rope_local if self.layer_types[i] == "sliding_attention" else self.rope_global

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        model_type = hf.get("model_type")
        if model_type in OTHER_GEMMAS:
            raise ValueError(f"model_type {model_type!r} is {OTHER_GEMMAS[model_type]}.")
        if model_type not in MODEL_TYPES:
            raise ValueError(f"{model_type!r} is not Gemma 3 text ({', '.join(MODEL_TYPES)}).")
        activation = hf.get("hidden_activation") or hf.get("hidden_act") or "gelu_pytorch_tanh"
        if activation not in ("gelu_pytorch_tanh", "gelu_new"):
            raise ValueError(
                f"Gemma 3 config has hidden_activation={activation!r}; pathjax supports only the "
                "tanh gelu ('gelu_pytorch_tanh')."
            )
        if hf.get("use_bidirectional_attention"):
            raise ValueError(
                "Gemma 3 config has use_bidirectional_attention=True (an embedding model such "
                "as EmbeddingGemma); pathjax supports only the causal language model."
            )
        num_layers = hf["num_hidden_layers"]
        layer_types = hf.get("layer_types")
        if not layer_types:
            # Older configs give the period of global layers instead (transformers' fallback).
            pattern = hf.get("sliding_window_pattern") or 6
            layer_types = [
                "full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                for i in range(num_layers)
            ]
        rope_global, rope_local = _ropes_from_hf(hf)
        num_heads = hf["num_attention_heads"]
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
            layer_types=tuple(layer_types),
            sliding_window=hf.get("sliding_window", 4096),
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_global=rope_global,
            rope_local=rope_local,
            query_pre_attn_scalar=hf.get("query_pre_attn_scalar", 256),
            attn_logit_softcapping=hf.get("attn_logit_softcapping"),
            final_logit_softcapping=hf.get("final_logit_softcapping"),
            attention_bias=bool(hf.get("attention_bias", False)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
            max_position_embeddings=hf.get("max_position_embeddings", 131072),
            initializer_range=hf.get("initializer_range", 0.02),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
            pad_token_id=hf.get("pad_token_id"),
        )

    def to_hf(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "architectures": ["Gemma3ForCausalLM"],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "layer_types": list(self.layer_types),
            "sliding_window": self.sliding_window,
            "hidden_activation": "gelu_pytorch_tanh",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {
                "full_attention": self.rope_global.to_hf(),
                "sliding_attention": self.rope_local.to_hf(),
            },
            # transformers' config class insists on an int.
            "query_pre_attn_scalar": int(self.query_pre_attn_scalar),
            "attn_logit_softcapping": self.attn_logit_softcapping,
            "final_logit_softcapping": self.final_logit_softcapping,
            "attention_bias": self.attention_bias,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }


def _ropes_from_hf(hf: dict[str, Any]) -> tuple[layers.RopeConfig, layers.RopeConfig]:
    """(global, local) rotary configs from transformers v5 per-layer-type `rope_parameters`, or
    from v4's `rope_theta` + `rope_scaling` (global) and `rope_local_base_freq` (local)."""
    params = hf.get("rope_parameters") or {}
    if "full_attention" in params or "sliding_attention" in params:
        full = dict(params.get("full_attention") or {})
        local = dict(params.get("sliding_attention") or {})
    else:
        full = {**(hf.get("rope_scaling") or {}), **params}
        local = {}
    full.setdefault("rope_theta", hf.get("rope_theta", GLOBAL_THETA))
    local.setdefault("rope_theta", hf.get("rope_local_base_freq", LOCAL_THETA))
    return (
        layers.RopeConfig.from_hf({"rope_parameters": full}),
        layers.RopeConfig.from_hf({"rope_parameters": local}),
    )


class Attention(nnx.Module):
    def __init__(self, cfg: Config, layer_index: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        d, f = cfg.hidden_size, cfg.head_dim
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        bias = cfg.attention_bias
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, f
        self.sliding_window = cfg.window_of_layer(layer_index)
        self.scale = cfg.query_pre_attn_scalar**-0.5
        self.q_proj = layers.Linear(
            d, cfg.num_heads * f, axes=("embed", "heads"), use_bias=bias, **kw
        )
        self.k_proj = layers.Linear(
            d, cfg.num_kv_heads * f, axes=("embed", "kv"), use_bias=bias, **kw
        )
        self.v_proj = layers.Linear(
            d, cfg.num_kv_heads * f, axes=("embed", "kv"), use_bias=bias, **kw
        )
        self.o_proj = layers.Linear(
            cfg.num_heads * f, d, axes=("heads", "embed"), use_bias=bias, **kw
        )
        norm = dict(eps=cfg.rms_norm_eps, offset=1.0, axes=("head_dim",), **kw)
        self.q_norm = layers.RMSNorm(f, **norm)
        self.k_norm = layers.RMSNorm(f, **norm)

    def __call__(
        self,
        x_btd: jax.Array,
        inputs: layers.AttentionInputs,
        rope: layers.RotaryTables,
        cache: layers.LayerCache | None,
    ) -> tuple[jax.Array, layers.LayerCache | None]:
        b, t, _ = x_btd.shape
        q = self.q_norm(self.q_proj(x_btd).reshape(b, t, self.num_heads, self.head_dim))
        k = self.k_norm(self.k_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim))
        v = self.v_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim)
        q = layers.apply_rope(q, rope)
        k = layers.apply_rope(k, rope)
        if cache is not None:
            cache = layers.update_cache(cache, k, v, inputs.cache_index)
            k, v = cache.k_bskf, cache.v_bskf
        out = layers.dot_product_attention(
            q, k, v, inputs.mask(self.sliding_window), scale=self.scale
        )
        return self.o_proj(out.reshape(b, t, -1)), cache


class MLP(nnx.Module):
    """GeGLU: `down(gelu_tanh(gate(x)) * up(x))`."""

    def __init__(self, cfg: Config, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        d, m = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.up_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.down_proj = layers.Linear(m, d, axes=("mlp", "embed"), **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down_proj(jax.nn.gelu(self.gate_proj(x), approximate=True) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    """Each sublayer sits between two norms: `x + post_norm(sublayer(pre_norm(x)))`."""

    def __init__(self, cfg: Config, layer_index: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        norm = dict(eps=cfg.rms_norm_eps, offset=1.0, **kw)
        d = cfg.hidden_size
        self.input_layernorm = layers.RMSNorm(d, **norm)
        self.self_attn = Attention(cfg, layer_index, **kw)
        self.post_attention_layernorm = layers.RMSNorm(d, **norm)
        self.pre_feedforward_layernorm = layers.RMSNorm(d, **norm)
        self.mlp = MLP(cfg, **kw)
        self.post_feedforward_layernorm = layers.RMSNorm(d, **norm)

    def __call__(self, x, inputs, rope, cache):
        h, cache = self.self_attn(self.input_layernorm(x), inputs, rope, cache)
        x = x + self.post_attention_layernorm(h)
        h = self.mlp(self.pre_feedforward_layernorm(x))
        return x + self.post_feedforward_layernorm(h), cache


class Model(nnx.Module):
    """`model(input_ids, attention_mask=None) -> logits [batch, length, vocab]` (float32).

    With `cache=` it returns `(logits, cache)` and writes this pass's keys and values at
    `cache.index` (prefill, then one token at a time). Local layers keep a full-length cache
    too; the window is applied by the mask.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
    ):
        self.config = cfg
        self.dtype = dtype
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        init = nnx.initializers.normal(cfg.initializer_range)
        self.embed_tokens = layers.Embed(cfg.vocab_size, cfg.hidden_size, init=init, **kw)
        self.layers = nnx.List([DecoderLayer(cfg, i, **kw) for i in range(cfg.num_layers)])
        self.norm = layers.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, offset=1.0, **kw)
        self.lm_head = (
            None
            if cfg.tie_word_embeddings
            else layers.Linear(cfg.hidden_size, cfg.vocab_size, axes=("embed", "vocab"), **kw)
        )

    def init_cache(self, batch: int, slots: int, dtype=None) -> layers.Cache:
        return layers.init_cache(self.config, batch, slots, dtype or self.dtype)

    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array | None = None,
        *,
        positions: jax.Array | None = None,
        cache: layers.Cache | None = None,
        last_only: bool = False,
        head_positions: jax.Array | None = None,
    ):
        cfg = self.config
        b, t = input_ids.shape
        inputs, valid_bs = layers.attention_inputs(attention_mask, positions, t, b, cache)
        rope = {
            layer_type: layers.rotary_tables(
                inputs.positions_bt, rope_config.inverse_frequencies(cfg.head_dim)
            )
            for layer_type, rope_config in (
                ("full_attention", cfg.rope_global),
                ("sliding_attention", cfg.rope_local),
            )
        }
        # The scale is rounded to the compute dtype first, as transformers does (sqrt(640)
        # is 25.25 in bfloat16).
        x = self.embed_tokens(input_ids)
        x = x * jnp.asarray(math.sqrt(cfg.hidden_size), x.dtype)
        new_layers = []
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.layers[i]
            x, layer_cache = layer(x, inputs, rope[cfg.layer_types[i]], layer_cache)
            new_layers.append(layer_cache)
        x = layers.head_rows(x, last_only, head_positions)
        x = self.norm(x)
        head = self.embed_tokens.attend if self.lm_head is None else self.lm_head
        logits = head(x).astype(jnp.float32)
        if cfg.final_logit_softcapping is not None:
            cap = cfg.final_logit_softcapping
            logits = jnp.tanh(logits / cap) * cap
        if cache is None:
            return logits
        return logits, layers.Cache(new_layers, valid_bs, cache.index + t)


# Checkpoint naming (see `pathjax.models.checkpoints`): parameter paths map one to one onto
# transformers' keys under this prefix; `Linear` kernels are stored transposed (`[out, in]`).
HF_PREFIX = "model."
HF_UNPREFIXED = ("lm_head",)
HF_LINEAR_TRANSPOSED = True
