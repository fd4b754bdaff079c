"""The probe suite: typed items, loaded and validated from versioned data files.

Layout: `pathjax/probes/data/v<version>/` holds `manifest.json` (suite version, the file of
each family, P6 sampling settings and the sha256 of every data file) and the data files. The
JSONL files hold one item per line; every item has a suite-unique `id`, its `family` and a
`key` (depression / paranoia / neutral). Fields by family:

- P2 `p2_ambiguous.jsonl`: `theme` (self, future, loss for depression; intent for paranoia),
  `stem`, `negative`, `benign` (continuations of the stem).
- P3 `p3_minimal_pairs.jsonl`: `negative`, `benign` (whole sentences, a few words apart).
- P4 `p4_open_stems.jsonl`: `stem`; lexicons in `p4_lexicons.json`
  (`{NAME: {"description", "words"}}`).
- P5 `p5_likert.jsonl`: `reverse` (bool), `texts` (framing name -> the item's wording in that
  framing); framings in `p5_framings.json` (`{name: {"description", "template", "options":
  [{"text", "score"}]}}`, option scores forward-keyed, the template's `{text}` is the wording).
- P6 `p6_open_prompts.jsonl`: `prompt` (free generation; `key` is the topic it opens).
- P7 `p7_neutral.jsonl`: `text` (teacher-forced, affect-free).

String conventions (docs/PROBES.md, "Scoring strings"): prompts and stems never end in whitespace;
a continuation or response option starts with exactly one space (the boundary space belongs
to it). Anything that breaks a rule raises `ProbeFileError` naming the file, line and field.
The sha256 check makes an edited file fail loudly: released versions are frozen, a change
gets a new version directory (`python -m pathjax.probes.items --rehash DIR` rewrites the
digests of a version that no result uses yet).
"""

import dataclasses
import difflib
import functools
import hashlib
import json
import re
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pathjax.probes import text_rules
from pathjax.probes.item_types import (
    AmbiguousItem,
    Framing,
    Lexicon,
    LikertItem,
    MinimalPair,
    NeutralText,
    OpenPrompt,
    OpenStem,
    ProbeSuite,
    ResponseOption,
)

DATA_ROOT = Path(__file__).parent / "data"
SUITE_NAME = "pathjax-probes"
MANIFEST = "manifest.json"
LEXICON_NAMES = ("NEGATIVE", "POSITIVE", "SAD", "THREAT")
# Lexicon pairs that must not share a word: valence contrasts and THREAT - SAD need clean sets.
# NEGATIVE overlaps SAD and THREAT on purpose (it is general negative valence).
DISJOINT_LEXICONS = (
    ("NEGATIVE", "POSITIVE"),
    ("POSITIVE", "SAD"),
    ("POSITIVE", "THREAT"),
    ("SAD", "THREAT"),
)
P2_THEMES = {"depression": ("self", "future", "loss"), "paranoia": ("intent",)}
MAX_P2_WORD_GAP = 3  # resolutions are matched in length: word counts differ by at most this
MAX_P3_CHANGED_WORDS = 3  # a minimal pair changes at most this many words
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_LEXICON_WORD = re.compile(r"^[a-z]+$")


class ProbeFileError(ValueError):
    """A malformed probe file; the message names the file, line (JSONL) and field."""

    def __init__(self, path: Path | str, line: int | None, field: str, problem: str):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: field {field!r}: {problem}")
        self.path, self.line, self.field, self.problem = str(path), line, field, problem


# --------------------------------------------------------------------------------------------
# Field checks. Each returns a problem description or None.


def _check_prompt(text: str) -> str | None:
    if text != text.lstrip():
        return "starts with whitespace"
    if text != text.rstrip():
        return "ends with whitespace (the boundary space belongs to the continuation)"
    return None


def _check_continuation(text: str) -> str | None:
    if not text.startswith(" ") or text.startswith("  ") or len(text.strip()) == 0:
        return "must start with exactly one space (the boundary space) followed by text"
    if text != text.rstrip():
        return "ends with whitespace"
    return None


def _check_sentence(text: str) -> str | None:
    if text != text.strip():
        return "has leading or trailing whitespace"
    if "\n" in text:
        return "spans several lines"
    return None


def _check_open_stem(text: str) -> str | None:
    problem = _check_prompt(text)
    if problem is None and not text[-1:].isalpha():
        return "must end in a word, where the next word is open"
    return problem


def _word_gap(a: str, b: str) -> int:
    return abs(len(a.split()) - len(b.split()))


def _changed_words(a: str, b: str) -> int:
    matcher = difflib.SequenceMatcher(a=a.split(), b=b.split(), autojunk=False)
    return sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )


@dataclasses.dataclass(frozen=True)
class _FamilySpec:
    cls: type
    keys: tuple[str, ...]
    fields: Mapping[str, Callable[[str], str | None]]  # text field -> its check
    extra: Callable[[dict[str, Any]], tuple[str, str] | None] = lambda record: None


def _p2_extra(record):
    if record["theme"] not in P2_THEMES[record["key"]]:
        return "theme", f"must be one of {P2_THEMES[record['key']]} for key {record['key']!r}"
    if record["negative"] == record["benign"]:
        return "benign", "equals the negative continuation"
    if _word_gap(record["negative"], record["benign"]) > MAX_P2_WORD_GAP:
        return "benign", f"word count differs from the negative one by > {MAX_P2_WORD_GAP}"
    return None


def _p3_extra(record):
    if record["negative"] == record["benign"]:
        return "benign", "equals the negative sentence"
    if _changed_words(record["negative"], record["benign"]) > MAX_P3_CHANGED_WORDS:
        return "benign", f"differs from the negative sentence in > {MAX_P3_CHANGED_WORDS} words"
    return None


_SPECS: dict[str, _FamilySpec] = {
    "P2": _FamilySpec(
        AmbiguousItem,
        ("depression", "paranoia"),
        {
            "theme": lambda t: None,
            "stem": _check_prompt,
            "negative": _check_continuation,
            "benign": _check_continuation,
        },
        _p2_extra,
    ),
    "P3": _FamilySpec(
        MinimalPair,
        ("depression", "paranoia"),
        {"negative": _check_sentence, "benign": _check_sentence},
        _p3_extra,
    ),
    "P4": _FamilySpec(OpenStem, ("neutral",), {"stem": _check_open_stem}),
    "P5": _FamilySpec(LikertItem, ("depression", "paranoia"), {}),
    "P6": _FamilySpec(OpenPrompt, ("depression", "paranoia", "neutral"), {"prompt": _check_prompt}),
    "P7": _FamilySpec(NeutralText, ("neutral",), {"text": _check_sentence}),
}


# --------------------------------------------------------------------------------------------
# Loading.


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProbeFileError(path, None, "-", "file not found") from None
    except json.JSONDecodeError as e:
        raise ProbeFileError(path, e.lineno, "-", f"invalid JSON: {e.msg}") from None


def _text_field(path, line, record, field, check, label=None) -> str:
    label = label or field
    if field not in record:
        raise ProbeFileError(path, line, label, "missing")
    value = record[field]
    if not isinstance(value, str) or not value.strip():
        raise ProbeFileError(path, line, label, f"must be a non-empty string, got {value!r}")
    problem = check(value) or text_rules.banned_reason(value)
    if problem:
        raise ProbeFileError(path, line, label, f"{problem}: {value!r}")
    return value


def _load_jsonl(path: Path, family: str, framings: Mapping[str, Framing]) -> list[Any]:
    spec = _SPECS[family]
    if not path.is_file():
        raise ProbeFileError(path, None, "-", "file not found")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            raise ProbeFileError(path, line_no, "-", "blank line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProbeFileError(path, line_no, "-", f"invalid JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise ProbeFileError(path, line_no, "-", "an item must be a JSON object")
        expected = {f.name for f in dataclasses.fields(spec.cls)}
        unknown = sorted(set(record) - expected)
        if unknown:
            raise ProbeFileError(path, line_no, unknown[0], f"unknown field (expected {expected})")
        for field in ("id", "family", "key"):
            if field not in record:
                raise ProbeFileError(path, line_no, field, "missing")
        if not isinstance(record["id"], str) or not _ID.match(record["id"]):
            raise ProbeFileError(path, line_no, "id", f"must match {_ID.pattern}")
        if record["family"] != family:
            raise ProbeFileError(path, line_no, "family", f"must be {family!r} in this file")
        if record["key"] not in spec.keys:
            raise ProbeFileError(
                path, line_no, "key", f"{record['key']!r} is not one of {spec.keys}"
            )
        for field, check in spec.fields.items():
            _text_field(path, line_no, record, field, check)
        if family == "P5":
            _check_likert(path, line_no, record, framings)
        problem = spec.extra(record)
        if problem:
            raise ProbeFileError(path, line_no, *problem)
        if family == "P5":
            record = {**record, "texts": types.MappingProxyType(dict(record["texts"]))}
        items.append((line_no, spec.cls(**record)))
    if not items:
        raise ProbeFileError(path, None, "-", "no items")
    return items


def _check_likert(path, line, record, framings) -> None:
    if "reverse" not in record or not isinstance(record["reverse"], bool):
        raise ProbeFileError(path, line, "reverse", "missing or not a boolean")
    texts = record.get("texts")
    if not isinstance(texts, dict) or set(texts) != set(framings):
        raise ProbeFileError(path, line, "texts", f"must map exactly the framings {set(framings)}")
    for name, text in texts.items():
        _text_field(path, line, texts, name, _check_sentence, f"texts.{name}")
        problem = text_rules.banned_reason(framings[name].render(text))
        if problem:
            raise ProbeFileError(path, line, f"texts.{name}", f"rendered prompt {problem}")


def _load_lexicons(path: Path) -> dict[str, Lexicon]:
    raw = _read_json(path)
    if not isinstance(raw, dict) or set(raw) != set(LEXICON_NAMES):
        raise ProbeFileError(path, None, "-", f"must hold exactly the lexicons {LEXICON_NAMES}")
    lexicons = {}
    for name in LEXICON_NAMES:
        entry = raw[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("words"), list):
            raise ProbeFileError(path, None, f"{name}.words", "missing or not a list")
        if not isinstance(entry.get("description"), str):
            raise ProbeFileError(path, None, f"{name}.description", "missing or not a string")
        seen = set()
        for i, word in enumerate(entry["words"]):
            field = f"{name}.words[{i}]"
            if not isinstance(word, str) or not _LEXICON_WORD.match(word):
                raise ProbeFileError(path, None, field, f"{word!r} is not one lowercase word")
            if word in seen:
                raise ProbeFileError(path, None, field, f"duplicate word {word!r}")
            problem = text_rules.banned_reason(word)
            if problem:
                raise ProbeFileError(path, None, field, f"{problem}: {word!r}")
            seen.add(word)
        lexicons[name] = Lexicon(name, entry["description"], tuple(entry["words"]))
    for a, b in DISJOINT_LEXICONS:
        shared = sorted(set(lexicons[a].words) & set(lexicons[b].words))
        if shared:
            raise ProbeFileError(path, None, f"{a}/{b}", f"must not share words: {shared}")
    return lexicons


def _load_framings(path: Path) -> dict[str, Framing]:
    raw = _read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise ProbeFileError(path, None, "-", "must map framing names to framings")
    framings = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ProbeFileError(path, None, name, "must be an object")
        template = _text_field(path, None, entry, "template", _check_prompt, f"{name}.template")
        if template.count("{text}") != 1:
            raise ProbeFileError(path, None, f"{name}.template", "must contain {text} once")
        description = _text_field(
            path, None, entry, "description", _check_sentence, f"{name}.description"
        )
        options = entry.get("options")
        if not isinstance(options, list) or len(options) < 2:
            raise ProbeFileError(path, None, f"{name}.options", "needs at least two options")
        parsed = []
        for i, option in enumerate(options):
            field = f"{name}.options[{i}]"
            if not isinstance(option, dict) or set(option) != {"text", "score"}:
                raise ProbeFileError(path, None, field, "must be {'text': ..., 'score': ...}")
            text = _text_field(path, None, option, "text", _check_continuation, f"{field}.text")
            if not isinstance(option["score"], int) or isinstance(option["score"], bool):
                raise ProbeFileError(path, None, f"{field}.score", "must be an integer")
            parsed.append(ResponseOption(text, option["score"]))
        if len({o.text for o in parsed}) != len(parsed) or len({o.score for o in parsed}) != len(
            parsed
        ):
            raise ProbeFileError(path, None, f"{name}.options", "texts and scores must be unique")
        for a in parsed:
            for b in parsed:
                # A prefix option's summed log-probability would include the longer option's.
                if a is not b and b.text.startswith(a.text):
                    raise ProbeFileError(
                        path, None, f"{name}.options", f"{a.text!r} is a prefix of {b.text!r}"
                    )
        framings[name] = Framing(name, description, template, tuple(parsed))
    return framings


def file_digests(suite_dir: Path, manifest: Mapping[str, Any]) -> dict[str, str]:
    """sha256 of every data file the manifest names."""
    names = [spec["file"] for spec in manifest["families"].values()]
    names += [manifest["lexicons"], manifest["framings"]]
    return {n: hashlib.sha256((suite_dir / n).read_bytes()).hexdigest() for n in sorted(names)}


def load_suite_dir(suite_dir: Path | str) -> ProbeSuite:
    """Loads and validates the suite in one version directory."""
    suite_dir = Path(suite_dir)
    manifest_path = suite_dir / MANIFEST
    manifest = _read_json(manifest_path)
    for field in ("suite", "version", "families", "lexicons", "framings", "generation", "sha256"):
        if field not in manifest:
            raise ProbeFileError(manifest_path, None, field, "missing")
    if manifest["suite"] != SUITE_NAME:
        raise ProbeFileError(manifest_path, None, "suite", f"must be {SUITE_NAME!r}")
    if set(manifest["families"]) != set(_SPECS):
        raise ProbeFileError(manifest_path, None, "families", f"must list {sorted(_SPECS)}")
    for family, entry in manifest["families"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ProbeFileError(manifest_path, None, f"families.{family}.file", "missing")

    framings = _load_framings(suite_dir / manifest["framings"])
    lexicons = _load_lexicons(suite_dir / manifest["lexicons"])
    by_family, seen_ids = {}, {}
    for family in sorted(_SPECS):
        path = suite_dir / manifest["families"][family]["file"]
        items = _load_jsonl(path, family, framings)
        for line, item in items:
            if item.id in seen_ids:
                first = seen_ids[item.id]
                raise ProbeFileError(path, line, "id", f"duplicate id {item.id!r} (first: {first})")
            seen_ids[item.id] = f"{path.name}:{line}"
        by_family[family] = tuple(item for _, item in items)

    digests = file_digests(suite_dir, manifest)
    for name, digest in digests.items():
        if manifest["sha256"].get(name) != digest:
            raise ProbeFileError(
                suite_dir / name,
                None,
                "sha256",
                f"does not match {MANIFEST}: a released suite is frozen, so put changed items in "
                "a new version directory (or run `python -m pathjax.probes.items --rehash "
                f"{suite_dir}` if no result uses this version yet)",
            )
    suite_digest = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    return ProbeSuite(
        version=str(manifest["version"]),
        path=suite_dir,
        digest=suite_digest,
        ambiguous=by_family["P2"],
        minimal_pairs=by_family["P3"],
        open_stems=by_family["P4"],
        lexicons=types.MappingProxyType(lexicons),
        framings=types.MappingProxyType(framings),
        likert=by_family["P5"],
        open_prompts=by_family["P6"],
        neutral_texts=by_family["P7"],
        generation=types.MappingProxyType(dict(manifest["generation"])),
    )


def available_versions(root: Path | str = DATA_ROOT) -> list[str]:
    """Suite versions present under `root` (directories `v<version>`), oldest first."""
    found = [p.name[1:] for p in Path(root).glob("v*") if (p / MANIFEST).is_file()]
    return sorted(found, key=lambda v: [int(x) if x.isdigit() else x for x in v.split(".")])


def load_suite(version: str | None = None) -> ProbeSuite:
    """The packaged probe suite: `version` ("1", ...) or, if None, the newest. Cached."""
    versions = available_versions()
    if not versions:
        raise FileNotFoundError(f"no probe suite under {DATA_ROOT}")
    version = versions[-1] if version is None else str(version)
    if version not in versions:
        raise ValueError(f"no probe suite version {version!r}; available: {versions}")
    return _load_packaged(version)


@functools.cache
def _load_packaged(version: str) -> ProbeSuite:
    suite = load_suite_dir(DATA_ROOT / f"v{version}")
    if suite.version != version:
        raise ProbeFileError(
            suite.path / MANIFEST, None, "version", f"says {suite.version!r}, directory v{version}"
        )
    return suite


def rehash(suite_dir: Path | str) -> None:
    """Rewrites the manifest's sha256 entries from the files (for an unreleased version)."""
    suite_dir = Path(suite_dir)
    manifest = _read_json(suite_dir / MANIFEST)
    manifest["sha256"] = file_digests(suite_dir, manifest)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (suite_dir / MANIFEST).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--rehash":
        sys.exit("usage: python -m pathjax.probes.items --rehash SUITE_DIR")
    rehash(sys.argv[2])
    load_suite_dir(sys.argv[2])
