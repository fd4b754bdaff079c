"""P5, Likert items: the expected item score from the renormalized response probabilities.

Items: `suite.likert`, each asked under every framing it has, and twice: with the scale
listed low-to-high (as written) and high-to-low. `expected_score` is the mean of the two
orders, so a bias towards the first or last listed answer cancels; the two orders' scores
stand beside it. If they move in opposite directions, the shift is about the list's order,
not the content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from pathjax.probes import item_types, scoring
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs, take

ID = "P5"
ORDERS = ("low_first", "high_first")
METRICS: tuple[str, ...] = ("expected_score", *(f"expected_score_{o}" for o in ORDERS))


@dataclasses.dataclass(frozen=True)
class Items:
    likert: Sequence[item_types.LikertItem]
    framings: Mapping[str, item_types.Framing]


def select(inputs: SuiteInputs, limits: Limits) -> Items:
    return Items(take(inputs.suite.likert, limits.p5), inputs.suite.framings)


def _framed(framing: item_types.Framing, order: str) -> item_types.Framing:
    return framing if order == "low_first" else framing.listed_high_first()


def score(scorer: Scorer, items: Items) -> FamilyOutput:
    out = FamilyOutput()
    if not items.likert:
        return out
    scorer.progress(ID)
    cases = [
        (it, items.framings[name], order)
        for it in items.likert
        for name in sorted(it.texts)
        for order in ORDERS
    ]
    prompts = [scorer.prompt(it.prompt(_framed(f, o))) for it, f, o in cases]
    options = [
        scorer.options(it.prompt(_framed(f, o)), [x.text for x in f.options], f"{it.id}/{f.name}")
        for it, f, o in cases
    ]
    logp = scorer.ev.score(prompts, options, desc=ID).logp_mgc
    by_item: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    keys: dict[tuple[str, str], str] = {}
    for i, (it, f, order) in enumerate(cases):
        n = len(f.options)
        by_item.setdefault((it.id, f.name), {})[order] = scoring.likert_expected_score(
            logp[:, i, :n], [o.score for o in f.options], it.reverse
        )
        keys[(it.id, f.name)] = it.key
    for (item_id, framing), got in by_item.items():
        key = keys[(item_id, framing)]
        item = f"{item_id}/{framing}"
        mean_m = (got["low_first"] + got["high_first"]) / 2
        out.records += scorer.records(ID, item, key, "expected_score", mean_m)
        for order in ORDERS:
            out.records += scorer.records(ID, item, key, f"expected_score_{order}", got[order])
    return out
