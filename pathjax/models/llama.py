"""The Llama family: Llama (1-3.x), Qwen2, Mistral and SmolLM2, in one Flax NNX module.

They share the decoder: RMSNorm, rotary embedding, grouped-query attention, SwiGLU. What varies
is data in `Config`: biases (Qwen2's q/k/v), rope scaling (llama3), a sliding window
(Mistral), tied embeddings (SmolLM2, small Qwen2/Llama-3.2).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax.models import layers

MODEL_TYPES = ("llama", "qwen2", "mistral")


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-5
    rope: layers.RopeConfig = layers.RopeConfig()
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    sliding_window: int | None = None
    # Per layer: "full_attention" or "sliding_attention"; None = every layer is full, or
    # every layer slides when `sliding_window` is set (Mistral).
    layer_types: tuple[str, ...] | None = None
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02  # Std of random initialization (tests, presets).
    model_type: str = "llama"
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads="
                f"{self.num_kv_heads} (grouped-query attention)."
            )
        if self.layer_types is not None and len(self.layer_types) != self.num_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries for {self.num_layers} layers."
            )

    def window_of_layer(self, i: int) -> int | None:
        if self.sliding_window is None:
            return None
        if self.layer_types is None or self.layer_types[i] == "sliding_attention":
            return self.sliding_window
        return None

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        model_type = hf.get("model_type", "llama")
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"{model_type!r} is not in the Llama family ({', '.join(MODEL_TYPES)})."
            )
        num_heads = hf["num_attention_heads"]
        head_dim = hf.get("head_dim") or hf["hidden_size"] // num_heads
        attention_bias = bool(hf.get("attention_bias", False))
        sliding_window = hf.get("sliding_window")
        layer_types = hf.get("layer_types")
        if model_type == "qwen2":
            if not hf.get("use_sliding_window", False):
                sliding_window = None
            # transformers' Qwen2 lists layer_types even without a window: keep them only
            # when a window applies.
        if sliding_window is None:
            layer_types = None
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=head_dim,
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope=layers.RopeConfig.from_hf(hf),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=model_type == "qwen2" or attention_bias,
            o_bias=model_type == "llama" and attention_bias,
            mlp_bias=bool(hf.get("mlp_bias", False)),
            sliding_window=sliding_window,
            layer_types=tuple(layer_types) if layer_types else None,
            max_position_embeddings=hf.get("max_position_embeddings", 2048),
            initializer_range=hf.get("initializer_range", 0.02),
            model_type=model_type,
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
        )

    def to_hf(self) -> dict[str, Any]:
        architectures = {
            "llama": "LlamaForCausalLM",
            "qwen2": "Qwen2ForCausalLM",
            "mistral": "MistralForCausalLM",
        }
        hf: dict[str, Any] = {
            "model_type": self.model_type,
            "architectures": [architectures[self.model_type]],
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": self.rope.to_hf(),
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }
        if self.model_type == "llama":
            hf["attention_bias"] = self.o_bias
            hf["mlp_bias"] = self.mlp_bias
        if self.model_type == "mistral" or self.sliding_window is not None:
            hf["sliding_window"] = self.sliding_window
        if self.model_type == "qwen2":
            hf["use_sliding_window"] = self.sliding_window is not None
            if self.layer_types is not None:
                hf["layer_types"] = list(self.layer_types)
        return hf


class Attention(nnx.Module):
    def __init__(self, cfg: Config, layer_index: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        d, f = cfg.hidden_size, cfg.head_dim
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, f
        self.sliding_window = cfg.window_of_layer(layer_index)
        self.q_proj = layers.Linear(
            d, cfg.num_heads * f, axes=("embed", "heads"), use_bias=cfg.qkv_bias, **kw
        )
        self.k_proj = layers.Linear(
            d, cfg.num_kv_heads * f, axes=("embed", "kv"), use_bias=cfg.qkv_bias, **kw
        )
        self.v_proj = layers.Linear(
            d, cfg.num_kv_heads * f, axes=("embed", "kv"), use_bias=cfg.qkv_bias, **kw
        )
        self.o_proj = layers.Linear(
            cfg.num_heads * f, d, axes=("heads", "embed"), use_bias=cfg.o_bias, **kw
        )

    def __call__(
        self,
        x_btd: jax.Array,
        inputs: layers.AttentionInputs,
        rope: layers.RotaryTables,
        cache: layers.LayerCache | None,
    ) -> tuple[jax.Array, layers.LayerCache | None]:
        b, t, _ = x_btd.shape
        q = self.q_proj(x_btd).reshape(b, t, self.num_heads, self.head_dim)
        k = self.k_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim)
        q = layers.apply_rope(q, rope)
        k = layers.apply_rope(k, rope)
        if cache is not None:
            cache = layers.update_cache(cache, k, v, inputs.cache_index)
            k, v = cache.k_bskf, cache.v_bskf
        out = layers.dot_product_attention(
            q, k, v, inputs.mask(self.sliding_window), scale=self.head_dim**-0.5
        )
        return self.o_proj(out.reshape(b, t, -1)), cache


class MLP(nnx.Module):
    """SwiGLU: `down(silu(gate(x)) * up(x))`."""

    def __init__(self, cfg: Config, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(use_bias=cfg.mlp_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        d, m = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.up_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.down_proj = layers.Linear(m, d, axes=("mlp", "embed"), **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    def __init__(self, cfg: Config, layer_index: int, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.input_layernorm = layers.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, **kw)
        self.self_attn = Attention(cfg, layer_index, **kw)
        self.post_attention_layernorm = layers.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, **kw)
        self.mlp = MLP(cfg, **kw)

    def __call__(self, x, inputs, rope, cache):
        h, cache = self.self_attn(self.input_layernorm(x), inputs, rope, cache)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), cache


class Model(nnx.Module):
    """`model(input_ids, attention_mask=None) -> logits [batch, length, vocab]` (float32).

    With `cache=` it returns `(logits, cache)` and writes this pass's keys and values at
    `cache.index` (prefill, then one token at a time).
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
        self.norm = layers.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps, **kw)
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
        b, t = input_ids.shape
        inputs, valid_bs = layers.attention_inputs(attention_mask, positions, t, b, cache)
        rope = layers.rotary_tables(
            inputs.positions_bt, self.config.rope.inverse_frequencies(self.config.head_dim)
        )
        x = self.embed_tokens(input_ids)
        new_layers = []
        for i, layer in enumerate(self.layers):
            x, layer_cache = layer(x, inputs, rope, None if cache is None else cache.layers[i])
            new_layers.append(layer_cache)
        x = layers.head_rows(x, last_only, head_positions)
        x = self.norm(x)
        head = self.embed_tokens.attend if self.lm_head is None else self.lm_head
        logits = head(x).astype(jnp.float32)
        if cache is None:
            return logits
        return logits, layers.Cache(new_layers, valid_bs, cache.index + t)


# Checkpoint naming (see `pathjax.models.checkpoints`): parameter paths map one to one onto
# transformers' keys under this prefix; `Linear` kernels are stored transposed (`[out, in]`).
HF_PREFIX = "model."
HF_UNPREFIXED = ("lm_head",)
HF_LINEAR_TRANSPOSED = True
