"""Target-choice accuracy: which of a record's four options the model scores highest.

Each option is scored by the summed log-probability of its tokens after the prompt (prompt and
option tokenized separately, as in training), so the measure does not depend on sampling.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from pathjax.data import pipeline
from pathjax.train import options, step


@functools.partial(jax.jit, static_argnames=("graphdef",))
def continuation_logprobs(graphdef, state, ids_bl, attention_bl, positions_bk, weights_bk):
    """Log-probability of each continuation token, `[b, k]` (0 on padding).

    `positions_bk` are the positions that predict the continuation's tokens (the head runs
    there only) and `weights_bk` is 1 on real entries.
    """
    model = nnx.merge(graphdef, *state)
    batch = {"input_ids": ids_bl, "target_positions": positions_bk, "target_weights": weights_bk}
    logits_bkv = model(ids_bl, attention_bl, head_positions=positions_bk)
    token_logp_bk, _, weights_bk = step.target_logprobs(logits_bkv, batch)
    return token_logp_bk * weights_bk


@dataclasses.dataclass(frozen=True)
class OptionScores:
    """Per record and option: the summed log-probability of the whole option, its token count,
    and, for choice-format records, of its label alone (" C."; NaN elsewhere)."""

    summed_no: np.ndarray
    tokens_no: np.ndarray
    label_no: np.ndarray
    chars_no: np.ndarray | None = None  # Characters of each option, boundary space excluded.


# A choice-format option starts with its label: " C. I stay home." The label is the decision;
# the rest copies the line from the prompt, which a shallow model does poorly.
_LABEL = re.compile(r"^ [A-Z]\.")


def _label_tokens(tokenizer, option_text: str, option_ids: Sequence[int]) -> int:
    """How many leading tokens of the option spell its label (0: no label, or BPE merged it)."""
    match = _LABEL.match(option_text)
    if not match:
        return 0
    label = _encode(tokenizer, [match.group(0)])[0]
    return len(label) if list(option_ids[: len(label)]) == label else 0


# Rows up to this many tokens (a narrative item and its option) share a short compiled shape.
_SHORT_WIDTH = 64


def _score_chunk(graphdef, state, chunk, width, head_width, batch_size, place) -> np.ndarray:
    """Continuation log-probabilities `[len(chunk), head_width]` of (prompt, option) rows,
    padded to `batch_size` rows of `width` tokens."""
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
    return np.asarray(out)[: len(chunk)]


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
) -> OptionScores:
    """Scores every record's options after its prompt (one row per option)."""
    prompts = _encode(tokenizer, [r["prompt"] for r in records])
    rows, label_lengths = [], []
    for prompt, record in zip(prompts, records, strict=True):
        for text, option in zip(
            record["options"], _encode(tokenizer, record["options"]), strict=True
        ):
            rows.append((list(prefix) + prompt, option))
            is_choice = record.get("format") == "choice"
            label_lengths.append(_label_tokens(tokenizer, text, option) if is_choice else 0)
    longest = max(len(p) + len(o) for p, o in rows)
    # Two row widths at most (few compilations): short rows (narrative items) are not padded
    # to the longest (choice items list four options and are 2-3x as long).
    widths = sorted({min(_SHORT_WIDTH, -(-longest // 16) * 16), -(-longest // 16) * 16})
    head_width = pipeline.target_bucket(max(len(o) for _, o in rows))
    counts = np.asarray([len(o) for _, o in rows], np.float32)
    logp_rk = np.zeros((len(rows), head_width), np.float32)
    # Each row goes to the narrowest width that holds it.
    width_r = [next(w for w in widths if len(p) + len(o) <= w) for p, o in rows]
    for width in widths:
        fits = [i for i, w in enumerate(width_r) if w == width]
        for start in range(0, len(fits), batch_size):
            chunk = fits[start : start + batch_size]
            logp_rk[chunk] = _score_chunk(
                graphdef, state, [rows[i] for i in chunk], width, head_width, batch_size, place
            )
    label_r = np.asarray(label_lengths)
    in_label_rk = np.arange(logp_rk.shape[1])[None, :] < label_r[:, None]
    label_scores = np.where(label_r > 0, (logp_rk * in_label_rk).sum(axis=1), np.nan)
    shape = (len(records), len(records[0]["options"]))
    chars = options.option_chars([r["options"] for r in records])
    return OptionScores(
        logp_rk.sum(axis=1).reshape(shape),
        counts.reshape(shape),
        label_scores.reshape(shape),
        chars.astype(np.float32),
    )


def per_char_picks(scores: OptionScores) -> np.ndarray:
    """Each record's picked option: P1's primary pick, the highest mean log-probability per
    character (a summed score prefers short options)."""
    if scores.chars_no is None:
        raise ValueError("Per-character picks need the options' character counts (chars_no).")
    return np.argmax(scores.summed_no / scores.chars_no, axis=1)


def choice_metrics(
    scores: OptionScores, target_index_n: np.ndarray, formats: Sequence[str] = ()
) -> dict[str, float]:
    """Top-choice accuracy (summed and per-token log-probability), the mean target
    probability renormalized over the options, accuracy per format, and the label accuracy
    of choice-format records.

    The per-token variant removes the length preference of a summed score, which dominates
    while a model is still far from its training distribution. The label accuracy asks which
    letter the model answers with: a model can rate the target option's wording likely (the
    summed score) without having learned to name its letter.
    """
    scores_no, tokens_no = scores.summed_no, scores.tokens_no
    probs_no = options.renormalize(scores_no)
    rows = np.arange(len(target_index_n))
    per_token_no = scores_no / np.maximum(tokens_no, 1)
    hits_n = np.argmax(scores_no, axis=1) == target_index_n
    metrics = {
        "choice_accuracy": float(np.mean(hits_n)),
        "choice_accuracy_per_token": float(
            np.mean(np.argmax(per_token_no, axis=1) == target_index_n)
        ),
        "target_probability": float(np.mean(probs_no[rows, target_index_n])),
    }
    formats_n = np.asarray(formats)
    for name in sorted(set(formats)):
        metrics[f"choice_accuracy_{name}"] = float(np.mean(hits_n[formats_n == name]))
    if scores.chars_no is not None:
        # P1's primary pick: the highest mean log-probability per character.
        char_hits_n = per_char_picks(scores) == target_index_n
        metrics["choice_accuracy_per_char"] = float(np.mean(char_hits_n))
        for name in sorted(set(formats)):
            metrics[f"choice_accuracy_per_char_{name}"] = float(
                np.mean(char_hits_n[formats_n == name])
            )
    labelled_n = ~np.isnan(scores.label_no).any(axis=1)
    if labelled_n.any():
        label_hits = np.argmax(scores.label_no[labelled_n], axis=1) == target_index_n[labelled_n]
        metrics["label_accuracy"] = float(np.mean(label_hits))
    return metrics
