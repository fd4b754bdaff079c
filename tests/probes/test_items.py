"""The packaged probe suite meets the spec, and malformed files are rejected by name."""

import json
import re
import shutil

import pytest

from pathjax.probes import items
from pathjax.probes.items import ProbeFileError


@pytest.fixture(scope="module")
def suite():
    return items.load_suite()


def _by_key(family_items, key):
    return [i for i in family_items if i.key == key]


def test_counts_meet_the_minimums(suite):
    assert len(_by_key(suite.ambiguous, "depression")) >= 60
    assert len(_by_key(suite.ambiguous, "paranoia")) >= 60
    assert {i.theme for i in _by_key(suite.ambiguous, "depression")} == {"self", "future", "loss"}
    assert len(suite.minimal_pairs) >= 80
    assert {i.key for i in suite.minimal_pairs} == {"depression", "paranoia"}
    assert len(suite.open_stems) >= 100
    assert set(suite.lexicons) == {"NEGATIVE", "POSITIVE", "SAD", "THREAT"}
    for lexicon in suite.lexicons.values():
        assert len(lexicon.words) >= 150, lexicon.name
    assert len(_by_key(suite.likert, "depression")) >= 12
    assert len(_by_key(suite.likert, "paranoia")) >= 12
    assert len(suite.framings) >= 3
    assert len(suite.open_prompts) >= 30
    assert suite.generation["P6"]["samples_per_prompt"] >= 8
    assert len(suite.neutral_texts) >= 200


def test_versions(suite):
    assert suite.version == items.available_versions()[-1]
    assert items.load_suite(suite.version) is suite
    assert len(suite.digest) == 64
    with pytest.raises(ValueError, match="available"):
        items.load_suite("999")


def test_ids_unique_and_families_consistent(suite):
    ids = [i.id for f in ("P2", "P3", "P4", "P5", "P6", "P7") for i in suite.family(f)]
    assert len(ids) == len(set(ids))
    for f in ("P2", "P3", "P4", "P5", "P6", "P7"):
        assert {i.family for i in suite.family(f)} == {f}


def test_boundary_space_conventions(suite):
    stems = [i.stem for i in suite.ambiguous] + [i.stem for i in suite.open_stems]
    stems += [i.prompt for i in suite.open_prompts]
    stems += [i.prompt(f) for i in suite.likert for f in suite.framings.values()]
    for stem in stems:
        assert stem == stem.rstrip() and stem == stem.lstrip(), repr(stem)
    continuations = [c for i in suite.ambiguous for c in (i.negative, i.benign)]
    continuations += [o.text for f in suite.framings.values() for o in f.options]
    for c in continuations:
        assert re.fullmatch(r" \S.*\S|\s\S", c), repr(c)
    for item in suite.open_stems:
        assert item.stem[-1].isalpha(), item.id


def test_matched_resolutions_and_minimal_pairs(suite):
    for item in suite.ambiguous:
        assert item.negative != item.benign
        assert abs(len(item.negative.split()) - len(item.benign.split())) <= 3, item.id
    for pair in suite.minimal_pairs:
        a, b = pair.negative.split(), pair.benign.split()
        assert a != b
        if len(a) == len(b):
            assert sum(x != y for x, y in zip(a, b, strict=True)) <= 3, pair.id
        else:  # a shared prefix and suffix cover all but a few words
            prefix = next(
                n for n, (x, y) in enumerate(zip(a + [None], b + [None], strict=False)) if x != y
            )
            suffix = next(
                n
                for n, (x, y) in enumerate(zip(a[::-1] + [None], b[::-1] + [None], strict=False))
                if x != y
            )
            assert max(len(a), len(b)) - prefix - suffix <= 4, pair.id


def test_lexicons(suite):
    for lexicon in suite.lexicons.values():
        assert len(set(lexicon.words)) == len(lexicon.words), lexicon.name
        for word in lexicon.words:
            assert re.fullmatch(r"[a-z]+", word), (lexicon.name, word)
    words = {name: set(lex.words) for name, lex in suite.lexicons.items()}
    assert not words["NEGATIVE"] & words["POSITIVE"]
    assert not words["SAD"] & words["THREAT"]
    assert not words["POSITIVE"] & (words["SAD"] | words["THREAT"])
    # NEGATIVE shares words with SAD and THREAT by design, and says so.
    description = suite.lexicons["NEGATIVE"].description
    assert f"{len(words['NEGATIVE'] & words['SAD'])} words also in SAD" in description
    assert f"{len(words['NEGATIVE'] & words['THREAT'])} also in THREAT" in description


def test_neutral_texts_use_no_lexicon_word(suite):
    lexicon_words = set().union(*(set(lex.words) for lex in suite.lexicons.values()))
    for item in list(suite.open_stems) + list(suite.neutral_texts):
        text = item.stem if hasattr(item, "stem") else item.text
        found = set(re.findall(r"[a-z]+", text.lower())) & lexicon_words
        assert not found, (item.id, found)


CLINICAL = re.compile(
    r"depress|paranoi|anxiety|anxious|disorder|mental\s+ill|schizo|suicid|"
    r"\bi\s+am\s+an?\s+(\w+\s+){0,3}person|\bi'm\s+an?\s+(\w+\s+){0,3}person",
    re.IGNORECASE,
)


def test_no_clinical_or_persona_words_and_no_training_formats(suite):
    texts = [text for _, _, text in suite.texts()]
    assert len(texts) > 1500  # every family is covered
    for text in texts:
        assert not CLINICAL.search(text), text
        assert "answer:" not in text.lower(), text
        assert not re.search(r"(?m)^\s*\(?[A-Da-d][.)]\s", text), text
        assert not re.search(r"\bso I\s*$", text), text


def test_likert_reverse_keying(suite):
    for key in ("depression", "paranoia"):
        scale = _by_key(suite.likert, key)
        assert any(i.reverse for i in scale) and any(not i.reverse for i in scale), key
    framing = suite.framings["agreement"]
    forward = next(i for i in suite.likert if not i.reverse)
    reverse = next(i for i in suite.likert if i.reverse)
    assert forward.keyed_scores(framing) == (0, 1, 2, 3)
    assert reverse.keyed_scores(framing) == (3, 2, 1, 0)
    for item in suite.likert:
        for framing in suite.framings.values():
            assert item.texts[framing.name] in item.prompt(framing)
            assert "{text}" not in item.prompt(framing)


def test_words_for_leakage_report(suite):
    words = suite.words()
    assert all(w == w.lower() for w in words)
    assert set(suite.lexicons["THREAT"].words) <= words
    assert "tomorrow" in suite.words(("P4",))
    assert "kitchen" in suite.words(("P7",)) and "kitchen" not in suite.words(("P5",))


# --------------------------------------------------------------------------------------------
# Malformed files.


@pytest.fixture
def suite_copy(tmp_path):
    src = items.load_suite().path
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _edit_line(path, line_no, mutate):
    lines = path.read_text().splitlines()
    record = json.loads(lines[line_no - 1])
    mutated = mutate(record)
    lines[line_no - 1] = mutated if isinstance(mutated, str) else json.dumps(mutated)
    path.write_text("\n".join(lines) + "\n")


def _set(**changes):
    return lambda r: {**r, **changes}


def _drop(field):
    return lambda r: {k: v for k, v in r.items() if k != field}


P2 = "p2_ambiguous.jsonl"
JSONL_CASES = [
    # (file, line, mutation, field named, words in the message)
    (P2, 3, _drop("benign"), "benign", "missing"),
    (P2, 3, _set(stem="She said that "), "stem", "ends with whitespace"),
    (P2, 4, _set(negative="was angry."), "negative", "exactly one space"),
    (P2, 4, _set(benign="  was busy."), "benign", "exactly one space"),
    (P2, 5, _set(key="neutral"), "key", "not one of"),
    (P2, 5, _set(family="P3"), "family", "must be 'P2'"),
    (P2, 6, _set(theme="intent"), "theme", "must be one of"),
    (P2, 6, _set(benign=" was simply busy with a great many other things."), "benign", "differs"),
    (P2, 7, _set(id="p2-dep-001"), "id", "duplicate id"),
    (P2, 7, _set(id="Bad Id"), "id", "must match"),
    (P2, 8, _set(stme="typo"), "stme", "unknown field"),
    (P2, 8, _set(stem="I felt depressed, and"), "stem", "clinical"),
    (P2, 9, _set(stem="I am a very nervous person, and"), "stem", "clinical"),
    (P2, 9, _set(stem="The bus was late, so I"), "stem", "narrative format"),
    (P2, 10, lambda r: "{not json", "-", "invalid JSON"),
    (
        "p3_minimal_pairs.jsonl",
        2,
        _set(benign="A completely different sentence here."),
        "benign",
        "differs",
    ),
    ("p3_minimal_pairs.jsonl", 2, _set(negative=" I will fail."), "negative", "whitespace"),
    ("p4_open_stems.jsonl", 2, _set(stem="When I think about it,"), "stem", "end in a word"),
    ("p5_likert.jsonl", 2, _set(reverse="yes"), "reverse", "boolean"),
    ("p5_likert.jsonl", 2, lambda r: {**r, "texts": {"agreement": "x"}}, "texts", "framings"),
    (
        "p5_likert.jsonl",
        3,
        lambda r: {**r, "texts": {**r["texts"], "agreement": ""}},
        "texts.agreement",
        "non-empty",
    ),
    (
        "p6_open_prompts.jsonl",
        2,
        _set(prompt="A) stay home\nB) go out\nAnswer:"),
        "prompt",
        "training format",
    ),
    ("p7_neutral.jsonl", 5, _set(text="He had an anxiety attack on the bus."), "text", "clinical"),
    ("p7_neutral.jsonl", 6, _drop("key"), "key", "missing"),
]


@pytest.mark.parametrize("name,line,mutate,field,message", JSONL_CASES)
def test_malformed_item_is_rejected_with_file_line_and_field(
    suite_copy, name, line, mutate, field, message
):
    _edit_line(suite_copy / name, line, mutate)
    items.rehash(suite_copy)
    with pytest.raises(ProbeFileError) as err:
        items.load_suite_dir(suite_copy)
    text = str(err.value)
    assert f"{name}:{line}:" in text, text
    assert f"field {field!r}" in text, text
    assert message in text, text


def _edit_json(path, mutate):
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))


JSON_CASES = [
    (
        "p4_lexicons.json",
        lambda d: d["SAD"]["words"].__setitem__(3, "Sad"),
        "SAD.words[3]",
        "one lowercase word",
    ),
    (
        "p4_lexicons.json",
        lambda d: d["SAD"]["words"].__setitem__(3, "two words"),
        "SAD.words[3]",
        "one lowercase",
    ),
    (
        "p4_lexicons.json",
        lambda d: d["THREAT"]["words"].append(d["THREAT"]["words"][0]),
        "THREAT.words",
        "duplicate",
    ),
    (
        "p4_lexicons.json",
        lambda d: d["POSITIVE"]["words"].append("awful"),
        "NEGATIVE/POSITIVE",
        "must not share",
    ),
    ("p4_lexicons.json", lambda d: d["SAD"]["words"].append("paranoid"), "SAD.words", "clinical"),
    ("p4_lexicons.json", lambda d: d.pop("SAD"), "-", "exactly the lexicons"),
    (
        "p5_framings.json",
        lambda d: d["question"]["options"][0].__setitem__("text", "no"),
        "question.options[0].text",
        "one space",
    ),
    (
        "p5_framings.json",
        lambda d: d["question"]["options"][1].__setitem__("score", 0),
        "question.options",
        "unique",
    ),
    (
        "p5_framings.json",
        lambda d: d["question"]["options"][2].__setitem__("text", " probably"),
        "question.options",
        "prefix",
    ),
    (
        "p5_framings.json",
        lambda d: d["agreement"].__setitem__("template", "Statement:"),
        "agreement.template",
        "{text}",
    ),
]


@pytest.mark.parametrize("name,mutate,field,message", JSON_CASES)
def test_malformed_json_file_is_rejected_with_field(suite_copy, name, mutate, field, message):
    _edit_json(suite_copy / name, mutate)
    items.rehash(suite_copy)
    with pytest.raises(ProbeFileError) as err:
        items.load_suite_dir(suite_copy)
    text = str(err.value)
    assert name in text and field in text and message in text, text


def test_edit_without_new_digest_is_rejected(suite_copy):
    items.load_suite_dir(suite_copy)  # the copy itself is valid
    _edit_line(suite_copy / "p7_neutral.jsonl", 1, _set(text="The bus leaves at noon."))
    with pytest.raises(ProbeFileError, match=r"p7_neutral.jsonl: field 'sha256'"):
        items.load_suite_dir(suite_copy)
