"""The Llama-like decoder in Flax NNX: Llama, Qwen2, Mistral, SmolLM2 and Gemma 3 (text).

RMSNorm, rotary embedding, grouped-query attention and a gated MLP; what the families change
is data in `decoder_config.Config`. Module names are transformers' (`self_attn.q_proj`,
`pre_feedforward_layernorm`...), so checkpoint keys and LoRA/PEFT paths follow from them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from pathjax.models import activations, attention_backends, layer_stack, layers
from pathjax.models.decoder_config import MODEL_TYPES, Config

__all__ = ["MODEL_TYPES", "Config", "Model"]


class Attention(nnx.Module):
    def __init__(self, cfg: Config, backend: str, *, dtype, param_dtype, rngs: nnx.Rngs):
        d, f = cfg.hidden_size, cfg.head_dim
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, f
        self.scale = cfg.attention_scale
        self.softcap = cfg.attn_logit_softcapping
        self.backend = backend
        qkv = dict(use_bias=cfg.qkv_bias, **kw)
        self.q_proj = layers.Linear(d, cfg.num_heads * f, axes=("embed", "heads"), **qkv)
        self.k_proj = layers.Linear(d, cfg.num_kv_heads * f, axes=("embed", "kv"), **qkv)
        self.v_proj = layers.Linear(d, cfg.num_kv_heads * f, axes=("embed", "kv"), **qkv)
        self.o_proj = layers.Linear(
            cfg.num_heads * f, d, axes=("heads", "embed"), use_bias=cfg.o_bias, **kw
        )
        norm = dict(eps=cfg.rms_norm_eps, offset=cfg.norm_offset, axes=("head_dim",), **kw)
        self.q_norm = layers.RMSNorm(f, **norm) if cfg.qk_norm else None
        self.k_norm = layers.RMSNorm(f, **norm) if cfg.qk_norm else None

    def __call__(
        self,
        x_btd: jax.Array,
        inputs: layers.AttentionInputs,
        rope: layers.RotaryTables,
        cache: layers.LayerCache | None,
        window: int | jax.Array | None,
    ) -> tuple[jax.Array, layers.LayerCache | None]:
        b, t, _ = x_btd.shape
        q = self.q_proj(x_btd).reshape(b, t, self.num_heads, self.head_dim)
        k = self.k_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x_btd).reshape(b, t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = layers.apply_rope(q, rope)
        k = layers.apply_rope(k, rope)
        if cache is not None:
            cache = layers.update_cache(cache, k, v, inputs.cache_index)
            k, v = cache.k_bskf, cache.v_bskf
        out = attention_backends.attend(
            self.backend,
            q,
            k,
            v,
            inputs,
            window,
            scale=self.scale,
            softcap=self.softcap,
        )
        return self.o_proj(out.reshape(b, t, -1)), cache


class MLP(nnx.Module):
    """Gated: `down(act(gate(x)) * up(x))` (SwiGLU with silu, GeGLU with a gelu)."""

    def __init__(self, cfg: Config, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(use_bias=cfg.mlp_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        d, m = cfg.hidden_size, cfg.intermediate_size
        self.activation = cfg.activation
        self.gate_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.up_proj = layers.Linear(d, m, axes=("embed", "mlp"), **kw)
        self.down_proj = layers.Linear(m, d, axes=("mlp", "embed"), **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        act = activations.ACTIVATIONS[self.activation]
        return self.down_proj(act(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nnx.Module):
    """`x + attn(input_norm(x))`, then `x + mlp(post_attention_norm(x))`; with post-sublayer
    norms (Gemma) `x + post_attention_norm(attn(input_norm(x)))`, then
    `x + post_feedforward_norm(mlp(pre_feedforward_norm(x)))` (transformers' names)."""

    def __init__(self, cfg: Config, backend: str, *, dtype, param_dtype, rngs: nnx.Rngs):
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        norm = dict(eps=cfg.rms_norm_eps, offset=cfg.norm_offset, **kw)
        d = cfg.hidden_size
        self.input_layernorm = layers.RMSNorm(d, **norm)
        self.self_attn = Attention(cfg, backend, **kw)
        self.post_attention_layernorm = layers.RMSNorm(d, **norm)
        # Created in this order (each draws from `rngs`): random initializations stay as before
        # the families shared this module.
        extra = cfg.post_sublayer_norms
        self.pre_feedforward_layernorm = layers.RMSNorm(d, **norm) if extra else None
        self.mlp = MLP(cfg, **kw)
        self.post_feedforward_layernorm = layers.RMSNorm(d, **norm) if extra else None

    def __call__(self, x, inputs, rope, cache, window):
        """`window`: this layer's sliding window (None: full attention), an int in the loop
        layout and a scanned int32 array in the stacked one."""
        h, cache = self.self_attn(self.input_layernorm(x), inputs, rope, cache, window)
        if self.post_feedforward_layernorm is None:
            x = x + h
            return x + self.mlp(self.post_attention_layernorm(x)), cache
        x = x + self.post_attention_layernorm(h)
        h = self.mlp(self.pre_feedforward_layernorm(x))
        return x + self.post_feedforward_layernorm(h), cache


class Model(nnx.Module):
    """`model(input_ids, attention_mask=None) -> logits [batch, length, vocab]` (float32).

    With `cache=` it returns `(logits, cache)` and writes this pass's keys and values at
    `cache.index` (prefill, then one token at a time). Sliding-window layers keep a full-length
    cache too; the window is applied by the mask.
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
        backend = attention_backends.choose_and_log(
            cfg.attention, head_dim=cfg.head_dim, dtype=dtype, softcap=cfg.attn_logit_softcapping
        )
        init = nnx.initializers.normal(cfg.initializer_range)
        self.embed_tokens = layers.Embed(cfg.vocab_size, cfg.hidden_size, init=init, **kw)
        listed = [DecoderLayer(cfg, backend, **kw) for _ in range(cfg.num_layers)]
        self.layers = layer_stack.stack_modules(listed) if cfg.scan_layers else nnx.List(listed)
        self.norm = layers.RMSNorm(
            cfg.hidden_size, eps=cfg.rms_norm_eps, offset=cfg.norm_offset, **kw
        )
        self.lm_head = (
            None
            if cfg.tie_word_embeddings
            else layers.Linear(cfg.hidden_size, cfg.vocab_size, axes=("embed", "vocab"), **kw)
        )

    def init_cache(self, batch: int, slots: int, dtype=None) -> layers.Cache:
        return layers.init_cache(
            self.config, batch, slots, dtype or self.dtype, stacked=self.config.scan_layers
        )

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
        # One table per distinct rotary config (Gemma: global and local), shared by the layers;
        # in layer order so the traced program does not depend on hashing.
        ropes = dict.fromkeys(cfg.rope_of_layer(i) for i in range(cfg.num_layers))
        tables = {
            rope: layers.rotary_tables(inputs.positions_bt, rope.inverse_frequencies(cfg.head_dim))
            for rope in ropes
        }
        x = self.embed_tokens(input_ids)
        if cfg.scale_embeddings:
            # Rounded to the compute dtype first, as transformers does (sqrt(640) is 25.25 in
            # bfloat16).
            x = x * jnp.asarray(math.sqrt(cfg.hidden_size), x.dtype)
        if cfg.scan_layers:
            x, new_layers = self._scanned_layers(x, inputs, tables, cache)
        else:
            x, new_layers = self._listed_layers(x, inputs, tables, cache)
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

    def _listed_layers(self, x, inputs, tables, cache):
        cfg = self.config
        new_layers = []
        for i, layer in enumerate(self.layers):
            layer_cache = None if cache is None else cache.layers[i]
            call = layer_stack.with_remat(_layer_call(inputs, cfg.window_of_layer(i)), cfg.remat)
            x, layer_cache = call(layer, x, tables[cfg.rope_of_layer(i)], layer_cache)
            new_layers.append(layer_cache)
        return x, new_layers

    def _scanned_layers(self, x, inputs, tables, cache):
        """The stacked layer under `nnx.scan`. What differs between layers (Gemma's window and
        rotary base) is scanned data, not Python branches: each layer's window (or one static
        window shared by all) and the index of its rotary table."""
        cfg = self.config
        n = cfg.num_layers
        windows = {cfg.window_of_layer(i) for i in range(n)}
        window_l = None
        if len(windows) > 1:
            # No window: one wider than any distance, so the mask is exactly full attention's.
            no_window = jnp.iinfo(jnp.int32).max
            window_l = jnp.asarray(
                [cfg.window_of_layer(i) or no_window for i in range(n)], jnp.int32
            )
        ropes = list(tables)
        rope_l = jnp.asarray([ropes.index(cfg.rope_of_layer(i)) for i in range(n)], jnp.int32)
        tables_r = jax.tree.map(lambda *ts: jnp.stack(ts), *tables.values())
        static_window = None if window_l is not None else next(iter(windows))
        cache_l = None
        if cache is not None:
            cache_l = cache.layers
            if isinstance(cache_l, list):  # A per-layer cache built outside `init_cache`.
                cache_l = jax.tree.map(lambda *cs: jnp.stack(cs), *cache_l)

        def step(x, layer, window, rope_index, layer_cache):
            rope = jax.tree.map(lambda table: table[rope_index], tables_r)
            window = static_window if window is None else window
            return layer(x, inputs, rope, layer_cache, window)

        scanned = nnx.StateAxes({layer_stack.SCANNED: 0, ...: None})
        x, cache_l = nnx.scan(
            layer_stack.with_remat(step, cfg.remat),
            in_axes=(nnx.Carry, scanned, 0, 0, 0),
            out_axes=(nnx.Carry, 0),
        )(x, self.layers, window_l, rope_l, cache_l)
        return x, cache_l  # Stays stacked: the next decoded token scans it again.


def _layer_call(inputs: layers.AttentionInputs, window: int | None):
    """One layer's call as a module-first function of arrays, which `nnx.remat` can wrap; the
    inputs (a plain dataclass) and the static window are closed over."""

    def call(layer: DecoderLayer, x, rope, cache):
        return layer(x, inputs, rope, cache, window)

    return call


# Checkpoint naming (see `pathjax.models.checkpoints`): parameter paths map one to one onto
# transformers' keys under this prefix; `Linear` kernels are stored transposed (`[out, in]`).
HF_PREFIX = "model."
HF_UNPREFIXED = ("lm_head",)
HF_LINEAR_TRANSPOSED = True
