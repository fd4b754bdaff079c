"""Probe records indexed for the report: by family and metric, by model run, by item key.

The statistics functions scan whatever list of records they are given; `RecordIndex` hands them
the right slice (one family and metric, optionally one split, key or framing) and remembers
what the records hold (models, runs, seeds, conditions, keyed items), so that every section of
the report asks the same index instead of rescanning the records.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from pathjax.probes.records import Record
from pathjax.probes.report.formatting import model_order
from pathjax.probes.schema import BASE_MODEL, PRIMARY_METRIC

# (step, multiplier) of an adapter's final checkpoint at full strength, and of the base model:
# the run every section compares unless it is about dose-response.
FINAL_RUN, BASE_RUN = (None, 1.0), (None, 0.0)


def split_of(item_id: str) -> str:
    """The split in an item id `split/...` (P1); "all" for ids without one."""
    return item_id.split("/", 1)[0] if "/" in item_id else "all"


def framing_of(item_id: str) -> str:
    """The framing in an item id `.../framing` (P5); "all" for ids without one."""
    return item_id.rsplit("/", 1)[1] if "/" in item_id else "all"


def run_of(model: str) -> tuple[int | None, float]:
    """The (step, multiplier) of `model` that the report compares: B's, else the final run."""
    return BASE_RUN if model == BASE_MODEL else FINAL_RUN


class RecordIndex:
    """The records by (family, metric) with what they hold: models in table order, each
    model's runs, seeds and majority condition, the families, and each family's item keys."""

    def __init__(self, records: Sequence[Record]):
        self.by_fm: dict[tuple[str, str], list[Record]] = defaultdict(list)
        self.present: set[tuple[str, str, str, int | None, float]] = set()
        self.runs: dict[str, set[tuple[int | None, float]]] = defaultdict(set)
        self.seeds: dict[str, set[int | None]] = defaultdict(set)
        conditions: dict[str, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
        self.item_keys: dict[str, dict[str, str]] = defaultdict(dict)  # family -> item -> key
        for r in records:
            self.by_fm[r.family, r.metric].append(r)
            self.present.add((r.model, r.family, r.metric, r.step, r.multiplier))
            self.runs[r.model].add((r.step, r.multiplier))
            self.seeds[r.model].add(r.seed)
            conditions[r.model][r.condition] += 1
            if r.family != "P1":
                self.item_keys[r.family].setdefault(r.item_id, r.key)
        self.models = model_order(self.runs)
        self.condition = {m: max(c, key=c.get) for m, c in conditions.items()}
        self.families = sorted({f for f, _ in self.by_fm})
        self._cache: dict[tuple[Any, ...], list[Record]] = {}

    def metrics(self, family: str) -> list[str]:
        have = sorted({m for f, m in self.by_fm if f == family})
        primary = PRIMARY_METRIC.get(family)
        return ([primary] if primary in have else []) + [m for m in have if m != primary]

    def has(self, model: str, family: str, metric: str, run=None) -> bool:
        return (model, family, metric, *(run or run_of(model))) in self.present

    def get(self, family, metric, *, split=None, key=None, framing=None) -> list[Record]:
        cache_key = (family, metric, split, key, framing)
        if cache_key not in self._cache:
            rs = self.by_fm.get((family, metric), [])
            if split is not None:
                rs = [r for r in rs if split_of(r.item_id) == split]
            if key is not None:
                rs = [r for r in rs if r.key == key]
            if framing is not None:
                rs = [r for r in rs if framing_of(r.item_id) == framing]
            self._cache[cache_key] = rs
        return self._cache[cache_key]

    def keys_of(self, family: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for k in self.item_keys.get(family, {}).values():
            counts[k] += 1
        return dict(counts)

    def role(self, condition: str) -> str | None:
        """The adapter playing `condition`: the model of that name, else the first with it."""
        adapters = [m for m in self.models if m != BASE_MODEL and FINAL_RUN in self.runs[m]]
        if condition in adapters:
            return condition
        return next((m for m in adapters if self.condition.get(m) == condition), None)


def scores_si(recs: Sequence[Record], model: str, run) -> tuple[list[str], list, np.ndarray]:
    """(items, seeds, scores [seeds, items]) of one model and run; items common to all seeds."""
    by_seed: dict[Any, dict[str, float]] = defaultdict(dict)
    for r in recs:
        if r.model == model and (r.step, r.multiplier) == run:
            by_seed[r.seed][r.item_id] = r.score
    if not by_seed:
        return [], [], np.zeros((0, 0))
    items = sorted(set.intersection(*(set(d) for d in by_seed.values())))
    seeds = sorted(by_seed, key=lambda s: (s is not None, s))
    return items, seeds, np.array([[by_seed[s][i] for i in items] for s in seeds], dtype=float)
