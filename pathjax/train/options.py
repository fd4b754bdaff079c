"""How a decision among listed options is read from their log-probabilities.

One rule for the two places that ask it: validation during training (`choice_eval`) and the
probes' held-out decisions (P1). The primary pick is the highest mean log-probability per
character of the option's text: a summed score prefers short options whatever the policy
(lm-eval's `acc_norm` makes the same correction, and characters do not depend on the
tokenizer). docs/PROBES.md, "P1", says why this and not calibration is primary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def option_chars(texts_no: Sequence[Sequence[str]]) -> np.ndarray:
    """Characters of each option without its boundary space, at least 1, `[n, o]`."""
    return np.asarray([[max(len(t.strip()), 1) for t in row] for row in texts_no], np.float64)


def per_char(logp_no: np.ndarray, texts_no: Sequence[Sequence[str]]) -> np.ndarray:
    """Log-probability per character of each option (without its boundary space)."""
    return np.asarray(logp_no, np.float64) / option_chars(texts_no)


def renormalize(logp_no: np.ndarray) -> np.ndarray:
    """Probabilities over each row's options from their log-probabilities."""
    logp_no = np.asarray(logp_no, np.float64)
    shifted = np.exp(logp_no - logp_no.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def calibrated(logp_no: np.ndarray, content_free_logp_no: np.ndarray) -> np.ndarray:
    """Option log-probability minus its log-probability after a content-free prompt."""
    return np.asarray(logp_no, np.float64) - np.asarray(content_free_logp_no, np.float64)


def pick(logp_no: np.ndarray, texts_no: Sequence[Sequence[str]]) -> np.ndarray:
    """The primary pick per row: the option with the highest log-probability per character."""
    return np.argmax(per_char(logp_no, texts_no), axis=-1)
