"""Surface balance of the options (docs/DATASET.md): length, neutral shortness, marker words,
and slot-fill grammar. Each limit is checked on records, what a model sees."""

import re

import pytest

from pathjax.data import balance, items, scenarios

SPLITS_AND_SIZES = (("train", 3000), ("test_templates", 600), ("test_domains", 600))


@pytest.fixture(scope="module")
def records():
    grammar = scenarios.load_grammar()
    return {s: items.generate_items(grammar, s, n, 0) for s, n in SPLITS_AND_SIZES}


@pytest.mark.parametrize("split", [s for s, _ in SPLITS_AND_SIZES])
def test_options_are_balanced(records, split):
    assert balance.violations(records[split]) == []


def test_each_class_opens_with_many_verbs(records):
    for cls, shares in balance.leading_verbs(records["train"]).items():
        assert len(shares) >= 8, (cls, shares)
        assert max(shares.values()) <= balance.MAX_WORD_SHARE, (cls, shares)


def test_violations_finds_a_short_neutral_and_a_marker_word():
    # Built to fail: neutral much shorter than the rest, "assume" in every suspicion option.
    record = {
        "options": [
            " I stay in bed all day long.",
            " I assume they lie to me now.",
            " I go.",
            " I plan a nice day out.",
        ],
        "option_classes": ["withdrawal", "suspicion", "neutral", "adaptive"],
    }
    problems = balance.violations([record] * 10)
    assert any("neutral option is the shortest" in p for p in problems)
    assert any("'assume'" in p for p in problems)
    assert any("class mean lengths" in p for p in problems)


_ARTICLE_THEN_DETERMINER = re.compile(
    r"\b(?:the|a|an) (?:the|a|an|my|your|his|her|their|our|its|this|that|some)\b", re.I
)
_A_BEFORE_VOWEL = re.compile(
    r"\ba (?!one\b|once\b|u[nst]\w*|eu\w*|usual\w*|use\w*)[aeiou]\w*", re.I
)
_AN_BEFORE_CONSONANT = re.compile(r"\ban (?!hour|honest|honou?r|heir)[b-df-hj-np-tv-z]\w*", re.I)
_DOUBLED_WORD = re.compile(r"\b(\w+) \1\b", re.I)


def slot_fill_errors(text: str) -> list[str]:
    """Article and doubled-word errors a fill can make in its template's text."""
    return [
        m.group(0)
        for rx in (_ARTICLE_THEN_DETERMINER, _A_BEFORE_VOWEL, _AN_BEFORE_CONSONANT, _DOUBLED_WORD)
        for m in rx.finditer(text)
    ]


def test_slot_fill_error_finder_can_fail():
    assert slot_fill_errors("save the a hundred dollars") == ["the a"]
    assert slot_fill_errors("apply for a organic chemistry grant") == ["a organic"]
    assert slot_fill_errors("wait an week") == ["an week"]
    assert set(slot_fill_errors("an hour, a user, an apple, the the")) == {"the the"}


def test_every_fill_reads_grammatically():
    """Every template text rendered with every fill of each slot (the others at their first)."""
    grammar = scenarios.load_grammar()
    found = set()
    for t in grammar.templates:
        texts = [t.situation] + [a for paraphrases in t.actions.values() for a in paraphrases]
        first = {slot: grammar.pools[pool][0] for slot, pool in t.slots.items()}
        for slot, pool in t.slots.items():
            for fill in grammar.pools[pool]:
                fills = {**first, slot: fill}
                for text in texts:
                    for error in slot_fill_errors(scenarios.render(text, fills)):
                        found.add((t.id, error, text))
    assert not found, sorted(found)
