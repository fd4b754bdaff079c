"""The contract every probe family module keeps, and what they share.

A family is one module of this package, named in `schema.FAMILY_MODULES`. It declares

- `ID`: its family id ("P2"), the key of its records;
- `METRICS`: every metric name its records can carry (a test holds it to that);
- `select(inputs, limits)`: its items, drawn from the probe suite (or P1's held-out splits);
- `score(scorer, items)`: a `FamilyOutput` with one record per model, item and metric.

`score` talks to the models only through `Scorer`, which turns text into the evaluator's
token requests and its results into records. Adding a family is its module plus its line in
the schema (docs/PROBES.md, "Adding a family").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pathjax.data import subsets
from pathjax.probes import item_types, scoring
from pathjax.probes.evaluator import Evaluator, ScoredModel
from pathjax.probes.records import Record


@dataclasses.dataclass(frozen=True)
class Limits:
    """Items per family (0 = all) and P6's sampling; small values make a CPU smoke run."""

    p1_items_per_split: int = 0
    p2: int = 0
    p3: int = 0
    p4: int = 0
    p5: int = 0
    p6: int = 0
    p7: int = 0
    p6_samples: int = 0  # 0: the suite's `samples_per_prompt`.
    p6_max_new_tokens: int = 0  # 0: the suite's `max_new_tokens`.


@dataclasses.dataclass(frozen=True)
class SuiteInputs:
    """Everything a family may draw its items from."""

    suite: item_types.ProbeSuite
    # P1's held-out decisions per split: dataset records (prompt, options, option_classes).
    p1_splits: Mapping[str, Sequence[Mapping[str, Any]]] = dataclasses.field(default_factory=dict)
    # Words of the training data: P4 reports the lexicon mass of the unseen words apart.
    seen_words: frozenset[str] = frozenset()


@dataclasses.dataclass
class FamilyOutput:
    records: list[Record] = dataclasses.field(default_factory=list)
    generations: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def take(items: Sequence[Any], limit: int) -> Sequence[Any]:
    """At most `limit` items (0 = all), drawn round-robin over the items' keys in file order:
    the probe files list depression-keyed items first, and a head slice would hold no other."""
    if limit <= 0 or limit >= len(items):
        return items
    by_key: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        by_key.setdefault(getattr(item, "key", None), []).append(i)
    chosen = subsets.round_robin(list(by_key.values()), limit)
    return [items[i] for i in sorted(chosen)]


def records(
    models: Sequence[ScoredModel], family: str, item_id: str, key: str, metric: str, values_m
) -> Iterable[Record]:
    """One record per model with a value; a NaN is a missing record (records.py)."""
    for model, value in zip(models, values_m, strict=True):
        if np.isnan(value):
            continue
        yield Record(
            model=model.name,
            condition=model.condition,
            seed=model.seed,
            step=model.step,
            multiplier=0.0 if model.is_base else float(model.multiplier),
            family=family,
            item_id=item_id,
            key=key,
            metric=metric,
            score=float(value),
        )


class Scorer:
    """Text in, evaluator requests out: what every family's `score` works through."""

    def __init__(self, evaluator: Evaluator, progress: Callable[[str], Any] | None = None):
        self.ev = evaluator
        self.tok = evaluator.tokenizer
        # Whole sentences are scored after BOS, or after EOS where there is no BOS (GPT-2's
        # <|endoftext|> is both), so that the first word is scored too.
        self.start = evaluator.bos or [self.tok.eos_token_id]
        self.progress = progress or (lambda name: None)

    @property
    def models(self) -> tuple[ScoredModel, ...]:
        return self.ev.models

    def prompt(self, text: str) -> list[int]:
        return self.ev.bos + scoring.encode(self.tok, text)

    def options(self, prompt: str, options: Sequence[str], where: str) -> list[list[int]]:
        """Each option's tokens as a continuation of `prompt` (checked to split cleanly)."""
        scoring.check_tokenization(self.tok, [(where, prompt, options)])
        return [scoring.encode_continuation(self.tok, o, f"option of {where}") for o in options]

    def records(self, family: str, item_id: str, key: str, metric: str, values_m) -> list[Record]:
        return list(records(self.models, family, item_id, key, metric, values_m))
