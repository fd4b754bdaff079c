"""Batched sampling with a KV cache: greedy, temperature, top-k, top-p; explicit PRNG keys.

Prompts are left-padded into one batch; a jitted function runs the prefill and then a
`while_loop` of one-token steps that stops when every row has produced EOS or the length is
reached. Everything after a row's EOS is `pad_id`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0 = greedy.
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}.")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}.")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p}.")


def filter_logits(logits_bv: jax.Array, top_k: int | None, top_p: float | None) -> jax.Array:
    """Sets to -inf every token outside the top-k and outside the top-p nucleus."""
    if top_k is not None:
        kth_b1 = jax.lax.top_k(logits_bv, top_k)[0][:, -1:]
        logits_bv = jnp.where(logits_bv < kth_b1, -jnp.inf, logits_bv)
    if top_p is not None:
        sorted_bv = jnp.sort(logits_bv, axis=-1)[:, ::-1]
        probs_bv = jax.nn.softmax(sorted_bv, axis=-1)
        # A token stays if the mass strictly before it is below top_p: the first always stays.
        mass_before_bv = jnp.cumsum(probs_bv, axis=-1) - probs_bv
        cutoff_b1 = jnp.min(
            jnp.where(mass_before_bv < top_p, sorted_bv, jnp.inf), axis=-1, keepdims=True
        )
        logits_bv = jnp.where(logits_bv < cutoff_b1, -jnp.inf, logits_bv)
    return logits_bv


def is_per_row(rng: jax.Array) -> bool:
    """Whether `rng` holds one key per row: `[b]` typed keys (`jax.random.key`) or `[b, 2]`
    legacy uint32 keys (`jax.random.PRNGKey`), whose single key is itself 1-D."""
    key_ndim = 0 if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else 1
    return rng.ndim == key_ndim + 1


def sample_token(logits_bv: jax.Array, rng: jax.Array, sampling: SamplingConfig) -> jax.Array:
    """One token per row; `rng` is one key for the batch or `[b]` per-row keys (typed or legacy)."""
    if sampling.temperature == 0:
        return jnp.argmax(logits_bv, axis=-1).astype(jnp.int32)
    logits_bv = filter_logits(logits_bv / sampling.temperature, sampling.top_k, sampling.top_p)
    if is_per_row(rng):
        draw = jax.vmap(lambda key, logits_v: jax.random.categorical(key, logits_v))
        return draw(rng, logits_bv).astype(jnp.int32)
    return jax.random.categorical(rng, logits_bv, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "sampling"))
def _generate(graphdef, state, prompt_bp, mask_bp, rng, row_keys_b, eos_ids, pad_id, *, sampling):
    model = nnx.merge(graphdef, state)
    batch, prompt_len = prompt_bp.shape
    cache = model.init_cache(batch, prompt_len + sampling.max_new_tokens)
    logits_bpv, cache = model(prompt_bp, mask_bp, cache=cache, last_only=True)
    out_bn = jnp.full((batch, sampling.max_new_tokens), pad_id, jnp.int32)

    def is_eos(token_b):
        return jnp.any(token_b[:, None] == eos_ids[None, :], axis=-1)

    def cond(carry):
        step, _, _, done_b, _ = carry
        return (step < sampling.max_new_tokens) & ~jnp.all(done_b)

    def body(carry):
        step, cache, logits_bv, done_b, out_bn = carry
        if row_keys_b is None:
            step_key = jax.random.fold_in(rng, step)
        else:  # Row r draws from fold_in(rng, row_keys[r]): its stream ignores its batch-mates.
            step_key = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(rng, k), step))(
                row_keys_b
            )
        token_b = sample_token(logits_bv, step_key, sampling)
        token_b = jnp.where(done_b, pad_id, token_b)
        out_bn = out_bn.at[:, step].set(token_b)
        done_b = done_b | is_eos(token_b)
        # The module is rebuilt inside the loop's trace: NNX transforms in its call (the
        # scanned layers' `nnx.scan`) refuse a module captured from an outer trace.
        step_model = nnx.merge(graphdef, state, copy=True)
        logits_b1v, cache = step_model(token_b[:, None], jnp.ones((batch, 1), bool), cache=cache)
        return step + 1, cache, logits_b1v[:, -1], done_b, out_bn

    carry = (jnp.int32(0), cache, logits_bpv[:, -1], jnp.zeros((batch,), bool), out_bn)
    # The loop's last iteration computes logits nobody samples from; peeling it would cost a
    # second compiled copy of the model.
    _, _, _, _, out_bn = jax.lax.while_loop(cond, body, carry)
    return out_bn


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, multiple: int = 8):
    """`[b, p]` ids and mask, left-padded to a multiple of `multiple` (fewer recompilations)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("Every prompt needs at least one token.")
    length = -(-max(len(p) for p in prompts) // multiple) * multiple
    ids = np.full((len(prompts), length), pad_id, np.int32)
    mask = np.zeros((len(prompts), length), bool)
    for row, prompt in enumerate(prompts):
        ids[row, length - len(prompt) :] = prompt
        mask[row, length - len(prompt) :] = True
    return ids, mask


def generate(
    model: nnx.Module,
    prompts: Sequence[Sequence[int]],
    sampling: SamplingConfig = SamplingConfig(),
    *,
    rng: jax.Array | None = None,
    eos_ids: int | Sequence[int] | None = None,
    pad_id: int = 0,
    row_keys: Sequence[int] | np.ndarray | None = None,
) -> list[list[int]]:
    """New tokens for each prompt, up to and including its EOS (if one came).

    `row_keys` (one int per prompt) gives each row its own random stream,
    `fold_in(rng, row_keys[r])`: the same key draws the same sample in any batch, which lets
    several models sample one prompt with common random numbers.
    """
    if rng is None:
        if sampling.temperature > 0:
            raise ValueError("Sampling with temperature > 0 needs an explicit rng key.")
        rng = jax.random.key(0)
    if eos_ids is None:
        eos_ids = model.config.eos_token_id
    eos = np.asarray([-1] if eos_ids is None else np.atleast_1d(eos_ids), np.int32)
    ids, mask = left_pad(prompts, pad_id)
    graphdef, state = nnx.split(model)
    if row_keys is not None:
        row_keys = np.asarray(row_keys, np.uint32)
        if row_keys.shape != (len(prompts),):
            raise ValueError(f"row_keys needs one key per prompt, got shape {row_keys.shape}.")
    out = np.asarray(
        _generate(graphdef, state, ids, mask, rng, row_keys, eos, pad_id, sampling=sampling)
    )
    results = []
    for row in out:
        hits = np.flatnonzero(np.isin(row, eos))
        results.append(row[: hits[0] + 1].tolist() if hits.size else row.tolist())
    return results


def generate_text(
    model: nnx.Module,
    tokenizer,
    prompts: Sequence[str],
    sampling: SamplingConfig = SamplingConfig(),
    *,
    rng: jax.Array | None = None,
) -> list[str]:
    """Completions (prompt excluded, special tokens dropped) for each prompt string."""
    # BOS first where the tokenizer itself puts it (Llama, Gemma; not GPT-2): Gemma without it
    # degrades into repetition.
    bos = tokenizer.bos_token_id
    prefix = [bos] if bos is not None and tokenizer("a")["input_ids"][:1] == [bos] else []
    encoded = [prefix + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tokens = generate(
        model, encoded, sampling, rng=rng, eos_ids=tokenizer.eos_token_id, pad_id=pad_id
    )
    return [tokenizer.decode(t, skip_special_tokens=True) for t in tokens]
