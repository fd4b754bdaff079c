"""P7, generic drift: how far each model's next-token distributions move on neutral text.

Items: `suite.neutral_texts`, teacher-forced. Metrics: the mean per-position Jensen-Shannon
divergence to B (primary) and KL(model || B), from the evaluator's drift pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from pathjax.probes import item_types
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs, take

ID = "P7"
METRICS: tuple[str, ...] = ("jsd_bits", "kl_model_base")


def select(inputs: SuiteInputs, limits: Limits) -> Sequence[item_types.NeutralText]:
    return take(inputs.suite.neutral_texts, limits.p7)


def score(scorer: Scorer, texts: Sequence[item_types.NeutralText]) -> FamilyOutput:
    out = FamilyOutput()
    if not texts:
        return out
    scorer.progress(ID)
    div = scorer.ev.drift([scorer.prompt(t.text) for t in texts], desc=ID)
    for i, t in enumerate(texts):
        for metric, value_mn in div.items():
            out.records += scorer.records(ID, t.id, t.key, metric, value_mn[:, i])
    return out
