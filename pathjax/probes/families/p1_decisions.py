"""P1, held-out decisions: which of the four options each model picks on unseen situations.

Items: balanced subsets (over the listed position of every class) of the dataset's held-out
splits (`schema.P1_SPLITS`). The primary pick (`top_<class>`) is the highest mean
log-probability per character: a summed score prefers short options whatever the policy (the
pick lm-eval's `acc_norm` makes, and tokenizer-independent). The summed pick
(`top_<class>_summed`) and probabilities from the summed, per-character and
content-free-calibrated scores stand beside it. Items of listed formats also record where each
class was listed (`slot_<class>`) and the position picked (`position_<k>`), so the report can
show the position histogram against the always-the-same-position baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pathjax.data import subsets
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs
from pathjax.probes.schema import ACTION_CLASSES, CLASS_KEYS, LISTED_FORMATS, OPTION_POSITIONS
from pathjax.train import options as options_lib

ID = "P1"
_VARIANTS = ("", "_per_char", "_calibrated")
_PICKS = ("", "_summed")
METRICS: tuple[str, ...] = (
    *(f"p_{c}{v}" for c in ACTION_CLASSES for v in _VARIANTS),
    *(f"top_{c}{p}" for c in ACTION_CLASSES for p in _PICKS),
    *(f"slot_{c}" for c in ACTION_CLASSES),
    *(f"position_{k}" for k in range(OPTION_POSITIONS)),
)
# Prompts without content, per P1 format, for the calibrated option scores.
CONTENT_FREE = {
    "choice": "Answer:",
    "lettered": "Answer:",
    "narrative": "So I",
    "third_person": "So they",
}


def select(inputs: SuiteInputs, limits: Limits) -> dict[str, Sequence[Mapping[str, Any]]]:
    return {
        split: subsets.balanced(list(rows), limits.p1_items_per_split)
        for split, rows in inputs.p1_splits.items()
    }


def score(scorer: Scorer, splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> FamilyOutput:
    out = FamilyOutput()
    for split, chosen in splits.items():
        if not chosen:
            continue
        scorer.progress(f"P1 {split}")
        prompts = [scorer.prompt(r["prompt"]) for r in chosen]
        options = [
            scorer.options(r["prompt"], r["options"], f"{split}/{i}") for i, r in enumerate(chosen)
        ]
        free_prompts = [scorer.prompt(CONTENT_FREE[r["format"]]) for r in chosen]
        summed = scorer.ev.score(prompts, options, desc=f"P1 {split}").logp_mgc
        free = scorer.ev.score(free_prompts, options, desc=f"P1 {split} (calibration)").logp_mgc
        for i, r in enumerate(chosen):
            # The format in the id: the report gives rates per format (formats are learned at
            # different speeds).
            item = f"{split}/{r['format']}/{i}"
            per_char = options_lib.per_char(summed[:, i], [r["options"]] * len(scorer.models))
            variants = {
                "": summed[:, i],
                "_per_char": per_char,
                "_calibrated": options_lib.calibrated(summed[:, i], free[:, i]),
            }
            picks = {"": np.argmax(per_char, axis=-1), "_summed": np.argmax(summed[:, i], -1)}

            def emit(key: str, metric: str, values_m, item: str = item) -> None:
                out.records.extend(scorer.records(ID, item, key, metric, values_m))

            for o, cls in enumerate(r["option_classes"]):
                key = CLASS_KEYS[cls]
                for suffix, logp_mo in variants.items():
                    emit(key, f"p_{cls}{suffix}", options_lib.renormalize(logp_mo)[:, o])
                for suffix, top_m in picks.items():
                    emit(key, f"top_{cls}{suffix}", (top_m == o) * 1.0)
                if r["format"] in LISTED_FORMATS:
                    # Where the class is listed (the same for every model), and whether the
                    # model picked that position: the position histogram.
                    emit(key, f"slot_{cls}", np.full(len(scorer.models), float(o)))
                    emit("neutral", f"position_{o}", (picks[""] == o) * 1.0)
    return out
