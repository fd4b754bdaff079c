"""What the probes read from the behavioral dataset: P1's held-out items and the words of
the training data (P4's unseen-word metrics and the report's lexical leakage)."""

from __future__ import annotations

from typing import Any

from pathjax import data as data_lib
from pathjax.data import subsets
from pathjax.probes.schema import P1_SPLITS


def p1_items(config, limit: int = 0) -> dict[str, list[dict[str, Any]]]:
    """P1's held-out decisions: the test splits of the configured dataset (built if needed).

    The conditions share situations and options and differ only in the target, so one
    condition's splits serve every model (the records hold all four class probabilities).
    """
    d = config.data
    sizes = data_lib.options_of(d)
    data_lib.build(d.condition, d.data_dir, **sizes)
    out = {}
    for split in P1_SPLITS:
        source = data_lib.load(d.condition, split, d.data_dir, **sizes)
        # From the whole split: a head slice would fix the target positions by chance.
        out[split] = list(subsets.balanced(list(source), limit))
    return out


def training_vocabulary(config) -> frozenset[str]:
    d = config.data
    builder = data_lib.build(d.condition, d.data_dir, **data_lib.options_of(d))
    return data_lib.read_vocabulary(builder.data_dir)
