"""GPT-2 in Flax NNX: learned positions, pre-LayerNorm, fused `c_attn`, gelu_new, tied head.

Module and parameter names follow transformers' `GPT2LMHeadModel` so that checkpoint keys map
one to one; GPT-2's Conv1D stores weights `[in, out]`, which is our `Linear` layout already.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax.models import attention_backends, layers

MODEL_TYPES = ("gpt2",)


@dataclasses.dataclass(frozen=True)
class Config:
    vocab_size: int = 50257
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    max_position_embeddings: int = 1024
    intermediate_size: int | None = None  # None: 4 * hidden_size.
    layer_norm_eps: float = 1e-5
    model_type: str = "gpt2"
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    attention: str = "auto"  # Attention kernel (`attention_backends.BACKENDS`); not in HF.

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of num_heads={self.num_heads}."
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads

    @property
    def mlp_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> Config:
        unsupported = {
            "activation_function": ("gelu_new", hf.get("activation_function", "gelu_new")),
            "scale_attn_weights": (True, hf.get("scale_attn_weights", True)),
            "scale_attn_by_inverse_layer_idx": (
                False,
                hf.get("scale_attn_by_inverse_layer_idx", False),
            ),
            "reorder_and_upcast_attn": (False, hf.get("reorder_and_upcast_attn", False)),
            "tie_word_embeddings": (True, hf.get("tie_word_embeddings", True)),
        }
        for field, (expected, got) in unsupported.items():
            if got != expected:
                raise ValueError(
                    f"GPT-2 config has {field}={got!r}; pathjax supports only {field}={expected!r}."
                )
        return cls(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["n_embd"],
            num_layers=hf["n_layer"],
            num_heads=hf["n_head"],
            max_position_embeddings=hf["n_positions"],
            intermediate_size=hf.get("n_inner"),
            layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_id=hf.get("eos_token_id"),
        )

    def to_hf(self) -> dict[str, Any]:
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_embd": self.hidden_size,
            "n_layer": self.num_layers,
            "n_head": self.num_heads,
            "n_positions": self.max_position_embeddings,
            "n_inner": self.intermediate_size,
            "layer_norm_epsilon": self.layer_norm_eps,
            "activation_function": "gelu_new",
            "tie_word_embeddings": True,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
        }


class Attention(nnx.Module):
    def __init__(self, cfg: Config, backend: str, *, dtype, param_dtype, rngs: nnx.Rngs):
        d = cfg.hidden_size
        kw = dict(use_bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.backend = backend
        self.c_attn = layers.Linear(d, 3 * d, axes=("embed", "qkv"), **kw)
        self.c_proj = layers.Linear(d, d, axes=("heads", "embed"), **kw)

    def __call__(self, x_btd, inputs: layers.AttentionInputs, cache: layers.LayerCache | None):
        b, t, _ = x_btd.shape
        q, k, v = jnp.split(self.c_attn(x_btd), 3, axis=-1)
        q, k, v = (a.reshape(b, t, self.num_heads, self.head_dim) for a in (q, k, v))
        if cache is not None:
            cache = layers.update_cache(cache, k, v, inputs.cache_index)
            k, v = cache.k_bskf, cache.v_bskf
        scale = self.head_dim**-0.5
        out = attention_backends.attend(self.backend, q, k, v, inputs, None, scale=scale)
        return self.c_proj(out.reshape(b, t, -1)), cache


class MLP(nnx.Module):
    def __init__(self, cfg: Config, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(use_bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.c_fc = layers.Linear(cfg.hidden_size, cfg.mlp_size, axes=("embed", "mlp"), **kw)
        self.c_proj = layers.Linear(cfg.mlp_size, cfg.hidden_size, axes=("mlp", "embed"), **kw)

    def __call__(self, x):
        # gelu_new is the tanh approximation.
        return self.c_proj(jax.nn.gelu(self.c_fc(x), approximate=True))


class Block(nnx.Module):
    def __init__(self, cfg: Config, backend: str, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.ln_1 = layers.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **kw)
        self.attn = Attention(cfg, backend, **kw)
        self.ln_2 = layers.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **kw)
        self.mlp = MLP(cfg, **kw)

    def __call__(self, x, inputs, cache):
        h, cache = self.attn(self.ln_1(x), inputs, cache)
        x = x + h
        return x + self.mlp(self.ln_2(x)), cache


class Model(nnx.Module):
    """`model(input_ids, attention_mask=None) -> logits [batch, length, vocab]` (float32)."""

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.config = cfg
        self.dtype = dtype
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.wte = layers.Embed(cfg.vocab_size, cfg.hidden_size, **kw)
        self.wpe = layers.Embed(
            cfg.max_position_embeddings, cfg.hidden_size, axes=("positions", "embed"), **kw
        )
        backend = attention_backends.choose_and_log(
            cfg.attention, head_dim=cfg.head_dim, dtype=dtype, softcap=None
        )
        self.h = nnx.List([Block(cfg, backend, **kw) for _ in range(cfg.num_layers)])
        self.ln_f = layers.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **kw)

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
        x = self.wte(input_ids) + self.wpe(inputs.positions_bt)
        new_layers = []
        for i, block in enumerate(self.h):
            x, layer_cache = block(x, inputs, None if cache is None else cache.layers[i])
            new_layers.append(layer_cache)
        x = layers.head_rows(x, last_only, head_positions)
        logits = self.wte.attend(self.ln_f(x)).astype(jnp.float32)
        if cache is None:
            return logits
        return logits, layers.Cache(new_layers, valid_bs, cache.index + t)


# Checkpoint naming (see `pathjax.models.checkpoints`). GPT-2's Conv1D keeps `[in, out]`.
HF_PREFIX = "transformer."
HF_UNPREFIXED = ()
HF_LINEAR_TRANSPOSED = False
