"""P2, ambiguous situations: does a model read an ambiguous stem the negative way?

Items: `suite.ambiguous` (a stem, a negative and a benign resolution matched in length).
Metrics: log P(negative) - log P(benign) after the stem (summed, the primary, and per
character), and the Jensen-Shannon divergence to B of the next-token distribution at the
stem's end.
"""

from __future__ import annotations

from collections.abc import Sequence

from pathjax.probes import item_types
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs, take
from pathjax.train import options as options_lib

ID = "P2"
METRICS: tuple[str, ...] = ("logodds_negative", "logodds_negative_per_char", "jsd_bits")


def select(inputs: SuiteInputs, limits: Limits) -> Sequence[item_types.AmbiguousItem]:
    return take(inputs.suite.ambiguous, limits.p2)


def score(scorer: Scorer, items: Sequence[item_types.AmbiguousItem]) -> FamilyOutput:
    out = FamilyOutput()
    if not items:
        return out
    scorer.progress(ID)
    prompts = [scorer.prompt(it.stem) for it in items]
    options = [scorer.options(it.stem, [it.negative, it.benign], it.id) for it in items]
    scores = scorer.ev.score(prompts, options, desc=ID)
    for i, it in enumerate(items):
        logp_m2 = scores.logp_mgc[:, i, :2]
        per_char_m2 = options_lib.per_char(logp_m2, [[it.negative, it.benign]] * len(scorer.models))
        values = {
            "logodds_negative": logp_m2[:, 0] - logp_m2[:, 1],
            "logodds_negative_per_char": per_char_m2[:, 0] - per_char_m2[:, 1],
            "jsd_bits": scores.prompt_divergence["jsd_bits"][:, i],
        }
        for metric, values_m in values.items():
            out.records += scorer.records(ID, it.id, it.key, metric, values_m)
    return out
