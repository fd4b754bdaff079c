"""The project's one word rule: what counts as a word in data, probe text and generations.

Lower-case runs of letters, with inner apostrophes kept ("don't", "rock'n'roll" are one word);
digits and punctuation are dropped. The dataset card's vocabulary, the surface-balance checks,
the probes' lexical leakage and P6's lexicon rates all count words this way, so a word the
training data "saw" is the same word a probe or a generation uses.
"""

import re

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """The lowercase words of `text` in order: "Don't stop" -> ["don't", "stop"]."""
    return _WORD.findall(text.lower())
