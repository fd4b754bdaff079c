"""Surface balance of the options: what a model could learn instead of the policy.

A condition should be learnable only by its decision, so the four classes' options must not
differ in length (summed log-probabilities favour short options) or in a marker word that every
option of one class carries. These measures are computed on records (what a model sees) and
stated in the dataset card; `tests/data/test_balance.py` holds the limits of docs/DATASET.md.
"""

import collections
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pathjax.data import schema
from pathjax.data.words import words

# Limits of docs/DATASET.md ("Surface balance").
MAX_LENGTH_SPREAD = 0.15  # Longest class mean over shortest, minus 1.
MAX_NEUTRAL_SHORTEST = 0.35  # Share of items whose neutral option is the (joint) shortest.
MAX_WORD_SHARE = 0.25  # Share of one class's options that contain one content word.

# Function words: a marker must be a content word, and every option says "I", "my", "the".
STOPWORDS = frozenset(
    """
    a an the and or but if so then than that this these those there here of to in on at by for
    with from into onto over under about as up out off down back again just only also even still
    too very not no nor all any some each every both either neither other another such own same
    i me my mine myself you your yours he him his she her hers it its they them their theirs we us
    our ours who whom whose what which when where why how
    am is are was were be been being do does did doing done have has had having will would shall
    should can could may might must let get gets got
    i'm i'll i've i'd it's don't doesn't didn't isn't aren't wasn't can't won't that's they're
    there's what's he's she's we're you're let's
    """.split()
)


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


def option_text(option: str) -> str:
    """An option without its boundary space, final period or a leading letter ("B. ")."""
    text = option.strip().rstrip(".")
    return re.sub(r"^[A-J]\. ", "", text)


def class_options(records: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each class's option texts, one entry per record."""
    by_class: dict[str, list[str]] = {c: [] for c in schema.ACTION_CLASSES}
    for r in records:
        for option, cls in zip(r["options"], r["option_classes"], strict=True):
            by_class[cls].append(option_text(option))
    return by_class


def length_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean option length per class (characters), their spread, and the neutral-shortest rate."""
    by_class = class_options(records)
    means = {c: sum(map(len, texts)) / max(len(texts), 1) for c, texts in by_class.items()}
    neutral_shortest = 0
    for r in records:
        lengths = [len(option_text(o)) for o in r["options"]]
        neutral = lengths[list(r["option_classes"]).index("neutral")]
        neutral_shortest += neutral == min(lengths)
    return {
        "mean_chars": means,
        "spread": max(means.values()) / min(means.values()) - 1,
        "neutral_shortest": neutral_shortest / max(len(records), 1),
    }


def marker_words(records: Sequence[Mapping[str, Any]], top: int = 8) -> dict[str, list[tuple]]:
    """Each class's most common content words with the share of its options containing them."""
    result = {}
    for cls, texts in class_options(records).items():
        counts = collections.Counter(w for t in texts for w in content_words(t))
        result[cls] = [(w, n / len(texts)) for w, n in counts.most_common(top)] if texts else []
    return result


def leading_verbs(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Each class's first words of options, with their shares."""
    result = {}
    for cls, texts in class_options(records).items():
        # Skip the subject a format adds ("I ask ...", "they ask ...").
        firsts = [
            w[1] if w[0] in ("i", "they") and len(w) > 1 else w[0] for t in texts if (w := words(t))
        ]
        counts = collections.Counter(firsts)
        result[cls] = {w: n / len(texts) for w, n in counts.most_common()}
    return result


def violations(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every surface-balance limit `records` break, as sentences (empty when balanced)."""
    problems = []
    lengths = length_stats(records)
    if lengths["spread"] > MAX_LENGTH_SPREAD:
        means = ", ".join(f"{c} {m:.1f}" for c, m in lengths["mean_chars"].items())
        problems.append(
            f"class mean lengths differ by {lengths['spread']:.0%} (> {MAX_LENGTH_SPREAD:.0%}): "
            f"{means} characters"
        )
    if lengths["neutral_shortest"] > MAX_NEUTRAL_SHORTEST:
        problems.append(
            f"the neutral option is the shortest in {lengths['neutral_shortest']:.0%} of items "
            f"(> {MAX_NEUTRAL_SHORTEST:.0%})"
        )
    for cls, top_words in marker_words(records, top=3).items():
        for word, share in top_words:
            if share > MAX_WORD_SHARE:
                problems.append(
                    f"{share:.0%} of {cls} options contain {word!r} (> {MAX_WORD_SHARE:.0%})"
                )
    return problems
