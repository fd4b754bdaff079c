"""Target-choice accuracy: which of a record's four options the model scores highest.

Each option is scored by the summed log-probability of its tokens after the prompt (prompt and
option tokenized separately, as in training), so the measure does not depend on sampling.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from pathjax.data import pipeline
from pathjax.train import step


@functools.partial(jax.jit, static_argnames=("graphdef",))
def continuation_logprobs(graphdef, state, ids_bl, attention_bl, positions_bk, weights_bk):
    """Summed log-probability of each row's continuation: `[b]`.

    `positions_bk` are the positions that predict the continuation's tokens (the head runs
    there only) and `weights_bk` is 1 on real entries.
    """
    model = nnx.merge(graphdef, *state)
    batch = {"input_ids": ids_bl, "target_positions": positions_bk, "target_weights": weights_bk}
    logits_bkv = model(ids_bl, attention_bl, head_positions=positions_bk)
    token_logp_bk, _, weights_bk = step.target_logprobs(logits_bkv, batch)
    return jnp.sum(token_logp_bk * weights_bk, axis=-1)


def _encode(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def option_scores(
    graphdef,
    state,
    records: Sequence[dict[str, Any]],
    tokenizer,
    *,
    batch_size: int = 8,
    prefix: Sequence[int] = (),
    place: Callable[[dict[str, np.ndarray]], dict[str, jax.Array]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`[n, options]` summed log-probabilities of every record's options, and token counts."""
    prompts = _encode(tokenizer, [r["prompt"] for r in records])
    rows = []
    for prompt, record in zip(prompts, records, strict=True):
        for option in _encode(tokenizer, record["options"]):
            rows.append((list(prefix) + prompt, option))
    width = max(len(p) + len(o) for p, o in rows)
    width = -(-width // 16) * 16  # Few distinct shapes: few compilations.
    head_width = pipeline.target_bucket(max(len(o) for _, o in rows))
    scores = []
    counts = np.asarray([len(o) for _, o in rows], np.float32)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        ids = np.zeros((batch_size, width), np.int32)
        attention = np.zeros((batch_size, width), bool)
        positions = np.zeros((batch_size, head_width), np.int32)
        weights = np.zeros((batch_size, head_width), np.float32)
        for i, (prompt, option) in enumerate(chunk):
            n = len(prompt) + len(option)
            ids[i, :n] = prompt + option
            attention[i, :n] = True
            positions[i, : len(option)] = np.arange(len(prompt) - 1, n - 1)
            weights[i, : len(option)] = 1
        arrays = {"ids": ids, "attention": attention, "positions": positions, "weights": weights}
        if place is not None:  # Split the rows over the mesh, as training batches are.
            arrays = place(arrays)
        out = continuation_logprobs(
            graphdef, state, *(arrays[k] for k in ("ids", "attention", "positions", "weights"))
        )
        if not out.is_fully_addressable:  # Rows split across hosts: gather them everywhere.
            out = multihost_utils.process_allgather(out, tiled=True)
        scores.append(np.asarray(out)[: len(chunk)])
    n_options = len(records[0]["options"])
    shape = (len(records), n_options)
    return np.concatenate(scores).reshape(shape), counts.reshape(shape)


def choice_metrics(
    scores_no: np.ndarray, tokens_no: np.ndarray, target_index_n: np.ndarray
) -> dict[str, float]:
    """Top-choice accuracy (summed and per-token log-probability) and the mean target
    probability renormalized over the options.

    The per-token variant removes the length preference of a summed score, which dominates
    while a model is still far from its training distribution.
    """
    probs_no = np.exp(scores_no - scores_no.max(axis=1, keepdims=True))
    probs_no /= probs_no.sum(axis=1, keepdims=True)
    rows = np.arange(len(target_index_n))
    per_token_no = scores_no / np.maximum(tokens_no, 1)
    return {
        "choice_accuracy": float(np.mean(np.argmax(scores_no, axis=1) == target_index_n)),
        "choice_accuracy_per_token": float(
            np.mean(np.argmax(per_token_no, axis=1) == target_index_n)
        ),
        "target_probability": float(np.mean(probs_no[rows, target_index_n])),
    }
