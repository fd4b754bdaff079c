"""Blocks shared by the architecture families: linear, norms, rotary embedding, attention, MLPs.

Every parameter carries logical axis names (its `out_sharding` metadata): `vocab`, `embed`,
`mlp`, `heads` (query heads x head_dim, flattened), `kv` (key/value heads x head_dim), `qkv`
(GPT-2's fused projection), `positions`, `head_dim` (per-head norms: replicated by default).
`pathjax.sharding` maps them to mesh axes; model code never names a mesh axis.

Array names end in their shape: b batch, t query length, s key length, d embed, h heads,
k key/value heads, g query heads per key/value head, f head dim, v vocab.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

Dtype = Any
Initializer = nnx.initializers.Initializer

# Large finite negative instead of -inf: a fully masked row (a padding query) then gets a
# uniform softmax rather than NaNs that would leak into gradients.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)


_DEFAULT_KERNEL_INIT = nnx.initializers.normal(0.02)


def matmul(x: jax.Array, w: jax.Array, out_dtype) -> jax.Array:
    """`x @ w` (`w` is `[in, out]`) accumulated in float32: XLA's CPU bf16 kernel only runs with
    a float32 output, and it is also the numerics of torch's bf16 matmul."""
    return _matmul(x, w, jnp.dtype(out_dtype), False)


def matmul_transposed(x: jax.Array, w: jax.Array, out_dtype) -> jax.Array:
    """`x @ w.T` (`w` is `[out, in]`, a tied head's embedding table), as `matmul`.

    Contracting `w`'s last axis inside the dot keeps XLA's CPU bf16 kernel; a separate
    transpose (`jnp.dot(x, w.T)`) falls back to a kernel about 3x slower (measured)."""
    return _matmul(x, w, jnp.dtype(out_dtype), True)


def _contract(a: jax.Array, b: jax.Array, a_axis: int, b_axis: int) -> jax.Array:
    dims = (((a_axis % a.ndim,), (b_axis % b.ndim,)), ((), ()))
    return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _matmul(x: jax.Array, w: jax.Array, out_dtype, transposed: bool) -> jax.Array:
    return _contract(x, w, -1, 1 if transposed else 0).astype(out_dtype)


def _matmul_fwd(x, w, out_dtype, transposed):
    return _matmul(x, w, out_dtype, transposed), (x, w)


def _matmul_bwd(out_dtype, transposed, residuals, ct):
    """Gradients as bf16 x bf16 -> f32 dots when the operands are bf16 (torch autocast's
    numerics). JAX's own rule multiplies the float32 cotangent by the bf16 weight, a mixed
    product XLA's CPU runs at float32 speed: the backward half of a bf16 step ran ~3x slower."""
    x, w = residuals
    ct = ct.astype(jnp.promote_types(x.dtype, w.dtype))
    dx = _contract(ct, w, -1, 0 if transposed else 1).astype(x.dtype)
    x_2d, ct_2d = x.reshape(-1, x.shape[-1]), ct.reshape(-1, ct.shape[-1])
    dw = _contract(ct_2d, x_2d, 0, 0) if transposed else _contract(x_2d, ct_2d, 0, 0)
    return dx, dw.astype(w.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def batched_matmul(a_nmk: jax.Array, b: jax.Array, *, transposed: bool = False) -> jax.Array:
    """`a[i] @ b[i]` (`b[i].T` when `transposed`: `b` is `[n, p, k]`) for every i, float32
    result; gradients as `matmul`'s.

    Attention is written with these rather than `jnp.einsum` over `[b, k, g, t]` batch and free
    axes: XLA's CPU runs that einsum about 4x slower than this one-batch-axis form (measured
    on a SmolLM2-shaped layer, bf16)."""
    return _batched_matmul(a_nmk, b, transposed)


def _batch_contract(a: jax.Array, b: jax.Array, a_axis: int, b_axis: int) -> jax.Array:
    dims = (((a_axis,), (b_axis,)), ((0,), (0,)))
    return jax.lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _batched_matmul(a: jax.Array, b: jax.Array, transposed: bool) -> jax.Array:
    return _batch_contract(a, b, 2, 2 if transposed else 1)


def _batched_matmul_fwd(a, b, transposed):
    return _batched_matmul(a, b, transposed), (a, b)


def _batched_matmul_bwd(transposed, residuals, ct_nmp):
    a, b = residuals
    ct_nmp = ct_nmp.astype(jnp.promote_types(a.dtype, b.dtype))
    da = _batch_contract(ct_nmp, b, 2, 1 if transposed else 2)
    db = _batch_contract(ct_nmp, a, 1, 1) if transposed else _batch_contract(a, ct_nmp, 1, 1)
    return da.astype(a.dtype), db.astype(b.dtype)


_batched_matmul.defvjp(_batched_matmul_fwd, _batched_matmul_bwd)


def _param(init: Initializer, rngs: nnx.Rngs, shape, dtype, names: Sequence[str]) -> nnx.Param:
    # Logical names only: shardings are applied at creation by `pathjax.sharding`, not eagerly.
    return nnx.Param(
        init(rngs.params(), shape, dtype), out_sharding=tuple(names), eager_sharding=False
    )


class Linear(nnx.Module):
    """`y = x @ kernel (+ bias)` with kernel `[in, out]`; `lora` is filled by `pathjax.lora`.

    Keeping the adapter as an optional child leaves the base parameter paths
    (`...q_proj.kernel`) identical with and without LoRA.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        axes: tuple[str, str],
        use_bias: bool = False,
        dtype: Dtype = jnp.float32,
        param_dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
        kernel_init: Initializer = _DEFAULT_KERNEL_INIT,
    ):
        self.in_features = in_features
        self.out_features = out_features
        self.dtype = dtype
        self.kernel = _param(kernel_init, rngs, (in_features, out_features), param_dtype, axes)
        self.bias = (
            _param(nnx.initializers.zeros, rngs, (out_features,), param_dtype, axes[1:])
            if use_bias
            else None
        )
        self.lora = nnx.data(None)  # Data, not static: `pathjax.lora` may set a module here.

    def __call__(self, x: jax.Array) -> jax.Array:
        y = matmul(x.astype(self.dtype), self.kernel[...].astype(self.dtype), self.dtype)
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        if self.lora is not None:
            y = y + self.lora(x).astype(self.dtype)
        return y


class Embed(nnx.Module):
    """Token (or position) embedding table `[num, features]`; `attend` gives tied logits."""

    def __init__(
        self,
        num: int,
        features: int,
        *,
        axes: tuple[str, str] = ("vocab", "embed"),
        dtype: Dtype = jnp.float32,
        param_dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
        init: Initializer = _DEFAULT_KERNEL_INIT,
    ):
        self.dtype = dtype
        self.embedding = _param(init, rngs, (num, features), param_dtype, axes)

    def __call__(self, ids: jax.Array) -> jax.Array:
        return jnp.take(self.embedding[...], ids, axis=0).astype(self.dtype)

    def attend(self, x_btd: jax.Array) -> jax.Array:
        table = self.embedding[...].astype(self.dtype)
        return matmul_transposed(x_btd.astype(self.dtype), table, jnp.float32)


def head_rows(x_btd: jax.Array, last_only: bool, head_positions: jax.Array | None) -> jax.Array:
    """The hidden states the output head reads: every position, the last one (prefill), or the
    `head_positions [b, k]` (training on target tokens only: the head's vocabulary-wide matmul
    and softmax are a fifth of a small model's FLOPs, wasted on prompt positions)."""
    if last_only:
        return x_btd[:, -1:]
    if head_positions is not None:
        return jnp.take_along_axis(x_btd, head_positions[..., None], axis=1)
    return x_btd


class RMSNorm(nnx.Module):
    """RMSNorm computed in float32 as transformers does; `offset=1` gives Gemma's `(1 + w)`."""

    def __init__(
        self,
        features: int,
        *,
        eps: float,
        offset: float = 0.0,
        axes: tuple[str] = ("embed",),
        dtype: Dtype = jnp.float32,
        param_dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.eps = eps
        self.offset = offset
        self.dtype = dtype
        init = nnx.initializers.zeros if offset else nnx.initializers.ones
        self.scale = _param(init, rngs, (features,), param_dtype, axes)

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (x32 * (self.offset + self.scale[...].astype(jnp.float32))).astype(self.dtype)


class LayerNorm(nnx.Module):
    """LayerNorm with scale and bias, statistics in float32."""

    def __init__(
        self,
        features: int,
        *,
        eps: float,
        dtype: Dtype = jnp.float32,
        param_dtype: Dtype = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.eps = eps
        self.dtype = dtype
        self.scale = _param(nnx.initializers.ones, rngs, (features,), param_dtype, ("embed",))
        self.bias = _param(nnx.initializers.zeros, rngs, (features,), param_dtype, ("embed",))

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(self.dtype)


# ---------------------------------------------------------------------------------------------
# Rotary position embedding.


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding of the HF ("rotate half") layout, with the scalings transformers has."""

    theta: float = 10000.0
    rope_type: str = "default"  # "default", "linear" or "llama3".
    factor: float = 1.0
    # llama3 only: the band of wavelengths that is interpolated between scaled and unscaled.
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192

    SUPPORTED = ("default", "linear", "llama3")

    def __post_init__(self):
        if self.rope_type not in self.SUPPORTED:
            raise ValueError(
                f"Unsupported rope type {self.rope_type!r}; supported: {', '.join(self.SUPPORTED)}."
            )

    def inverse_frequencies(self, head_dim: int) -> jax.Array:
        exponents = jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim
        inv_freq = 1.0 / (self.theta**exponents)
        if self.rope_type == "linear":
            return inv_freq / self.factor
        if self.rope_type == "llama3":
            low_freq_wavelen = self.original_max_position_embeddings / self.low_freq_factor
            high_freq_wavelen = self.original_max_position_embeddings / self.high_freq_factor
            wavelen = 2 * math.pi / inv_freq
            scaled = jnp.where(wavelen > low_freq_wavelen, inv_freq / self.factor, inv_freq)
            smooth = (self.original_max_position_embeddings / wavelen - self.low_freq_factor) / (
                self.high_freq_factor - self.low_freq_factor
            )
            smoothed = (1 - smooth) * scaled / self.factor + smooth * scaled
            is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
            return jnp.where(is_medium, smoothed, scaled)
        return inv_freq

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> RopeConfig:
        """Reads transformers' `rope_parameters` (v5) or `rope_theta` + `rope_scaling` (v4)."""
        params = dict(hf.get("rope_parameters") or {})
        scaling = hf.get("rope_scaling") or {}
        params = {**scaling, **params}
        theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
        rope_type = params.get("rope_type", params.get("type", "default"))
        scaling = (
            "factor",
            "low_freq_factor",
            "high_freq_factor",
            "original_max_position_embeddings",
        )
        kwargs = {k: params[k] for k in scaling if params.get(k) is not None}
        config = cls(theta=float(theta), rope_type=rope_type, **kwargs)  # Refuses unknown types.
        # Any other key (partial_rotary_factor, mrope_section...) changes the rotation.
        unknown = sorted(set(params) - {"rope_type", "type", "rope_theta", *scaling})
        if unknown:
            raise ValueError(
                f"Rotary parameters {unknown} are not supported (rope type {rope_type!r})."
            )
        return config

    def to_hf(self) -> dict[str, Any]:
        params: dict[str, Any] = {"rope_type": self.rope_type, "rope_theta": self.theta}
        if self.rope_type in ("linear", "llama3"):
            params["factor"] = self.factor
        if self.rope_type == "llama3":
            params["low_freq_factor"] = self.low_freq_factor
            params["high_freq_factor"] = self.high_freq_factor
            params["original_max_position_embeddings"] = self.original_max_position_embeddings
        return params


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class RotaryTables:
    """cos and signed sin of every (row, position, frequency), over the whole head dim:
    `rotated = x * cos + roll(x, f/2) * sin` is transformers' `x*cos + rotate_half(x)*sin`."""

    cos_btf: jax.Array
    sin_btf: jax.Array


def rotary_tables(positions_bt: jax.Array, inv_freq_f2: jax.Array) -> RotaryTables:
    """The tables of one forward pass, computed once and shared by every layer.

    The barrier makes XLA write them out: left in the graph, XLA fused cos and sin into each
    rotation and evaluated them once per head and per element of the head dim, which made
    rotary 10-20x slower than the rotation itself (6 ms against 0.4 ms per SmolLM2 layer's
    queries on the CPU; measured).
    """
    angles_btf2 = positions_bt[..., None].astype(jnp.float32) * inv_freq_f2
    cos_btf2, sin_btf2 = jnp.cos(angles_btf2), jnp.sin(angles_btf2)
    cos_btf = jnp.concatenate([cos_btf2, cos_btf2], axis=-1)
    sin_btf = jnp.concatenate([-sin_btf2, sin_btf2], axis=-1)
    return RotaryTables(*jax.lax.optimization_barrier((cos_btf, sin_btf)))


def apply_rope(x_bthf: jax.Array, tables: RotaryTables) -> jax.Array:
    """Rotates the two halves of the head dimension (transformers' `rotate_half` layout), in
    float32. `roll` by half the head dim swaps the halves; the sign lives in `sin_btf`, so each
    element is `x1*cos - x2*sin` or `x2*cos + x1*sin` exactly as transformers computes it."""
    x32 = x_bthf.astype(jnp.float32)
    swapped = jnp.roll(x32, x32.shape[-1] // 2, axis=-1)
    cos, sin = tables.cos_btf[:, :, None, :], tables.sin_btf[:, :, None, :]
    return (x32 * cos + swapped * sin).astype(x_bthf.dtype)


# ---------------------------------------------------------------------------------------------
# Attention and its KV cache.


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class LayerCache:
    """One layer's keys and values for every cache slot: `[batch, slots, kv_heads, head_dim]`."""

    k_bskf: jax.Array
    v_bskf: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Cache:
    """The KV cache of a whole model, a pytree that jitted decoding loops carry.

    `index` is the slot the next token is written to; `valid_bs` marks slots that hold a real
    token (left padding stays invalid), so prompts of different lengths share one cache.
    `layers` is one `LayerCache` per layer, or, for scanned layers, one `LayerCache` whose
    arrays carry a leading layer axis: the scan reads and writes it in place of restacking the
    per-layer caches at every decoded token.
    """

    layers: list[LayerCache] | LayerCache
    valid_bs: jax.Array
    index: jax.Array

    @classmethod
    def empty(
        cls, *, batch: int, slots: int, num_layers: int, kv_heads: int, head_dim: int, dtype
    ) -> Cache:
        zeros = jnp.zeros((batch, slots, kv_heads, head_dim), dtype)
        return cls(
            layers=[LayerCache(zeros, zeros) for _ in range(num_layers)],
            valid_bs=jnp.zeros((batch, slots), bool),
            index=jnp.zeros((), jnp.int32),
        )


def init_cache(config, batch: int, slots: int, dtype, *, stacked: bool = False) -> Cache:
    """An empty cache sized by a family config (`num_layers`, `num_kv_heads`, `head_dim`);
    `stacked`: one layer-axis cache for scanned layers."""
    if stacked:
        zeros = jnp.zeros(
            (config.num_layers, batch, slots, config.num_kv_heads, config.head_dim), dtype
        )
        return Cache(
            layers=LayerCache(zeros, zeros),
            valid_bs=jnp.zeros((batch, slots), bool),
            index=jnp.zeros((), jnp.int32),
        )
    return Cache.empty(
        batch=batch,
        slots=slots,
        num_layers=config.num_layers,
        kv_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        dtype=dtype,
    )


def attention_mask(
    *,
    query_slots_t: jax.Array,
    key_slots_s: jax.Array,
    key_valid_bs: jax.Array,
    sliding_window: int | None,
) -> jax.Array:
    """Boolean `[b, 1, t, s]`: causal, padding, and (optionally) a sliding window.

    Slots, not positions, are compared: with left padding the two differ by a per-row offset,
    which cancels in both the causal test and the window distance.
    """
    distance_ts = query_slots_t[:, None] - key_slots_s[None, :]
    allowed_ts = distance_ts >= 0
    if sliding_window is not None:
        allowed_ts &= distance_ts < sliding_window
    return (allowed_ts[None, :, :] & key_valid_bs[:, None, :])[:, None, :, :]


def dot_product_attention(
    q_bthf: jax.Array,
    k_bskf: jax.Array,
    v_bskf: jax.Array,
    mask_b1ts: jax.Array,
    *,
    scale: float,
    softcap: float | None = None,
) -> jax.Array:
    """Grouped-query attention (MHA when g == 1, MQA when k == 1); softmax in float32."""
    b, t, h, f = q_bthf.shape
    s, k = k_bskf.shape[1], k_bskf.shape[2]
    g = h // k
    # One batch axis (b*k) and matrices [g*t, f] x [s, f]: see `batched_matmul`.
    q_ntf = q_bthf.reshape(b, t, k, g, f).transpose(0, 2, 3, 1, 4).reshape(b * k, g * t, f)
    k_nsf = k_bskf.transpose(0, 2, 1, 3).reshape(b * k, s, f)
    v_nsf = v_bskf.transpose(0, 2, 1, 3).reshape(b * k, s, f)
    logits_bkgts = batched_matmul(q_ntf, k_nsf, transposed=True).reshape(b, k, g, t, s) * scale
    if softcap is not None:
        logits_bkgts = jnp.tanh(logits_bkgts / softcap) * softcap
    logits_bkgts = jnp.where(mask_b1ts[:, :, None], logits_bkgts, _MASK_VALUE)
    weights_nts = jax.nn.softmax(logits_bkgts, axis=-1).astype(v_bskf.dtype)
    out_ntf = batched_matmul(weights_nts.reshape(b * k, g * t, s), v_nsf)
    out_btkgf = out_ntf.reshape(b, k, g, t, f).transpose(0, 3, 1, 2, 4)
    return out_btkgf.astype(v_bskf.dtype).reshape(b, t, h, f)


def update_cache(
    cache: LayerCache, k_btkf: jax.Array, v_btkf: jax.Array, index: jax.Array
) -> LayerCache:
    k = jax.lax.dynamic_update_slice_in_dim(
        cache.k_bskf, k_btkf.astype(cache.k_bskf.dtype), index, 1
    )
    v = jax.lax.dynamic_update_slice_in_dim(
        cache.v_bskf, v_btkf.astype(cache.v_bskf.dtype), index, 1
    )
    return LayerCache(k, v)


@dataclasses.dataclass
class AttentionInputs:
    """What every attention layer of one forward pass shares: positions, slots and masks."""

    positions_bt: jax.Array
    query_slots_t: jax.Array
    key_slots_s: jax.Array
    key_valid_bs: jax.Array
    cache_index: jax.Array | None  # None: no cache, keys are this pass's tokens only.

    def mask(self, sliding_window: int | None) -> jax.Array:
        return attention_mask(
            query_slots_t=self.query_slots_t,
            key_slots_s=self.key_slots_s,
            key_valid_bs=self.key_valid_bs,
            sliding_window=sliding_window,
        )


def attention_inputs(
    attention_mask_bt: jax.Array | None,
    positions_bt: jax.Array | None,
    length: int,
    batch: int,
    cache: Cache | None,
) -> tuple[AttentionInputs, jax.Array | None]:
    """Positions and masks for a pass over `length` new tokens; returns the new cache validity.

    Positions default to the count of real tokens before each one, so left- and right-padded
    rows get the positions their unpadded versions would.
    """
    if attention_mask_bt is None:
        attention_mask_bt = jnp.ones((batch, length), bool)
    attention_mask_bt = attention_mask_bt.astype(bool)
    if cache is None:
        if positions_bt is None:
            positions_bt = jnp.maximum(jnp.cumsum(attention_mask_bt, axis=1) - 1, 0)
        slots_t = jnp.arange(length)
        inputs = AttentionInputs(positions_bt, slots_t, slots_t, attention_mask_bt, None)
        return inputs, None
    valid_bs = jax.lax.dynamic_update_slice_in_dim(
        cache.valid_bs, attention_mask_bt, cache.index, 1
    )
    if positions_bt is None:
        seen_b = jnp.sum(cache.valid_bs, axis=1)
        positions_bt = seen_b[:, None] + jnp.maximum(jnp.cumsum(attention_mask_bt, axis=1) - 1, 0)
    inputs = AttentionInputs(
        positions_bt=positions_bt,
        query_slots_t=cache.index + jnp.arange(length),
        key_slots_s=jnp.arange(valid_bs.shape[1]),
        key_valid_bs=valid_bs,
        cache_index=cache.index,
    )
    return inputs, valid_bs
