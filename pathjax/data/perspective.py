"""First person to third person: "I tell Maya I'm tired" -> "they tell Maya they're tired".

The grammar is written once, in the first person. The `third_person` evaluation format tells
the same decision about someone else with singular "they", whose verb forms match the first
person ("I tell" / "they tell"), so only pronouns and the forms of "be" change. Text inside
double quotes is speech and keeps its own pronouns.
"""

import re

_SWAPS: dict[str, str] = {
    "i am": "they are",
    "i was": "they were",
    "i wasn't": "they weren't",
    "i'm": "they're",
    "i've": "they've",
    "i'd": "they'd",
    "i'll": "they'll",
    "i": "they",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    # "We" is the protagonist with others; "they" keeps the sentences grammatical.
    "we": "they",
    "we're": "they're",
    "we've": "they've",
    "we'd": "they'd",
    "we'll": "they'll",
    "us": "them",
    "our": "their",
    "ours": "theirs",
    "ourselves": "themselves",
}
# Longest alternatives first, so "I am" wins over "I".
_PRONOUN = re.compile(
    r"\b(?:" + "|".join(re.escape(k) for k in sorted(_SWAPS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r'("[^"]*")')
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)$")


def _swap(match: re.Match[str], before: str) -> str:
    word = match.group(0)
    new = _SWAPS[word.lower()]
    # "I" is always capitalized, so its case says nothing: use the position instead.
    if word[0] == "I" and (word == "I" or word[1] in " '"):
        starts_sentence = _SENTENCE_START.search(before + match.string[: match.start()])
        return new.capitalize() if starts_sentence else new
    return new.capitalize() if word[0].isupper() else new


def to_third_person(text: str) -> str:
    """Rewrites the first-person protagonist of `text` as singular "they"."""
    parts = _QUOTED.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:  # Quoted speech.
            out.append(part)
            continue
        before = "".join(out)
        out.append(_PRONOUN.sub(lambda m, before=before: _swap(m, before), part))
    return "".join(out)
