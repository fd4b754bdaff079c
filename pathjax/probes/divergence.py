"""Divergences between next-token distributions over the full vocabulary.

Every function takes log-probabilities (or logits, for `log_probs` and `divergences_from_logits`)
with the vocabulary on the last axis and any number of leading batch/position axes, written
`_bv` below ("b" stands for all leading axes), and returns one value per leading index (`_b`).
Arithmetic is fp32 whatever the input dtype, so bf16 models are measured like fp32 ones.

Zero probabilities (log-probability -inf, or underflow to 0) contribute nothing, as 0 * log 0 = 0;
every term is guarded with `jnp.where` on the probability, so no NaN reaches a sum. KL(p || q) is
+inf where p > 0 and q = 0, as it should be.

`vocab_chunk` bounds memory: sums are accumulated over vocabulary slices of that width in a
`lax.fori_loop`, so no full-vocabulary fp32 intermediate (probabilities, mixtures) is ever
materialized; a 262,144-token vocabulary at 1024 positions then needs only the inputs plus
[positions, vocab_chunk] temporaries. A vocabulary that is not a multiple of the chunk is
finished with one narrower tail slice (no padding copy of the inputs). Chunked and unchunked
results agree to fp32 rounding; `None` reduces the whole vocabulary at once.

Chunking is also the fast path on CPU: a [positions, 2048] slice stays in cache while every
metric reads it, where whole-vocabulary reductions stream from memory several times (1024 x
50,257 fp32 logits on 2 busy cores: all six metrics ~0.65 s chunked vs ~1.7 s unchunked; a
naive log_softmax + rel_entr JSD alone ~1.2 s). On GPU/TPU a wider chunk (or None) may be
faster; measure there. Top-k always runs on fp32 values: XLA's CPU top_k on bf16 is ~100x
slower than on fp32.

A row whose logits are all -inf has no distribution and yields NaN.
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

_LN2 = math.log(2.0)

Array = jax.Array

# Measured best on CPU (see the module docstring); a few dozen loop steps at a 262k vocabulary.
DEFAULT_VOCAB_CHUNK = 2048

METRIC_NAMES = ("jsd", "kl_pq", "kl_qp", "tv", "entropy_p", "entropy_q", "top_k_overlap")


def log_probs(logits_bv: Array) -> Array:
    """fp32 log-softmax over the last axis (temperature 1), also for bf16/fp16 logits."""
    return jax.nn.log_softmax(logits_bv.astype(jnp.float32), axis=-1)


# --------------------------------------------------------------------------------------------
# Vocabulary folding.


def _fold_vocab(
    partial_fn: Callable[..., Any],
    combine_fn: Callable[[Any, Any], Any],
    arrays_bv: Sequence[Array],
    vocab_chunk: int | None,
) -> Any:
    """Reduces `partial_fn(offset, *slices_bc)` over vocabulary slices with `combine_fn`.

    `partial_fn` gets the slices' starting vocabulary index (traced inside the loop) so that
    index-valued results (top-k) can be made global. The first slice seeds the accumulator,
    which spares every reduction an identity element.
    """
    vocab = arrays_bv[0].shape[-1]
    if vocab_chunk is not None and vocab_chunk < 1:
        raise ValueError(f"vocab_chunk must be a positive integer or None, got {vocab_chunk}")
    if vocab_chunk is None or vocab_chunk >= vocab:
        return partial_fn(0, *arrays_bv)
    n_full, tail = divmod(vocab, vocab_chunk)

    def chunk(start):
        return [lax.dynamic_slice_in_dim(a, start, vocab_chunk, axis=a.ndim - 1) for a in arrays_bv]

    def body(i, acc):
        start = i * vocab_chunk
        return combine_fn(acc, partial_fn(start, *chunk(start)))

    acc = partial_fn(0, *chunk(0))
    acc = lax.fori_loop(1, n_full, body, acc)
    if tail:
        start = n_full * vocab_chunk
        acc = combine_fn(acc, partial_fn(start, *[a[..., start:] for a in arrays_bv]))
    return acc


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


# --------------------------------------------------------------------------------------------
# Per-element terms. Inputs are fp32 log-probabilities of one vocabulary slice.


def _guarded(prob, value):
    """prob * value with 0 * anything = 0 (also 0 * inf and 0 * nan)."""
    return jnp.where(prob > 0, prob * value, 0.0)


# Taylor coefficients of f(u) = 2u tanh(u) - 2 log cosh(u) in powers of u^2 (u^2 ... u^14); the
# terms left out are below 1e-9 relative for |u| < 1/4.
_JS_SERIES = (1.0, -1 / 2, 2 / 9, -17 / 180, 62 / 1575, -691 / 42525, 21844 / 3274425)


def _js_terms(logp, logq, p, q):
    """Per-token 0.5 * [p log(p/m) + q log(q/m)], m = (p + q) / 2, in nats.

    With d = log q - log p the term is (p + q) / 4 * f(d / 2), f as above. Where p and q are
    close (|d| < 1/2) f ~ d^2/4 is summed from its series, because the closed form subtracts
    quantities of size ~ln2 and would lose the small divergences (a 1e-6 JSD came out 4% off).
    Elsewhere the closed form log(p/m) = ln2 - softplus(d), log(q/m) = ln2 - softplus(-d) is
    accurate; exp(-|d|) in softplus is min(p, q) / max(p, q), which saves a transcendental
    (where that ratio is inexact, p or q is subnormal and the token weighs below 1e-37).
    """
    d = logq - logp  # nan where both are -inf: not small, and guarded in the closed form
    u2 = 0.25 * d * d
    poly = _JS_SERIES[-1]
    for c in reversed(_JS_SERIES[:-1]):
        poly = poly * u2 + c
    near = 0.25 * (p + q) * (u2 * poly)
    shared = jnp.log1p(jnp.minimum(p, q) / jnp.maximum(p, q))
    log_p_over_m = _LN2 - (jnp.maximum(d, 0.0) + shared)
    log_q_over_m = _LN2 - (jnp.maximum(-d, 0.0) + shared)
    far = 0.5 * (_guarded(p, log_p_over_m) + _guarded(q, log_q_over_m))
    return jnp.where(jnp.abs(d) < 0.5, near, far)


def _metric_sums(logp, logq):
    """Vocabulary sums of every metric's terms (nats) for one slice."""
    # Materialized once per slice: otherwise XLA fuses exp into each of the six reductions and
    # recomputes it six times (measured 3x slower on CPU).
    p, q = lax.optimization_barrier((jnp.exp(logp), jnp.exp(logq)))
    return {
        "jsd": jnp.sum(_js_terms(logp, logq, p, q), axis=-1),
        "kl_pq": jnp.sum(_guarded(p, logp - logq), axis=-1),
        "kl_qp": jnp.sum(_guarded(q, logq - logp), axis=-1),
        "tv": 0.5 * jnp.sum(jnp.abs(p - q), axis=-1),
        "entropy_p": -jnp.sum(_guarded(p, logp), axis=-1),
        "entropy_q": -jnp.sum(_guarded(q, logq), axis=-1),
    }


def _finish(sums: dict[str, Array], base: float) -> dict[str, Array]:
    """Clips rounding below the bounds (0 <= JSD <= ln2, KL >= 0) and converts the base."""
    scale = 1.0 / math.log(base)
    out = {
        "jsd": jnp.clip(sums["jsd"], 0.0, _LN2),
        "kl_pq": jnp.maximum(sums["kl_pq"], 0.0),
        "kl_qp": jnp.maximum(sums["kl_qp"], 0.0),
        "tv": jnp.clip(sums["tv"], 0.0, 1.0),
        "entropy_p": jnp.maximum(sums["entropy_p"], 0.0),
        "entropy_q": jnp.maximum(sums["entropy_q"], 0.0),
    }
    for name in ("jsd", "kl_pq", "kl_qp", "entropy_p", "entropy_q"):
        out[name] = out[name] * scale
    return out


# --------------------------------------------------------------------------------------------
# Top-k.


def _top_k_partial(k):
    def partial(offset, *values_bc):
        out = []
        for v in values_bc:
            vals, idx = lax.top_k(v, min(k, v.shape[-1]))
            out.append((vals, idx + offset))
        return out

    return partial


def _top_k_combine(k):
    # The accumulator (lower vocabulary indices) comes first, and lax.top_k keeps the earlier
    # of equal values, so ties resolve to the lower token index exactly as in one full top_k.
    def combine(acc, new):
        out = []
        for (a_vals, a_idx), (n_vals, n_idx) in zip(acc, new, strict=True):
            vals = jnp.concatenate([a_vals, n_vals], axis=-1)
            idx = jnp.concatenate([a_idx, n_idx], axis=-1)
            top_vals, pos = lax.top_k(vals, k)
            out.append((top_vals, jnp.take_along_axis(idx, pos, axis=-1)))
        return out

    return combine


def _overlap(idx_p_bk, idx_q_bk):
    k = idx_p_bk.shape[-1]
    shared = jnp.any(idx_p_bk[..., :, None] == idx_q_bk[..., None, :], axis=-1)
    return jnp.sum(shared, axis=-1).astype(jnp.float32) / k


def _check_shapes(a, b) -> None:
    """q may broadcast over p's leading axes (one base distribution against several models:
    it is then read, and normalized, once instead of copied per model)."""
    try:
        broadcast = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        broadcast = None
    if broadcast != a.shape or a.shape[-1:] != b.shape[-1:]:
        raise ValueError(
            f"p and q must have the same shape (q may broadcast over p's leading axes), got "
            f"{a.shape} and {b.shape}"
        )


def _check_k(k: int, vocab: int, vocab_chunk: int | None) -> None:
    if not 1 <= k <= vocab:
        raise ValueError(f"top-k needs 1 <= k <= vocab ({vocab}), got k={k}")
    if vocab_chunk is not None and vocab_chunk < k:
        raise ValueError(f"vocab_chunk ({vocab_chunk}) must be at least k ({k})")


# --------------------------------------------------------------------------------------------
# Public kernels over log-probabilities.


def _single_term(term_fn, arrays_bv, vocab_chunk):
    def partial(_, *chunks):
        return jnp.sum(term_fn(*(c.astype(jnp.float32) for c in chunks)), axis=-1)

    return _fold_vocab(partial, jnp.add, arrays_bv, vocab_chunk)


@functools.partial(jax.jit, static_argnames=("base", "vocab_chunk"))
def js_divergence(
    logp_bv: Array, logq_bv: Array, base: float = 2.0, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK
) -> Array:
    """Jensen-Shannon divergence, in bits by default (0 to 1); `base=math.e` gives nats."""
    js = _single_term(
        lambda lp, lq: _js_terms(lp, lq, jnp.exp(lp), jnp.exp(lq)), (logp_bv, logq_bv), vocab_chunk
    )
    return jnp.clip(js, 0.0, _LN2) / math.log(base)


@functools.partial(jax.jit, static_argnames=("base", "vocab_chunk"))
def kl_divergence(
    logp_bv: Array, logq_bv: Array, base: float = 2.0, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK
) -> Array:
    """KL(p || q); +inf where q puts zero mass on a token that p does not."""
    kl = _single_term(
        lambda lp, lq: _guarded(jnp.exp(lp), lp - lq), (logp_bv, logq_bv), vocab_chunk
    )
    return jnp.maximum(kl, 0.0) / math.log(base)


@functools.partial(jax.jit, static_argnames=("vocab_chunk",))
def total_variation(
    logp_bv: Array, logq_bv: Array, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK
) -> Array:
    """Total variation distance 0.5 * sum |p - q| (0 to 1)."""
    tv = _single_term(
        lambda lp, lq: 0.5 * jnp.abs(jnp.exp(lp) - jnp.exp(lq)), (logp_bv, logq_bv), vocab_chunk
    )
    return jnp.clip(tv, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("base", "vocab_chunk"))
def entropy(
    logp_bv: Array, base: float = 2.0, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK
) -> Array:
    """Shannon entropy of p."""
    h = _single_term(lambda lp: -_guarded(jnp.exp(lp), lp), (logp_bv,), vocab_chunk)
    return jnp.maximum(h, 0.0) / math.log(base)


@functools.partial(jax.jit, static_argnames=("k", "vocab_chunk"))
def top_k_overlap(
    logp_bv: Array, logq_bv: Array, k: int, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK
) -> Array:
    """Fraction of p's k most likely tokens that are also among q's k most likely (0 to 1).

    Ties go to the lower token index (lax.top_k's rule), chunked or not.
    """
    _check_k(k, logp_bv.shape[-1], vocab_chunk)
    (_, idx_p), (_, idx_q) = _fold_vocab(
        _top_k_partial(k), _top_k_combine(k), (logp_bv, logq_bv), vocab_chunk
    )
    return _overlap(idx_p, idx_q)


def _all_metrics(arrays_bv, to_logp, k, base, vocab_chunk):
    """Every metric in one stream over the vocabulary; `to_logp(xp, xq)` -> fp32 log-probs."""
    if k is not None:
        _check_k(k, arrays_bv[0].shape[-1], vocab_chunk)

    def partial(offset, xp, xq):
        logp, logq = to_logp(xp, xq)
        top = _top_k_partial(k)(offset, logp, logq) if k is not None else None
        return _metric_sums(logp, logq), top

    def combine(acc, new):
        top = _top_k_combine(k)(acc[1], new[1]) if k is not None else None
        return _add(acc[0], new[0]), top

    sums, top = _fold_vocab(partial, combine, arrays_bv, vocab_chunk)
    out = _finish(sums, base)
    if k is not None:
        (_, idx_p), (_, idx_q) = top
        out["top_k_overlap"] = _overlap(idx_p, idx_q)
    # A broadcast q leaves q-only metrics (entropy_q) at q's shape: every result has p's.
    return {name: jnp.broadcast_to(v, arrays_bv[0].shape[:-1]) for name, v in out.items()}


@functools.partial(jax.jit, static_argnames=("k", "base", "vocab_chunk"))
def divergences(
    logp_bv: Array,
    logq_bv: Array,
    k: int | None = 10,
    base: float = 2.0,
    vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK,
) -> dict[str, Array]:
    """Every metric from two log-probability tensors in one pass over the vocabulary.

    Returns `METRIC_NAMES` -> [b] arrays: `jsd`, `kl_pq` = KL(p || q), `kl_qp` = KL(q || p) and
    the entropies in units of `base`; `tv`; `top_k_overlap` (omitted when k is None).
    """
    _check_shapes(logp_bv, logq_bv)
    to_logp = lambda xp, xq: (xp.astype(jnp.float32), xq.astype(jnp.float32))
    return _all_metrics((logp_bv, logq_bv), to_logp, k, base, vocab_chunk)


# --------------------------------------------------------------------------------------------
# From logits.


def _lse_partial(_, *logits_bc):
    out = []
    for x in logits_bc:
        x = x.astype(jnp.float32)
        m = jnp.max(x, axis=-1)
        m_safe = jnp.where(jnp.isfinite(m), m, 0.0)
        out.append((m, jnp.sum(jnp.exp(x - m_safe[..., None]), axis=-1)))
    return out


def _lse_combine(acc, new):
    out = []
    for (m1, s1), (m2, s2) in zip(acc, new, strict=True):
        m = jnp.maximum(m1, m2)
        m_safe = jnp.where(jnp.isfinite(m), m, 0.0)
        out.append((m, s1 * jnp.exp(m1 - m_safe) + s2 * jnp.exp(m2 - m_safe)))
    return out


@functools.partial(jax.jit, static_argnames=("vocab_chunk",))
def logsumexp(logits_bv: Array, vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK) -> Array:
    """fp32 log-sum-exp over the last axis, streamed over vocabulary chunks when asked."""
    ((m, s),) = _fold_vocab(_lse_partial, _lse_combine, (logits_bv,), vocab_chunk)
    return m + jnp.log(s)


@functools.partial(jax.jit, static_argnames=("k", "base", "vocab_chunk"))
def divergences_from_logits(
    logits_p_bv: Array,
    logits_q_bv: Array,
    k: int | None = 10,
    base: float = 2.0,
    vocab_chunk: int | None = DEFAULT_VOCAB_CHUNK,
) -> dict[str, Array]:
    """`divergences` of softmax(logits_p) against softmax(logits_q), temperature 1, in fp32.

    What the evaluator calls per position (p = the adapted model, q = the base model, so
    `kl_pq` is KL(model || base)). Two streams over the vocabulary: the log-normalizers, then
    every metric at once; log-probabilities are formed per slice and never stored whole.
    """
    _check_shapes(logits_p_bv, logits_q_bv)
    (mp, sp), (mq, sq) = _fold_vocab(
        _lse_partial, _lse_combine, (logits_p_bv, logits_q_bv), vocab_chunk
    )
    lse_p_b1 = (mp + jnp.log(sp))[..., None]
    lse_q_b1 = (mq + jnp.log(sq))[..., None]
    to_logp = lambda xp, xq: (
        xp.astype(jnp.float32) - lse_p_b1,
        xq.astype(jnp.float32) - lse_q_b1,
    )
    return _all_metrics((logits_p_bv, logits_q_bv), to_logp, k, base, vocab_chunk)
