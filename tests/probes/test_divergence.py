"""Divergence kernels against independent numpy/scipy computations in float64."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy

from pathjax.probes import divergence as dv

VOCAB = 37  # prime: no chunk width below it divides it
LN2 = math.log(2.0)


def _distributions(seed: int, shape=(3, 4), vocab=VOCAB):
    """float64 distributions [*shape, vocab], with exact zeros, disjoint and identical rows."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(vocab, 0.3), size=shape)
    q = rng.dirichlet(np.full(vocab, 0.3), size=shape)
    p[0, 0, :6] = 0.0  # zeros in p only
    q[0, 1, 3:12] = 0.0  # zeros in q only
    p[1, 0, ::2] = 0.0  # zeros in both, overlapping
    q[1, 0, ::3] = 0.0
    p[1, 1, : vocab // 2] = 0.0  # disjoint supports: JSD is exactly 1 bit
    q[1, 1, vocab // 2 :] = 0.0
    q[2, 0] = p[2, 0]  # identical rows
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    return p, q


def _log32(p):
    with np.errstate(divide="ignore"):
        return jnp.asarray(np.log(p), dtype=jnp.float32)


def _kl_ref(p, q):
    return scipy_entropy(p, q, axis=-1)  # scipy's entropy with qk is KL(p || q) in nats


@pytest.fixture(scope="module")
def pq():
    p, q = _distributions(0)
    return p, q, _log32(p), _log32(q)


def test_js_matches_scipy_squared_in_bits_and_nats(pq):
    p, q, logp, logq = pq
    ref_nats = jensenshannon(p, q, axis=-1) ** 2  # scipy returns the square root, in nats
    bits = np.asarray(dv.js_divergence(logp, logq))
    nats = np.asarray(dv.js_divergence(logp, logq, base=math.e))
    assert bits.dtype == np.float32 and bits.shape == p.shape[:-1]
    np.testing.assert_allclose(bits, ref_nats / LN2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nats, ref_nats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bits * LN2, nats, rtol=1e-6)
    assert not np.any(np.isnan(bits))


def test_js_bounds_symmetry_and_identity(pq):
    p, _, logp, logq = pq
    js = np.asarray(dv.js_divergence(logp, logq))
    assert np.all(js >= 0.0) and np.all(js <= 1.0)
    assert js[1, 1] == pytest.approx(1.0, abs=1e-6)  # disjoint supports
    assert js[2, 0] == pytest.approx(0.0, abs=1e-7)  # identical rows
    np.testing.assert_allclose(js, np.asarray(dv.js_divergence(logq, logp)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(dv.js_divergence(logp, logp)), 0.0, atol=1e-7)


@pytest.mark.parametrize("eps", [1e-4, 1e-3, 0.1, 0.3])
def test_small_divergences_keep_their_precision(eps):
    # Two-point distributions, |log q - log p| on both sides of the series/closed-form switch.
    p = np.array([0.5, 0.5])
    q = np.array([0.5 + eps, 0.5 - eps])
    ref = jensenshannon(p, q) ** 2 / LN2
    assert float(dv.js_divergence(_log32(p), _log32(q))) == pytest.approx(ref, rel=1e-4)
    many_p = np.full(VOCAB, 1.0 / VOCAB)
    many_q = many_p * np.exp(eps * np.sin(np.arange(VOCAB)))
    many_q /= many_q.sum()
    ref = jensenshannon(many_p, many_q) ** 2 / LN2
    got = float(dv.js_divergence(_log32(many_p), _log32(many_q), vocab_chunk=8))
    assert got == pytest.approx(ref, rel=1e-3)


def test_kl_tv_entropy_match_references(pq):
    p, q, logp, logq = pq
    kl = np.asarray(dv.kl_divergence(logp, logq, base=math.e))
    ref = _kl_ref(p, q)
    finite = np.isfinite(ref)
    assert not finite.all(), "the fixture must contain a row with infinite KL"
    np.testing.assert_allclose(kl[finite], ref[finite], rtol=1e-5, atol=1e-6)
    assert np.all(np.isposinf(kl[~finite]))
    np.testing.assert_allclose(
        np.asarray(dv.kl_divergence(logp, logq)[finite]), ref[finite] / LN2, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(dv.total_variation(logp, logq)), 0.5 * np.abs(p - q).sum(-1), atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(dv.entropy(logp, base=math.e)), scipy_entropy(p, axis=-1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(dv.entropy(logq)), scipy_entropy(q, base=2, axis=-1), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(dv.kl_divergence(logp, logp)), 0.0, atol=1e-6)


def test_top_k_overlap_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, VOCAB)).astype(np.float32)
    y = x + rng.normal(scale=0.7, size=x.shape).astype(np.float32)
    y[0] = x[0]
    y[1] = -x[1]
    # (k, chunk): unchunked, a tail wider than k, a tail narrower than k.
    for k, chunk in [(1, None), (5, 10), (10, 16), (10, None)]:
        ref = [
            len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k
            for a, b in zip(x, y, strict=True)
        ]
        got = np.asarray(dv.top_k_overlap(jnp.asarray(x), jnp.asarray(y), k, chunk))
        np.testing.assert_allclose(got, ref, err_msg=f"k={k} chunk={chunk}")
        assert ref[0] == 1.0 and ref[1] < 1.0


@pytest.mark.parametrize("chunk", [1, 8, 36])
def test_chunked_equals_unchunked(pq, chunk):
    _, _, logp, logq = pq
    # The single-metric kernels share the fold with `divergences`; one of them stands for all.
    for fn, args in [(dv.js_divergence, (logp, logq)), (dv.logsumexp, (logp,))]:
        np.testing.assert_allclose(
            np.asarray(fn(*args, vocab_chunk=chunk)),
            np.asarray(fn(*args, vocab_chunk=None)),
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"{fn.__name__} chunk={chunk}",
        )
    k = min(3, chunk)
    full = dv.divergences(logp, logq, k=k, vocab_chunk=None)
    chunked = dv.divergences(logp, logq, k=k, vocab_chunk=chunk)
    assert set(full) == set(dv.METRIC_NAMES)
    for name in dv.METRIC_NAMES:
        np.testing.assert_allclose(chunked[name], full[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_divergences_match_the_single_kernels(pq):
    _, _, logp, logq = pq
    out = dv.divergences(logp, logq, k=4, vocab_chunk=8)
    singles = {
        "jsd": dv.js_divergence(logp, logq),
        "kl_pq": dv.kl_divergence(logp, logq),
        "kl_qp": dv.kl_divergence(logq, logp),
        "tv": dv.total_variation(logp, logq),
        "entropy_p": dv.entropy(logp),
        "entropy_q": dv.entropy(logq),
        "top_k_overlap": dv.top_k_overlap(logp, logq, 4),
    }
    for name, ref in singles.items():
        np.testing.assert_allclose(out[name], ref, rtol=1e-5, atol=1e-6, err_msg=name)
    assert "top_k_overlap" not in dv.divergences(logp, logq, k=None)


def test_from_logits_equals_log_softmax_then_divergences():
    rng = np.random.default_rng(2)
    x = (3 * rng.normal(size=(2, 3, VOCAB))).astype(np.float32)
    y = (3 * rng.normal(size=(2, 3, VOCAB))).astype(np.float32)
    x[0, 0, :5] = -np.inf  # masked tokens: exact zeros after softmax
    y[0, 0, 2:9] = -np.inf
    ref = dv.divergences(dv.log_probs(x), dv.log_probs(y), k=5, vocab_chunk=None)
    for chunk in (None, 8):
        got = dv.divergences_from_logits(x, y, k=5, vocab_chunk=chunk)
        for name in dv.METRIC_NAMES:
            assert not np.any(np.isnan(got[name])), name
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    p = np.exp(x - x.max(-1, keepdims=True)).astype(np.float64)
    q = np.exp(y - y.max(-1, keepdims=True)).astype(np.float64)
    p /= p.sum(-1, keepdims=True)
    q /= q.sum(-1, keepdims=True)
    np.testing.assert_allclose(
        ref["jsd"], jensenshannon(p, q, axis=-1) ** 2 / LN2, rtol=1e-5, atol=1e-6
    )


def test_bf16_logits_give_fp32_results():
    rng = np.random.default_rng(3)
    x32 = jnp.asarray(4 * rng.normal(size=(4, VOCAB)), jnp.float32)
    x = x32.astype(jnp.bfloat16)
    y = (x32 + 0.5).astype(jnp.bfloat16) * jnp.bfloat16(0.9)
    logp = dv.log_probs(x)
    assert logp.dtype == jnp.float32
    # The same bf16 values computed in fp32, not bf16 arithmetic (which is ~1e-2 off).
    exact = jax_log_softmax_f64(np.asarray(x, np.float64))
    np.testing.assert_allclose(logp, exact, atol=1e-5)
    out = dv.divergences_from_logits(x, y, k=3)
    ref = dv.divergences_from_logits(x.astype(jnp.float32), y.astype(jnp.float32), k=3)
    for name in dv.METRIC_NAMES:
        assert out[name].dtype == jnp.float32, name
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert dv.js_divergence(logp.astype(jnp.bfloat16), logp.astype(jnp.bfloat16)).dtype == (
        jnp.float32
    )


def jax_log_softmax_f64(x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_bad_arguments_raise():
    a = jnp.zeros((2, VOCAB))
    with pytest.raises(ValueError, match="same shape"):
        dv.divergences(a, jnp.zeros((2, VOCAB + 1)))
    with pytest.raises(ValueError, match="vocab_chunk"):
        dv.top_k_overlap(a, a, k=10, vocab_chunk=4)
    with pytest.raises(ValueError, match="k <= vocab"):
        dv.top_k_overlap(a, a, k=VOCAB + 1)
    with pytest.raises(ValueError, match="positive"):
        dv.js_divergence(a, a, vocab_chunk=0)


def test_q_broadcast_over_leading_axes_equals_a_tiled_q():
    """One base distribution against several models (the evaluator's drift and prompt JSD)."""
    rng = np.random.default_rng(3)
    p = jnp.asarray(rng.normal(size=(3, 4, VOCAB)).astype(np.float32))
    q = jnp.asarray(rng.normal(size=(1, 4, VOCAB)).astype(np.float32))
    for chunk in (None, 8):
        got = dv.divergences_from_logits(p, q, k=5, vocab_chunk=chunk)
        tiled = dv.divergences_from_logits(p, jnp.tile(q, (3, 1, 1)), k=5, vocab_chunk=chunk)
        for name, value in tiled.items():
            assert got[name].shape == (3, 4), name
            np.testing.assert_allclose(np.asarray(got[name]), np.asarray(value), atol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        dv.divergences(q, p)  # p must be the larger: the results have p's shape.
