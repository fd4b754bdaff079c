"""P3, minimal pairs: whole-sentence log-odds of the negative sentence of a pair.

Items: `suite.minimal_pairs` (two sentences a few words apart). Each sentence is scored from
the start of text (BOS, or EOS where there is none), so every word counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from pathjax.probes import item_types, scoring
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs, take

ID = "P3"
METRICS: tuple[str, ...] = ("logodds_negative",)


def select(inputs: SuiteInputs, limits: Limits) -> Sequence[item_types.MinimalPair]:
    return take(inputs.suite.minimal_pairs, limits.p3)


def score(scorer: Scorer, items: Sequence[item_types.MinimalPair]) -> FamilyOutput:
    out = FamilyOutput()
    if not items:
        return out
    scorer.progress(ID)
    for it in items:
        for text in (it.negative, it.benign):
            if not scoring.encode(scorer.tok, text):
                raise scoring.TokenizationError(f"{it.id}: {text!r} has no tokens.")
    prompts = [scorer.start for _ in items]
    options = [
        [scoring.encode(scorer.tok, it.negative), scoring.encode(scorer.tok, it.benign)]
        for it in items
    ]
    logp = scorer.ev.score(prompts, options, desc=ID).logp_mgc
    for i, it in enumerate(items):
        out.records += scorer.records(
            ID, it.id, it.key, "logodds_negative", logp[:, i, 0] - logp[:, i, 1]
        )
    return out
