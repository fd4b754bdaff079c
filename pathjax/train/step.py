"""The pure train and eval steps: functions of (state, frozen base weights, batch).

Only the adapters and their optimizer state change; base weights come in as a separate,
never-differentiated argument. The loss is the mean negative log-likelihood of target tokens
(`loss_mask[t] = 1`: the prediction of token t from position t-1 counts), computed in float32.
Batches from the pipeline also name those positions (`target_positions`), and the output head
then runs there only.
Gradient accumulation scans over micro-batches and sums token-weighted gradients, so it equals
one big batch exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from pathjax import lora


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: updates applied so far.
    adapters: nnx.State  # LoRA parameters, float32.
    opt_state: Any
    rng: jax.Array  # uint32[2] raw key data (checkpoint-friendly); step n uses fold_in(rng, n).


def split_model(model: nnx.Module):
    """`(graphdef, adapters, controls, base)`: adapters first, since LoRAParam is a Param."""
    return nnx.split(model, lora.ADAPTERS, lora.LoRAControl, ...)


def next_token_logprobs(logits_blv: jax.Array, ids_bl: jax.Array) -> jax.Array:
    """`[b, l-1]` float32 log-probability of each token given the ones before it.

    logit - logsumexp: no second vocabulary-sized tensor, as a full log_softmax would make.
    """
    logits_blv = logits_blv[:, :-1].astype(jnp.float32)
    token_logit_bl = jnp.take_along_axis(logits_blv, ids_bl[:, 1:, None], axis=-1)[..., 0]
    return token_logit_bl - jax.nn.logsumexp(logits_blv, axis=-1)


def target_logprobs(logits, batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Log-probabilities of the target tokens, argmax hits, and their weights.

    With `target_positions` in the batch the logits are the head's output at those positions
    only (`[b, k, v]`); without, at every position (`[b, l, v]`, weighted by `loss_mask`).
    """
    if "target_positions" in batch:
        ids_bk = jnp.take_along_axis(batch["input_ids"], batch["target_positions"] + 1, axis=1)
        logits = logits.astype(jnp.float32)
        token_logit_bk = jnp.take_along_axis(logits, ids_bk[..., None], axis=-1)[..., 0]
        logp_bk = token_logit_bk - jax.nn.logsumexp(logits, axis=-1)
        # A hit is the target at the maximum (argmax up to ties): a max-reduce, which XLA shares
        # with logsumexp's, where argmax is a separate vocabulary-wide reduction (~100 ms a step
        # on the CPU benchmark).
        hits_bk = token_logit_bk >= jnp.max(logits, axis=-1)
        return logp_bk, hits_bk, batch["target_weights"].astype(jnp.float32)
    logp_bl = next_token_logprobs(logits, batch["input_ids"])
    hits_bl = jnp.argmax(logits[:, :-1], axis=-1) == batch["input_ids"][:, 1:]
    return logp_bl, hits_bl, batch["loss_mask"][:, 1:].astype(jnp.float32)


def target_sums(logits, batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Summed NLL over target tokens, their count, and how many argmax predicts (float32):
    what the train and eval steps accumulate, from one `target_logprobs` pass."""
    logp, hits, weights = target_logprobs(logits, batch)
    return -jnp.sum(logp * weights), jnp.sum(weights), jnp.sum(hits * weights)


def target_nll(logits, batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Summed NLL over target tokens and their count (float32)."""
    nll, tokens, _ = target_sums(logits, batch)
    return nll, tokens


def target_accuracy(logits, batch) -> tuple[jax.Array, jax.Array]:
    """Target tokens predicted exactly by argmax, and their count."""
    _, tokens, hits = target_sums(logits, batch)
    return hits, tokens


def _forward(graphdef, adapters, controls, base, batch, dropout_key=None):
    # Fresh Variables (copy=True): the controls are then set within this trace level.
    model = nnx.merge(graphdef, adapters, controls, base, copy=True)
    if dropout_key is not None:
        lora.set_controls(model, dropout_key=dropout_key)
    return model(
        batch["input_ids"],
        batch["attention_mask"],
        head_positions=batch.get("target_positions"),
    )


def _micro_batches(batch: dict[str, jax.Array], accumulation: int) -> dict[str, jax.Array]:
    def split(x):
        if x.shape[0] % accumulation:
            raise ValueError(
                f"The per-step batch of {x.shape[0]} rows does not split into "
                f"train.grad_accumulation={accumulation} micro-batches."
            )
        return x.reshape(accumulation, x.shape[0] // accumulation, *x.shape[1:])

    return jax.tree.map(split, batch)


def train_step(
    state: TrainState,
    base: nnx.State,
    batch: dict[str, jax.Array],
    *,
    graphdef,
    controls: nnx.State,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    accumulation: int = 1,
) -> tuple[TrainState, dict[str, jax.Array]]:
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_sum(adapters, micro, key):
        logits = _forward(graphdef, adapters, controls, base, micro, dropout_key=key)
        nll, tokens, hits = target_sums(logits, micro)
        return nll, (tokens, hits)

    grad_fn = jax.value_and_grad(loss_sum, has_aux=True)

    def accumulate(carry, inputs):
        index, micro = inputs
        (nll, (tokens, hits)), grads = grad_fn(
            state.adapters, micro, jax.random.fold_in(step_key, index)
        )
        total_nll, total_tokens, total_hits, total_grads = carry
        total_grads = jax.tree.map(jnp.add, total_grads, grads)
        return (total_nll + nll, total_tokens + tokens, total_hits + hits, total_grads), None

    zeros = jax.tree.map(jnp.zeros_like, state.adapters)
    micro = _micro_batches(batch, accumulation)
    carry = (jnp.float32(0), jnp.float32(0), jnp.float32(0), zeros)
    (nll, tokens, hits, grads), _ = jax.lax.scan(
        accumulate, carry, (jnp.arange(accumulation), micro)
    )
    tokens = jnp.maximum(tokens, 1.0)
    grads = jax.tree.map(lambda g: g / tokens, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.adapters)
    adapters = optax.apply_updates(state.adapters, updates)
    metrics = {
        "loss": nll / tokens,
        "token_accuracy": hits / tokens,
        "grad_norm": optax.global_norm(grads),
        "update_norm": optax.global_norm(updates),
        "learning_rate": schedule(state.step),
        "target_tokens": tokens,
        # Unpadded input tokens: what throughput and MFU count (padding is not useful work).
        "real_tokens": jnp.sum(batch["attention_mask"]).astype(jnp.float32),
    }
    new_state = TrainState(state.step + 1, adapters, opt_state, state.rng)
    return new_state, metrics


def eval_step(adapters, base, batch, *, graphdef, controls) -> dict[str, jax.Array]:
    """Sums (not means) so that the caller can add batches of different sizes exactly."""
    logits = _forward(graphdef, adapters, controls, base, batch)
    nll, tokens, hits = target_sums(logits, batch)
    return {"nll_sum": nll, "target_tokens": tokens, "token_hits": hits}
