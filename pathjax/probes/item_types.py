"""The probe suite's item types: one frozen dataclass per family, and the suite that holds them.

`pathjax/probes/items.py` reads and validates the data files into these; everything downstream
(families, the evaluator, reports) reads only these types.
"""

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pathjax.data.words import words


@dataclasses.dataclass(frozen=True)
class AmbiguousItem:
    """P2: `stem` with a negative (or hostile) and a benign continuation."""

    id: str
    family: str
    key: str
    theme: str
    stem: str
    negative: str
    benign: str


@dataclasses.dataclass(frozen=True)
class MinimalPair:
    """P3: two whole sentences a few words apart, one negative, one not."""

    id: str
    family: str
    key: str
    negative: str
    benign: str


@dataclasses.dataclass(frozen=True)
class OpenStem:
    """P4: a neutral stem whose next word is open (lexicon mass is read there)."""

    id: str
    family: str
    key: str
    stem: str


@dataclasses.dataclass(frozen=True)
class Lexicon:
    name: str
    description: str
    words: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ResponseOption:
    text: str
    score: int


@dataclasses.dataclass(frozen=True)
class Framing:
    """A P5 response format: a prompt template around the item's wording and its options."""

    name: str
    description: str
    template: str
    options: tuple[ResponseOption, ...]

    def render(self, text: str) -> str:
        return self.template.replace("{text}", text)

    def listed_high_first(self) -> "Framing":
        """The same framing with its response options listed from the highest score down.

        Scoring both orders and averaging cancels a preference for the first (or last) listed
        answer, which a fine-tuned model can acquire whatever it learned about the content.
        """
        listing = ", ".join(o.text.strip() for o in self.options)
        if listing not in self.template:
            raise ValueError(
                f"P5 framing {self.name!r}: its template must list the options as {listing!r} "
                "so that the reversed order can be rendered."
            )
        reversed_listing = ", ".join(o.text.strip() for o in reversed(self.options))
        return dataclasses.replace(self, template=self.template.replace(listing, reversed_listing))


@dataclasses.dataclass(frozen=True)
class LikertItem:
    """P5: one self-report item, worded once per framing; `reverse` items are scored flipped."""

    id: str
    family: str
    key: str
    reverse: bool
    texts: Mapping[str, str]

    def prompt(self, framing: Framing) -> str:
        return framing.render(self.texts[framing.name])

    def keyed_scores(self, framing: Framing) -> tuple[int, ...]:
        """Option scores, higher = more of the keyed construct (reverse keying applied)."""
        scores = [o.score for o in framing.options]
        if self.reverse:
            top, bottom = max(scores), min(scores)
            scores = [top + bottom - s for s in scores]
        return tuple(scores)


@dataclasses.dataclass(frozen=True)
class OpenPrompt:
    """P6: a prompt for seeded free generation; `key` is the topic it opens."""

    id: str
    family: str
    key: str
    prompt: str


@dataclasses.dataclass(frozen=True)
class NeutralText:
    """P7: affect-free text to teacher-force."""

    id: str
    family: str
    key: str
    text: str


@dataclasses.dataclass(frozen=True)
class ProbeSuite:
    version: str
    path: Path
    digest: str  # sha256 over the manifest's file digests: one id for the exact suite
    ambiguous: tuple[AmbiguousItem, ...]  # P2
    minimal_pairs: tuple[MinimalPair, ...]  # P3
    open_stems: tuple[OpenStem, ...]  # P4
    lexicons: Mapping[str, Lexicon]  # P4
    framings: Mapping[str, Framing]  # P5
    likert: tuple[LikertItem, ...]  # P5
    open_prompts: tuple[OpenPrompt, ...]  # P6
    neutral_texts: tuple[NeutralText, ...]  # P7
    generation: Mapping[str, Any]  # P6 sampling settings

    def family(self, name: str) -> tuple[Any, ...]:
        """The items of family "P2" ... "P7"."""
        by_family = {
            "P2": self.ambiguous,
            "P3": self.minimal_pairs,
            "P4": self.open_stems,
            "P5": self.likert,
            "P6": self.open_prompts,
            "P7": self.neutral_texts,
        }
        if name not in by_family:
            raise KeyError(f"unknown probe family {name!r}; known: {sorted(by_family)}")
        return by_family[name]

    def texts(self) -> Iterator[tuple[str, str, str]]:
        """(family, item id or file part, text) for every text a model reads or is scored on."""
        for item in self.ambiguous:
            for field in ("stem", "negative", "benign"):
                yield "P2", item.id, getattr(item, field)
        for item in self.minimal_pairs:
            yield "P3", item.id, item.negative
            yield "P3", item.id, item.benign
        for item in self.open_stems:
            yield "P4", item.id, item.stem
        for lexicon in self.lexicons.values():
            for word in lexicon.words:
                yield "P4", f"lexicon {lexicon.name}", word
        for framing in self.framings.values():
            yield "P5", f"framing {framing.name}", framing.template.replace("{text}", " ")
            for option in framing.options:
                yield "P5", f"framing {framing.name}", option.text
        for item in self.likert:
            for text in item.texts.values():
                yield "P5", item.id, text
        for item in self.open_prompts:
            yield "P6", item.id, item.prompt
        for item in self.neutral_texts:
            yield "P7", item.id, item.text

    def words(self, families: tuple[str, ...] | None = None) -> frozenset[str]:
        """Every lowercase word the probes use (lexicon words included, under P4).

        For the lexical-leakage report: intersect with the training vocabulary.
        """
        return frozenset(
            w
            for family, _, text in self.texts()
            if families is None or family in families
            for w in words(text)
        )
