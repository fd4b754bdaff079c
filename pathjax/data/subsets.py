"""Balanced subsets of records, for scoring a few items of a split without a position bias.

A lettered or listed item puts its target at one of four positions. A head slice of a split can
hold the target at one position more often than the others, and then a model that always picks
that position looks like it learned something. `balanced` takes items so that every class sits
at every position equally often.
"""

from collections.abc import Mapping, Sequence
from typing import Any


def latin_key(classes: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """(the class order rotated to start with its smallest class, the rotation).

    The 24 orders of four classes fall into 6 groups of 4 cyclic rotations; within a group,
    every class sits at every position once (a Latin square).
    """
    shift = list(classes).index(min(classes))
    return tuple(classes[shift:]) + tuple(classes[:shift]), shift


def balanced(records: Sequence[Mapping[str, Any]], limit: int) -> Sequence[Any]:
    """At most `limit` records (0 = all), balanced over formats and class positions.

    Records are taken round-robin over (class order group, rotation, format) in that order, so
    every 4 records of one format complete a Latin square when the split has them (each class
    at each position once); records keep their split order.
    """
    if limit <= 0 or limit >= len(records):
        return records
    by_order: dict[Any, list[int]] = {}
    for i, r in enumerate(records):
        by_order.setdefault(latin_key(r["option_classes"]) + (r["format"],), []).append(i)
    chosen = round_robin([by_order[k] for k in sorted(by_order)], limit)
    return [records[i] for i in sorted(chosen)]


def round_robin(queues: Sequence[Sequence[int]], limit: int) -> list[int]:
    """Up to `limit` indices, one from each queue in turn, in the queues' order."""
    pending = [list(q) for q in queues]
    chosen: list[int] = []
    while len(chosen) < limit and any(pending):
        for queue in pending:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen
