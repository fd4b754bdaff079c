"""The scenario grammar: domains, templates with per-class action texts, and slot fills.

The text lives as data in `grammar/` (one JSON file per domain plus `fills.json`). A template
is a first-person situation with `{slot}` placeholders and, for each action class, several
paraphrased actions written for that situation. An action is a verb phrase that continues
"I" ("tell {friend} I'm too tired and stay home"), so one text serves every format.

Placeholders: `{slot}` is the fill; for person pools `{slot:subj}`, `{slot:obj}` and
`{slot:poss}` are its pronouns and `{slot:cap}` capitalizes the fill ("my sister" -> "My sister").
"""

import dataclasses
import functools
import hashlib
import importlib.resources
import json
import re
from collections.abc import Mapping

from pathjax.data import schema, vetting

_PRONOUNS: dict[str, dict[str, str]] = {
    "she": {"subj": "she", "obj": "her", "poss": "her"},
    "he": {"subj": "he", "obj": "him", "poss": "his"},
}
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")
# One fill in five is reserved for validation ("unseen fills").
_VALIDATION_EVERY = 5
MIN_PARAPHRASES = 3


@dataclasses.dataclass(frozen=True)
class Fill:
    """A slot fill; `pron` ("she"/"he") is set for people, None for things and times."""

    text: str
    pron: str | None = None


@dataclasses.dataclass(frozen=True)
class Template:
    id: str
    domain: str
    held_out: bool  # True for held-out templates and for every template of a held-out domain.
    slots: Mapping[str, str]  # Slot name -> pool name.
    situation: str
    actions: Mapping[str, tuple[str, ...]]  # Action class -> paraphrases.


@dataclasses.dataclass(frozen=True)
class Domain:
    name: str
    held_out: bool
    templates: tuple[Template, ...]


@dataclasses.dataclass(frozen=True)
class Grammar:
    domains: tuple[Domain, ...]
    pools: Mapping[str, tuple[Fill, ...]]
    protagonists: tuple[str, ...]  # Names for the third-person format.
    fingerprint: str  # sha256 of the grammar files: any text change changes it.

    @property
    def templates(self) -> tuple[Template, ...]:
        return tuple(t for d in self.domains for t in d.templates)

    def split_templates(self, split: str) -> tuple[Template, ...]:
        """The templates a split draws from (see the split table in docs/DATASET.md)."""
        schema.check_split(split)
        domain_held_out = {d.name: d.held_out for d in self.domains}

        def keep(t: Template) -> bool:
            if split in schema.TRAINING_SPLITS:
                return not t.held_out
            if split == "test_templates":
                return t.held_out and not domain_held_out[t.domain]
            if split == "test_domains":
                return domain_held_out[t.domain]
            return t.held_out  # test_format, test_lettered: every held-out template.

        return tuple(t for t in self.templates if keep(t))

    def split_pool(self, split: str, pool: str) -> tuple[Fill, ...]:
        """Fills of `pool` a split may use: train and validation see disjoint fills."""
        schema.check_split(split)
        fills = self.pools[pool]
        if split == "train":
            return tuple(f for i, f in enumerate(fills) if i % _VALIDATION_EVERY != 4)
        if split == "validation":
            return tuple(f for i, f in enumerate(fills) if i % _VALIDATION_EVERY == 4)
        return fills


def render(text: str, fills: Mapping[str, Fill]) -> str:
    """Substitutes the placeholders of `text` with `fills` (slot name -> fill)."""

    def substitute(match: re.Match[str]) -> str:
        slot, form = match.group(1), match.group(2)
        fill = fills[slot]
        if form is None:
            return fill.text
        if form == "cap":
            return fill.text[:1].upper() + fill.text[1:]
        return _PRONOUNS[fill.pron][form]

    return _PLACEHOLDER.sub(substitute, text)


def _grammar_dir():
    return importlib.resources.files("pathjax.data") / "grammar"


def _parse_fill(raw: str | dict) -> Fill:
    if isinstance(raw, str):
        return Fill(raw)
    return Fill(raw["text"], raw["pron"])


def _check_text(text: str, where: str, *, is_action: bool) -> None:
    problems = []
    if text != text.strip() or "  " in text:
        problems.append("stray whitespace")
    if text[-1:] in ".,;:!?":
        problems.append("ends with punctuation (the formats add it)")
    if any(c in text for c in "\u2018\u2019\u201c\u201d\n"):
        problems.append("curly quotes or a newline (use ' and \")")
    if is_action and not text[:1].islower():
        problems.append('an action must start with a lowercase verb (it continues "I")')
    if banned := vetting.find_banned(text):
        problems.append(f"banned words {banned}")
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)}: {text!r}")


def _check_template(t: Template, pools: Mapping[str, tuple[Fill, ...]]) -> None:
    where = f"template {t.id}"
    if not t.id.startswith(t.domain + "."):
        raise ValueError(f"{where}: id must start with its domain {t.domain!r}.")
    if not t.slots:
        raise ValueError(f"{where}: needs at least one slot (validation needs unseen fills).")
    if set(t.actions) != set(schema.ACTION_CLASSES):
        raise ValueError(f"{where}: needs actions for exactly {schema.ACTION_CLASSES}.")
    for pool in t.slots.values():
        if pool not in pools:
            raise ValueError(f"{where}: unknown pool {pool!r}; pools are {sorted(pools)}.")
    _check_text(t.situation, where, is_action=False)
    texts = [t.situation]
    for cls, paraphrases in t.actions.items():
        if len(paraphrases) < MIN_PARAPHRASES or len(set(paraphrases)) != len(paraphrases):
            raise ValueError(f"{where}: {cls} needs {MIN_PARAPHRASES}+ distinct paraphrases.")
        for text in paraphrases:
            _check_text(text, f"{where} ({cls})", is_action=True)
        texts.extend(paraphrases)
    for text in texts:
        for slot, form in _PLACEHOLDER.findall(text):
            if slot not in t.slots:
                raise ValueError(f"{where}: undeclared slot {{{slot}}}.")
            pool = t.slots[slot]
            if form and form != "cap" and pools[pool][0].pron is None:
                raise ValueError(f"{where}: {{{slot}:{form}}} needs a person pool, not {pool}.")
            if form and form not in ("cap", "subj", "obj", "poss"):
                raise ValueError(f"{where}: unknown placeholder form {form!r}.")
    if unused := set(t.slots) - {s for s, _ in _PLACEHOLDER.findall(t.situation)}:
        raise ValueError(f"{where}: slots {sorted(unused)} never appear in the situation.")
    # The situation starts a sentence in every format, with any fill.
    first = {slot: pools[pool][0] for slot, pool in t.slots.items()}
    if not render(t.situation, first)[:1].isupper():
        raise ValueError(f"{where}: the situation must start with a capital (try {{slot:cap}}).")


@functools.cache
def load_grammar() -> Grammar:
    """Loads and validates the grammar shipped in `pathjax/data/grammar/`."""
    root = _grammar_dir()
    digest = hashlib.sha256()
    fills_bytes = (root / "fills.json").read_bytes()
    digest.update(fills_bytes)
    raw_pools = json.loads(fills_bytes)["pools"]
    protagonists = tuple(raw_pools.pop("protagonist"))
    pools = {name: tuple(_parse_fill(f) for f in fills) for name, fills in raw_pools.items()}
    for name, fills in pools.items():
        if len(fills) < _VALIDATION_EVERY or len({f.text for f in fills}) != len(fills):
            raise ValueError(f"pool {name}: needs {_VALIDATION_EVERY}+ distinct fills.")
        for fill in fills:
            _check_text(fill.text, f"pool {name}", is_action=False)

    domains = []
    for path in sorted((root / "domains").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".json"):
            continue
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data)
        raw = json.loads(data)
        name, domain_held_out = raw["domain"], bool(raw["held_out"])
        templates = []
        for rt in raw["templates"]:
            t = Template(
                id=rt["id"],
                domain=name,
                held_out=bool(rt["held_out"]) or domain_held_out,
                slots=dict(rt["slots"]),
                situation=rt["situation"],
                actions={c: tuple(rt["actions"][c]) for c in rt["actions"]},
            )
            if domain_held_out and not rt["held_out"]:
                raise ValueError(f"template {t.id}: its domain is held out, so must it be.")
            _check_template(t, pools)
            templates.append(t)
        domains.append(Domain(name, domain_held_out, tuple(templates)))

    ids = [t.id for d in domains for t in d.templates]
    if len(set(ids)) != len(ids):
        raise ValueError("template ids must be unique.")
    return Grammar(tuple(domains), pools, protagonists, digest.hexdigest())
