"""P4, open stems: how much next-word probability each lexicon gets after an open stem.

Items: `suite.open_stems`, scored against every word of the suite's lexicons (boundary-
corrected word probabilities from the evaluator). Metrics: the negative share of
negative + positive mass (primary), threat minus sad mass, each lexicon's mass, the same
shares over the words the training data never used (`_unseen`), and the stem's next-token
divergence from B.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from pathjax.probes import item_types, scoring
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs, take

ID = "P4"
_SHARES = ("neg_share", "threat_minus_sad")
METRICS: tuple[str, ...] = (
    *_SHARES,
    *(f"{m}_unseen" for m in _SHARES),
    "mass_negative",
    "mass_positive",
    "mass_sad",
    "mass_threat",
    "jsd_bits",
    "kl_model_base",
)


@dataclasses.dataclass(frozen=True)
class Items:
    stems: Sequence[item_types.OpenStem]
    lexicons: Mapping[str, item_types.Lexicon]
    seen_words: frozenset[str]


def select(inputs: SuiteInputs, limits: Limits) -> Items:
    stems = take(inputs.suite.open_stems, limits.p4)
    return Items(stems, inputs.suite.lexicons, inputs.seen_words)


def score(scorer: Scorer, items: Items) -> FamilyOutput:
    out = FamilyOutput()
    stems, lexicons = items.stems, items.lexicons
    if not stems:
        return out
    scorer.progress(ID)
    # Sorted by token count: the evaluator pads each chunk of words to its longest only.
    words = sorted({w for lex in lexicons.values() for w in lex.words})
    encoded = {w: scoring.encode_continuation(scorer.tok, " " + w, "lexicon word") for w in words}
    vocab = sorted(words, key=lambda w: (len(encoded[w]), w))
    word_ids = [encoded[w] for w in vocab]
    scoring.check_tokenization(
        scorer.tok, [(f"{s.id} + lexicon", s.stem, [" " + w for w in vocab]) for s in stems[:1]]
    )
    prompts = [scorer.prompt(s.stem) for s in stems]
    scores = scorer.ev.score(prompts, [word_ids] * len(stems), words=True, desc=ID)
    prob_mgw = np.exp(scores.word_logp_mgc)
    column = {w: j for j, w in enumerate(vocab)}

    def mass(name: str, unseen_only: bool = False) -> np.ndarray:
        chosen = [w for w in lexicons[name].words if not (unseen_only and w in items.seen_words)]
        return prob_mgw[:, :, [column[w] for w in chosen]].sum(-1)  # [M, G]

    for unseen in (False, True):
        neg, pos = mass("NEGATIVE", unseen), mass("POSITIVE", unseen)
        sad, threat = mass("SAD", unseen), mass("THREAT", unseen)
        suffix = "_unseen" if unseen else ""
        metrics = {
            f"neg_share{suffix}": neg / np.maximum(neg + pos, 1e-30),
            f"threat_minus_sad{suffix}": threat - sad,
        }
        if not unseen:
            metrics.update(mass_negative=neg, mass_positive=pos, mass_sad=sad, mass_threat=threat)
        for metric, values_mg in metrics.items():
            for g, s in enumerate(stems):
                out.records += scorer.records(ID, s.id, s.key, metric, values_mg[:, g])
    for g, s in enumerate(stems):
        for metric in ("jsd_bits", "kl_model_base"):
            out.records += scorer.records(
                ID, s.id, s.key, metric, scores.prompt_divergence[metric][:, g]
            )
    return out
