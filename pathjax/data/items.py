"""Deterministic sampling of the records of one split.

Items (situation, fills, paraphrases, option order, format) are drawn without looking at the
condition; the condition only picks which option is the target. So the four conditions share
prompts and options exactly, as docs/DATASET.md requires.

Randomness comes from `random.Random(str)` and only its `random()` method, the one part of the
module Python promises to keep stable across versions: same version + seed, same bytes.
"""

import random
from collections.abc import Sequence
from typing import Any

from pathjax.data import formats, scenarios, schema

# Rejection sampling gives up after this many duplicates in a row: the split has (nearly) run
# out of distinct prompts for the format whose turn it is.
_MAX_CONSECUTIVE_DUPLICATES = 2000


class _Rng:
    """A tiny stable RNG: every draw goes through `random.Random.random()`."""

    def __init__(self, *key: object):
        self._random = random.Random("/".join(str(k) for k in key))

    def below(self, n: int) -> int:
        return min(int(self._random.random() * n), n - 1)

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def sample(self, seq: Sequence[Any], k: int) -> list[Any]:
        pool = list(seq)
        return [pool.pop(self.below(len(pool))) for _ in range(k)]

    def permutation(self, seq: Sequence[Any]) -> list[Any]:
        return self.sample(seq, len(seq))


def _draw_fills(
    rng: _Rng, grammar: scenarios.Grammar, template: scenarios.Template, split: str
) -> dict[str, scenarios.Fill]:
    # Slots that share a pool get distinct fills ("{colleague} copies {manager}").
    by_pool: dict[str, list[str]] = {}
    for slot, pool in sorted(template.slots.items()):
        by_pool.setdefault(pool, []).append(slot)
    fills = {}
    for pool, slots in sorted(by_pool.items()):
        drawn = rng.sample(grammar.split_pool(split, pool), len(slots))
        fills.update(zip(slots, drawn, strict=True))
    return fills


def generate_items(
    grammar: scenarios.Grammar, split: str, size: int, seed: int, wordings: int = 0
) -> list[dict[str, Any]]:
    """`size` distinct items of `split` (no target yet); raises if the split cannot supply them.
    `wordings` > 0 draws each class's action from the template's first `wordings` only."""
    schema.check_split(split)
    templates = grammar.split_templates(split)
    split_formats = schema.SPLIT_FORMATS[split]
    rng = _Rng("items", seed, split)
    items, seen, duplicates = [], set(), 0
    while len(items) < size and duplicates < _MAX_CONSECUTIVE_DUPLICATES:
        # Formats take turns, so a split is balanced exactly even where one format has fewer
        # distinct prompts (a narrative prompt shows no options, so it repeats sooner).
        fmt = split_formats[len(items) % len(split_formats)]
        template = rng.choice(templates)
        fills = _draw_fills(rng, grammar, template, split)
        classes = rng.permutation(schema.ACTION_CLASSES)
        # One draw per class whatever the pool size: the stream of draws stays aligned.
        pools = [template.actions[c][: wordings or None] for c in classes]
        actions = [scenarios.render(rng.choice(pool), fills) for pool in pools]
        name = rng.choice(grammar.protagonists)
        situation = scenarios.render(template.situation, fills)
        prompt, options = formats.render(fmt, situation, actions, name)
        if prompt in seen:
            duplicates += 1
            continue
        seen.add(prompt)
        duplicates = 0
        items.append(
            {
                "prompt": prompt,
                "options": options,
                "option_classes": classes,
                "domain": template.domain,
                "template_id": template.id,
                "format": fmt,
            }
        )
    if len(items) < size:
        raise ValueError(
            f"Split {split!r} ran out of distinct prompts after {len(items)} of the {size} "
            "requested items: ask for fewer items or add templates or fills to the grammar."
        )
    return items


def assign_targets(
    items: Sequence[dict[str, Any]], condition: str, seed: int, split: str
) -> list[dict[str, Any]]:
    """Completes items into records: the condition's target class (seeded for `shuffled`)."""
    schema.check_condition(condition)
    fixed = schema.CONDITION_TARGETS[condition]
    rng = _Rng("targets", seed, split)
    records = []
    for item in items:
        # Draw for every item and condition, so `shuffled` never shifts the others' streams.
        drawn = rng.choice(schema.ACTION_CLASSES)
        target_class = fixed or drawn
        index = item["option_classes"].index(target_class)
        records.append(
            {
                **item,
                "target": item["options"][index],
                "target_index": index,
                "target_class": target_class,
                "condition": condition,
            }
        )
    return records


def generate_split(
    condition: str,
    split: str,
    size: int,
    seed: int,
    grammar: scenarios.Grammar | None = None,
    wordings: int = 0,
) -> list[dict[str, Any]]:
    """The records of `split` for `condition`: what the TFDS builder writes, in order."""
    schema.check_condition(condition)
    grammar = grammar or scenarios.load_grammar()
    drawn = generate_items(grammar, split, size, seed, wordings)
    return assign_targets(drawn, condition, seed, split)
