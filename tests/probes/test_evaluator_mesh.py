"""The evaluator on a mesh of the 8 test devices scores what it scores on one device: weights
sharded like training's, batch rows split over `data` and `fsdp`."""

import jax
import numpy as np
import pytest
from flax import nnx

from pathjax import sharding as sharding_lib
from pathjax.probes import evaluator
from tests.probes.test_evaluator import _adapter, _base, _Tokenizer, random_inputs

# Multi-device equality: the second lane of `make test-all`.
pytestmark = pytest.mark.slow

MODELS = [
    evaluator.ScoredModel("base"),
    evaluator.ScoredModel("a0", "depression", multiplier=1.0, adapter=0),
    evaluator.ScoredModel("a1", "paranoia", multiplier=0.5, adapter=1),
]


def _evaluator(mesh=None) -> evaluator.Evaluator:
    model = _base()
    if mesh is not None:
        graphdef, state = nnx.split(model)
        state = jax.device_put(state, sharding_lib.state_shardings(state, mesh))
        model = nnx.merge(graphdef, state)
    adapters = [_adapter(1, rank=4, alpha=8.0), _adapter(2, rank=2, alpha=2.0)]
    return evaluator.Evaluator(
        model,
        _Tokenizer(),
        adapters,
        MODELS,
        add_bos=True,
        max_logits=2**16,
        vocab_chunk=32,
        mesh=mesh,
    )


@pytest.fixture(scope="module")
def one_device():
    prompts, conts, seqs = random_inputs((7, 12, 4, 9, 20))
    ev = _evaluator()
    return ev.score(prompts, conts, words=True), ev.drift(seqs)


@pytest.mark.parametrize("shape", [(2, 2, 2), (1, 8, 1)], ids=["2x2x2", "1x8x1"])
def test_a_mesh_scores_like_one_device(one_device, shape):
    assert jax.device_count() == 8
    mesh = sharding_lib.make_mesh(shape)
    ev = _evaluator(mesh)
    embedding = next(x for x in jax.tree.leaves(ev.state) if x.ndim == 2)
    assert len(embedding.sharding.device_set) == 8  # The base really is spread out.
    prompts, conts, seqs = random_inputs((7, 12, 4, 9, 20))
    got, drift = ev.score(prompts, conts, words=True), ev.drift(seqs)
    want, want_drift = one_device
    np.testing.assert_allclose(got.logp_mgc, want.logp_mgc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.word_logp_mgc, want.word_logp_mgc, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got.tokens_gc, want.tokens_gc)
    for name, values in want.prompt_divergence.items():
        np.testing.assert_allclose(got.prompt_divergence[name], values, atol=1e-6)
    for name, values in want_drift.items():
        np.testing.assert_allclose(drift[name], values, rtol=1e-5, atol=1e-6)
