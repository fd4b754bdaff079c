"""Sampling takes new-style typed keys and legacy uint32 keys alike, one or one per row."""

import jax
import jax.numpy as jnp
import numpy as np

from pathjax import generate
from pathjax.models import presets, registry

SAMPLING = generate.SamplingConfig(max_new_tokens=6, temperature=1.0)


def _logits(batch=3, vocab=40):
    return jnp.asarray(np.random.RandomState(0).normal(0, 2, (batch, vocab)), jnp.float32)


def test_one_key_for_the_batch_typed_or_legacy():
    logits = _logits()
    typed = generate.sample_token(logits, jax.random.key(7), SAMPLING)
    # A legacy key is 1-D ([2] uint32): it is one key, not two per-row keys.
    legacy = generate.sample_token(logits, jax.random.PRNGKey(7), SAMPLING)
    np.testing.assert_array_equal(typed, legacy)
    np.testing.assert_array_equal(typed, jax.random.categorical(jax.random.key(7), logits / 1.0))


def test_per_row_keys_typed_or_legacy():
    logits = _logits()
    seeds = jnp.arange(3)
    typed = generate.sample_token(logits, jax.vmap(jax.random.key)(seeds), SAMPLING)
    legacy = generate.sample_token(logits, jax.vmap(jax.random.PRNGKey)(seeds), SAMPLING)
    np.testing.assert_array_equal(typed, legacy)
    each = [jax.random.categorical(jax.random.key(int(s)), logits[i]) for i, s in enumerate(seeds)]
    np.testing.assert_array_equal(typed, np.asarray(each))


def test_is_per_row():
    assert not generate.is_per_row(jax.random.key(0))
    assert not generate.is_per_row(jax.random.PRNGKey(0))
    assert generate.is_per_row(jax.random.split(jax.random.key(0), 2))
    assert generate.is_per_row(jax.random.split(jax.random.PRNGKey(0), 2))


def test_generate_samples_the_same_with_a_legacy_key():
    model = registry.init_model(presets.preset_config("tiny-llama"), seed=0)
    prompts = [[1, 5, 9], [1, 7], [1, 3, 3, 4]]
    for row_keys in (None, [11, 12, 13]):
        typed = generate.generate(
            model, prompts, SAMPLING, rng=jax.random.key(3), eos_ids=[], row_keys=row_keys
        )
        legacy = generate.generate(
            model, prompts, SAMPLING, rng=jax.random.PRNGKey(3), eos_ids=[], row_keys=row_keys
        )
        assert typed == legacy and all(len(t) == SAMPLING.max_new_tokens for t in typed)
