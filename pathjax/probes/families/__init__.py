"""The probe families, one module each, chosen by id (`schema.FAMILY_MODULES`).

`evaluate_suite` runs the requested families on every model of an `Evaluator`: each family
selects its items from the suite, scores them through one `Scorer`, and returns records (and
P6 its generations). The contract a family module keeps is in `base.py`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from pathjax.probes.evaluator import Evaluator
from pathjax.probes.families.base import FamilyOutput, Limits, Scorer, SuiteInputs
from pathjax.probes.records import Record
from pathjax.probes.schema import FAMILIES, FAMILY_MODULES

__all__ = ["FamilyOutput", "Limits", "Scorer", "SuiteInputs", "evaluate_suite", "family"]


def family(family_id: str) -> ModuleType:
    """The module that implements `family_id` ("P3"); a clear error for an unknown id."""
    if family_id not in FAMILY_MODULES:
        raise ValueError(f"Unknown probe family {family_id!r}; known: {', '.join(FAMILIES)}.")
    module = importlib.import_module(f"{__name__}.{FAMILY_MODULES[family_id]}")
    if module.ID != family_id:  # A mis-wired schema entry, caught on first use.
        raise RuntimeError(f"{module.__name__} declares {module.ID}, not {family_id}.")
    return module


def evaluate_suite(
    evaluator: Evaluator,
    inputs: SuiteInputs,
    *,
    limits: Limits | None = None,
    families: Sequence[str] = FAMILIES,
    progress: Callable[[str], Any] | None = None,
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Every family of `families` on every model: `(records, generations)`."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"Unknown probe families {unknown}; known: {FAMILIES}.")
    limits = limits or Limits()
    scorer = Scorer(evaluator, progress)
    records: list[Record] = []
    generations: list[dict[str, Any]] = []
    for family_id in (f for f in FAMILIES if f in families):  # Report order.
        module = family(family_id)
        out = module.score(scorer, module.select(inputs, limits))
        records += out.records
        generations += out.generations
    return records, generations
