"""String-level scoring: from token log-probabilities to option, word and Likert scores.

docs/PROBES.md, "Scoring strings": a continuation's log-probability is the sum of its tokens'
log-probabilities given the prompt, and the boundary space belongs to the continuation (prompts
never end in a space), so a continuation tokenizes the same alone and after its prompt. That is
checked here, per tokenizer, for every option and lexicon word (`check_tokenization`).

A word's probability at a position is P(its tokens) times P(the next token starts a new word):
without that factor " sad" would also count " saddle" (" sad" + "dle"). `boundary_mask` marks
the tokens that start a new word (a leading space, a newline, punctuation, a special token
such as EOS); the evaluator sums the next-token probability over them after the word's last
token.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np

from pathjax.data.words import words
from pathjax.train.options import renormalize

# Markers that byte-level BPE (GPT-2: "Ġ" space, "Ċ" newline, "ĉ" tab) and SentencePiece ("▁")
# put in a token's string for leading whitespace.
_WHITESPACE_MARKERS = ("Ġ", "Ċ", "ĉ", "▁")
_REPLACEMENT = "\ufffd"  # A token that decodes to part of a UTF-8 character.


class TokenizationError(ValueError):
    """Probe text that the tokenizer cannot score as specified; the message lists every case."""


def encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_continuation(tokenizer: Any, text: str, what: str = "continuation") -> list[int]:
    """Token ids of a continuation, which must start with its boundary space."""
    if not text.startswith(" ") or text.startswith("  "):
        raise TokenizationError(f"The {what} {text!r} must start with exactly one space.")
    ids = encode(tokenizer, text)
    if not ids:
        raise TokenizationError(f"The {what} {text!r} has no tokens.")
    return ids


def split_problems(
    tokenizer: Any, prompt: str, continuations: Sequence[str], where: str
) -> list[str]:
    """Where tokenizing prompt + continuation differs from tokenizing them apart."""
    problems = []
    prompt_ids = encode(tokenizer, prompt) if prompt else []
    for text in continuations:
        joint = encode(tokenizer, prompt + text)
        apart = prompt_ids + encode(tokenizer, text)
        if joint != apart:
            problems.append(
                f"{where}: {text!r} tokenizes differently after its prompt "
                f"({len(apart)} tokens apart, {len(joint)} together)"
            )
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None:
        for text in (prompt, *continuations):
            if unk in encode(tokenizer, text):
                problems.append(f"{where}: {text!r} has a token the vocabulary lacks (UNK)")
    return problems


def check_tokenization(tokenizer: Any, cases: Sequence[tuple[str, str, Sequence[str]]]) -> None:
    """`cases`: `(where, prompt, continuations)`; raises one error listing every problem.

    The scores sum the continuation's own tokens after the prompt's; a continuation whose
    tokens merge with the prompt's would be scored on tokens the model never sees together.
    """
    problems = [
        p for where, prompt, conts in cases for p in split_problems(tokenizer, prompt, conts, where)
    ]
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise TokenizationError(
            f"{len(problems)} probe strings do not tokenize as the scoring assumes with "
            f"{type(tokenizer).__name__} (is this the model's own tokenizer?):\n  {shown}{more}"
        )


def _starts_word(token: str | None, text: str) -> bool:
    if token is not None and token.startswith(_WHITESPACE_MARKERS):
        return True
    if not text:
        return True  # Special tokens (EOS, BOS, padding) end a word.
    first = text[0]
    if first == _REPLACEMENT:
        return False  # Part of a multi-byte character: it continues the word.
    return first.isspace() or not first.isalnum()


def boundary_mask(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """`[vocab_size]` bool: tokens that start a new word (or end the text).

    Ids past the tokenizer's vocabulary (padding rows of the embedding) are False: no text
    maps to them.
    """
    n = min(len(tokenizer), vocab_size)
    ids = list(range(n))
    tokens = tokenizer.convert_ids_to_tokens(ids)
    texts = tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)
    mask = np.zeros(vocab_size, bool)
    mask[:n] = [_starts_word(t, s) for t, s in zip(tokens, texts, strict=True)]
    special = [i for i in getattr(tokenizer, "all_special_ids", []) if i < vocab_size]
    mask[special] = True
    return mask


# ---------------------------------------------------------------------------------------------
# Option scores.


def likert_expected_score(
    logp_no: np.ndarray, scores_o: Sequence[float], reverse: bool | np.ndarray
) -> np.ndarray:
    """Expected item score under the renormalized option probabilities, `[n]`.

    Reverse-keyed items are scored `min + max - expected`, so that a higher score always means
    more of the keyed trait.
    """
    scores_o = np.asarray(scores_o, np.float64)
    expected_n = renormalize(logp_no) @ scores_o
    flipped_n = scores_o.min() + scores_o.max() - expected_n
    return np.where(np.asarray(reverse, bool), flipped_n, expected_n)


# ---------------------------------------------------------------------------------------------
# Words in free text (P6).


def lexicon_rate(text_words: Sequence[str], lexicon: set[str] | frozenset[str]) -> float:
    """Lexicon words per 100 words (0 for an empty text)."""
    if not text_words:
        return 0.0
    return 100.0 * sum(w in lexicon for w in text_words) / len(text_words)


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct word n-grams over all n-grams of the texts (1.0 = no repetition)."""
    grams: collections.Counter = collections.Counter()
    for text in texts:
        w = words(text)
        grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0
