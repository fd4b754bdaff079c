"""Attention backends: `xla` equals the `cpu` kernels; `auto` picks and says why; a backend the
platform lacks is refused with the fix."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pathjax.models import attention_backends, from_config, layers, presets, registry


def _qkv(b, t, s, h, k, f, seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    q = jax.random.normal(keys[0], (b, t, h, f), jnp.float32)
    kk = jax.random.normal(keys[1], (b, s, k, f), jnp.float32)
    v = jax.random.normal(keys[2], (b, s, k, f), jnp.float32)
    return q, kk, v


def _both(q, k, v, inputs, window):
    kw = dict(scale=q.shape[-1] ** -0.5)
    cpu = attention_backends.attend("cpu", q, k, v, inputs, window, **kw)
    xla = attention_backends.attend("xla", q, k, v, inputs, window, **kw)
    return np.asarray(cpu), np.asarray(xla)


LEFT_AND_RIGHT_PADDED = np.array([[0, 0, 0, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]])


@pytest.mark.parametrize(
    "heads, kv_heads, window, mask",
    [
        (4, 4, None, None),  # Causal, multi-head.
        (4, 2, None, None),  # Grouped-query.
        (4, 1, None, LEFT_AND_RIGHT_PADDED),  # Multi-query, padded on either side.
        (6, 2, 3, None),  # Sliding window.
        (6, 3, 4, LEFT_AND_RIGHT_PADDED),  # All of it.
    ],
)
def test_xla_equals_cpu(heads, kv_heads, window, mask):
    q, k, v = _qkv(2, 10, 10, heads, kv_heads, 16)
    inputs, _ = layers.attention_inputs(mask, None, 10, 2, None)
    cpu, xla = _both(q, k, v, inputs, window)
    real = slice(None) if mask is None else mask.astype(bool)
    np.testing.assert_allclose(xla[real], cpu[real], atol=1e-6, rtol=1e-6)
    if window is not None:  # The window matters here: without it the output differs.
        full, _ = _both(q, k, v, inputs, None)
        assert np.abs(full - cpu).max() > 1e-3


def test_xla_equals_cpu_when_decoding_from_a_cache():
    q, k, v = _qkv(2, 1, 9, 4, 2, 16)
    cache = layers.Cache.empty(
        batch=2, slots=9, num_layers=1, kv_heads=2, head_dim=16, dtype=k.dtype
    )
    cache = layers.Cache(cache.layers, jnp.ones((2, 9), bool).at[0, :2].set(False), jnp.int32(8))
    inputs, _ = layers.attention_inputs(None, None, 1, 2, cache)
    cpu, xla = _both(q, k, v, inputs, 4)
    np.testing.assert_allclose(xla, cpu, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("preset", ["tiny-llama", "tiny-gemma3"])
def test_models_give_the_same_logits_with_xla(preset):
    config = presets.preset_config(preset)
    ids = np.random.RandomState(0).randint(0, 128, (2, 12)).astype(np.int32)
    mask = np.ones((2, 12), bool)
    mask[1, :5] = False
    logits = {}
    for backend in ("cpu", "xla"):
        model = registry.init_model(registry.with_attention(config, backend))
        assert model.layers[0].self_attn.backend == backend
        logits[backend] = np.asarray(model(ids, mask))[mask]
    np.testing.assert_allclose(logits["xla"], logits["cpu"], atol=1e-5, rtol=1e-5)


def test_auto_on_cpu_picks_the_cpu_kernels_and_says_so():
    backend, reason = attention_backends.choose(
        "auto", head_dim=64, dtype=jnp.float32, softcap=None
    )
    assert jax.default_backend() == "cpu"
    assert (backend, reason) == ("cpu", "auto on platform 'cpu'")
    model = registry.init_model(presets.preset_config("tiny-llama"))
    assert model.layers[0].self_attn.backend == "cpu"


@pytest.mark.parametrize(
    "dtype, head_dim, softcap, expected, why",
    [
        (jnp.bfloat16, 64, None, "cudnn", "auto on platform 'gpu'"),
        (jnp.float32, 64, None, "xla", "bfloat16 or float16, not float32"),
        (jnp.bfloat16, 12, None, "xla", "multiple of 8"),
        (jnp.bfloat16, 64, 50.0, "cpu", "soft-capping"),
    ],
)
def test_auto_on_a_gpu_falls_back_with_the_reason(dtype, head_dim, softcap, expected, why):
    backend, reason = attention_backends.choose(
        "auto", head_dim=head_dim, dtype=dtype, softcap=softcap, platform="gpu"
    )
    assert backend == expected
    assert why in reason


def test_cudnn_on_cpu_is_refused_with_the_fix():
    config = registry.with_attention(presets.preset_config("tiny-llama"), "cudnn")
    with pytest.raises(
        ValueError, match=r"'cudnn' cannot run here: cuDNN needs an NVIDIA GPU.*'auto'"
    ):
        registry.init_model(config)


def test_explicit_backend_that_cannot_run_the_layer_is_refused():
    with pytest.raises(ValueError, match="'xla' cannot run here: .*soft-capping"):
        attention_backends.choose("xla", head_dim=64, dtype=jnp.float32, softcap=30.0)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="'flash' is not one of auto, xla, cudnn, cpu"):
        registry.with_attention(presets.preset_config("tiny-llama"), "flash")


def test_the_config_field_reaches_the_model():
    from pathjax.configs import base

    model_config = base.get_base_config().model
    assert model_config.attention == "auto"
    model_config = ml_collections.ConfigDict(
        dict(model_config.to_dict(), preset="tiny-gemma3", attention="xla")
    )
    model, _ = from_config.model_from_config(model_config)
    assert {layer.self_attn.backend for layer in model.layers} == {"xla"}
