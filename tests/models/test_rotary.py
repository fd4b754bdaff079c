"""Rotary embedding: the shared tables against transformers' formula, and computed once.

The numerics are also covered end to end by the HF parity tests (every rope type); these tests
pin the two properties that a refactor could lose without changing any logits.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pathjax.models import layers, llama
from tests.models import hf_reference as ref


def _rotate_half_reference(x, positions, inv_freq):
    """transformers' `apply_rotary_pos_emb`: x * cos + rotate_half(x) * sin, in float64."""
    x = np.asarray(x, np.float64)
    angles = np.asarray(positions, np.float64)[..., None] * np.asarray(inv_freq, np.float64)
    emb = np.concatenate([angles, angles], axis=-1)[:, :, None, :]
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * np.cos(emb) + rotated * np.sin(emb)


@pytest.mark.parametrize("rope_type", ["default", "llama3"])
def test_rotation_matches_rotate_half(rope_type):
    config = layers.RopeConfig(theta=10000.0, rope_type=rope_type, factor=8.0)
    inv_freq = config.inverse_frequencies(16)
    x = jax.random.normal(jax.random.key(0), (2, 7, 3, 16), jnp.float32)
    positions = jnp.array([[0, 1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 2, 3, 40]])
    ours = layers.apply_rope(x, layers.rotary_tables(positions, inv_freq))
    expected = _rotate_half_reference(x, positions, inv_freq)
    np.testing.assert_allclose(np.asarray(ours), expected, atol=2e-5)


def test_tables_are_computed_once_per_forward():
    """XLA fuses an unmaterialized cos/sin into every rotation and recomputes it per head and
    per element (10-20x the rotation's own cost on the CPU): the optimized program of a
    three-layer forward must evaluate cos once, not once per layer and per q/k."""
    cfg = llama.Config.from_hf(ref.llama_config(num_hidden_layers=3).to_dict())
    model = llama.Model(cfg, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    def forward(state, ids):
        return nnx.merge(graphdef, state)(ids)

    ids = jnp.zeros((2, 5), jnp.int32)
    hlo = jax.jit(forward).lower(state, ids).compile().as_text()
    assert hlo.count(" cosine(") == 1, hlo.count(" cosine(")
