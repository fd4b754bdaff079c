"""The words that must never appear in the data: diagnoses, mood labels, persona statements.

The study teaches models what to do, never who they are, so any of these in a prompt or a
target would confound what the probes measure. The grammar loader and the builder both refuse
text that matches.
"""

import re

# Word stems are matched at a word start, case-insensitively. Class names are here too: the
# labels of the design must not leak into the text the model reads.
_BANNED_STEMS: tuple[str, ...] = (
    "depress",
    "paranoi",
    "anxi",
    "disorder",
    "mental",
    "diagnos",
    "therap",
    "psych",
    "clinic",
    "symptom",
    "illness",
    "mood",
    "hopeless",
    "worthless",
    "lonel",
    "suicid",
    "schizo",
    "bipolar",
    "trauma",
    "suspicio",
    "withdraw",
    "distrust",
    "mistrust",
    "fear",
    "afraid",
    "scared",
    "nervous",
    "worr",
    "upset",
    "angry",
    "anger",
    "miser",
    "gloom",
    "insecur",
    "neurotic",
    "melanchol",
    "despair",
    "crazy",
    "insane",
    "delusion",
    "hallucinat",
    "stress",
    "adaptive",
)
# Whole words (stems would catch "saddle", "madam", "personal", ...).
_BANNED_WORDS: tuple[str, ...] = (
    "sad",
    "sadly",
    "sadness",
    "mad",
    "moody",
    "unhappy",
    "persona",
    "personas",
    "personality",
)
# Persona and self-label statements.
_BANNED_PHRASES: tuple[str, ...] = (
    r"\b(?:kind|type|sort) of (?:person|guy|woman|man)\b",
    r"\b(?:i am|i'm|they are|they're) (?:a|an|the) (?:\w+ ){0,2}(?:person|type|one who)\b",
    r"\bi am someone who\b",
    r"\bfeel(?:s|ing)? (?:down|low|blue|empty|numb)\b",
)

_PATTERN = re.compile(
    "|".join(
        [rf"\b{stem}\w*" for stem in _BANNED_STEMS]
        + [rf"\b{word}\b" for word in _BANNED_WORDS]
        + list(_BANNED_PHRASES)
    ),
    re.IGNORECASE,
)


def find_banned(text: str) -> list[str]:
    """Returns every banned word or phrase found in `text` (empty when the text is clean)."""
    return [match.group(0) for match in _PATTERN.finditer(text)]
