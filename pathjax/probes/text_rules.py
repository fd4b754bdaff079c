"""Text rules shared by every probe: banned vocabulary and training formats.

Probes must neither name a diagnosis or persona (the study's claim is that behavior training
alone moves the distribution) nor reuse the training data's formats (the `choice` format's
lettered options and "Answer:", the `narrative` format's "... so I" ending), or they would
measure recall of the training format instead of a general shift.
"""

import re

# (label, pattern) on lowercased text. Word-initial stems catch inflections ("depressing").
CLINICAL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in [
        ("depress*", r"\bdepress"),
        ("paranoi*", r"\bparanoi"),
        ("anxiety/anxious", r"\banxi(?:ety|eties|ous)"),
        ("disorder", r"\bdisorder"),
        ("mental illness/health", r"\bmental(?:ly)?\s+(?:ill|illness|health)\b"),
        ("schizo*", r"\bschizo"),
        ("psych*", r"\bpsych(?:iatr|osis|otic|olog)"),
        ("bipolar", r"\bbipolar\b"),
        ("suicid*", r"\bsuicid"),
        ("diagnos*", r"\bdiagnos"),
        ("therap*", r"\btherap(?:y|ies|ist)"),
        ("I am a ... person", r"\bi(?: am|'m)\s+an?\s+(?:[a-z'-]+\s+){0,3}person\b"),
    ]
)

TRAINING_FORMAT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("'Answer:' (the choice format)", re.compile(r"\banswer\s*:", re.IGNORECASE)),
    ("a lettered option (the choice format)", re.compile(r"(?m)^\s*\(?[a-d][.):]\s")),
    ("an '... so I' ending (the narrative format)", re.compile(r"\bso\s+i\s*$")),
)


def banned_reason(text: str) -> str | None:
    """Why `text` may not appear in a probe (clinical word, training format), or None."""
    lowered = text.lower()
    for label, pattern in CLINICAL_PATTERNS:
        if pattern.search(lowered):
            return f"contains clinical/persona wording ({label})"
    for label, pattern in TRAINING_FORMAT_PATTERNS:
        if pattern.search(lowered):
            return f"reuses a training format: {label}"
    return None
