"""The scenario grammar: its size, its held-out structure, and the words it must never use."""

import re

import pytest

from pathjax.data import perspective, scenarios, schema, vetting


@pytest.fixture(scope="module")
def grammar():
    return scenarios.load_grammar()


def _all_texts(grammar):
    for t in grammar.templates:
        yield t.id, t.situation
        for cls, paraphrases in t.actions.items():
            for text in paraphrases:
                yield f"{t.id}/{cls}", text
    for pool, fills in grammar.pools.items():
        for fill in fills:
            yield pool, fill.text


def test_size_and_held_out_structure(grammar):
    assert len(grammar.domains) >= 12
    assert sum(d.held_out for d in grammar.domains) >= 3
    assert len(grammar.templates) >= 120
    held_out = [t for t in grammar.templates if t.held_out]
    assert len(held_out) >= 0.2 * len(grammar.templates)
    # Every training domain also holds out templates, so test_templates covers them all.
    training_domains = {d.name for d in grammar.domains if not d.held_out}
    assert {t.domain for t in grammar.split_templates("test_templates")} == training_domains
    for t in grammar.templates:
        assert set(t.actions) == set(schema.ACTION_CLASSES)
        assert all(len(set(p)) >= 3 for p in t.actions.values()), t.id


def test_split_templates_are_disjoint(grammar):
    train = {t.id for t in grammar.split_templates("train")}
    assert train == {t.id for t in grammar.split_templates("validation")}
    for split in ("test_templates", "test_domains", "test_format"):
        assert not train & {t.id for t in grammar.split_templates(split)}, split
    held_out_domains = {d.name for d in grammar.domains if d.held_out}
    assert not held_out_domains & {t.domain for t in grammar.split_templates("train")}


def test_validation_fills_are_unseen_in_training(grammar):
    for pool in grammar.pools:
        train = set(grammar.split_pool("train", pool))
        validation = set(grammar.split_pool("validation", pool))
        assert validation and not train & validation, pool


def test_no_banned_word_in_the_raw_grammar(grammar):
    found = {
        where: hits for where, text in _all_texts(grammar) if (hits := vetting.find_banned(text))
    }
    assert not found


@pytest.mark.parametrize(
    "text",
    [
        "I stay home because I'm depressed",
        "Paranoid thoughts keep me up",
        "my anxiety is bad today",
        "I am a shy person",
        "I'm the kind of person who stays in",
        "I feel so sad",
        "I feel down and stay in",
        "it's a mental health day",
        "I'm suspicious of him",
    ],
)
def test_vetting_catches_clinical_mood_and_persona_words(text):
    assert vetting.find_banned(text)


@pytest.mark.parametrize(
    "text", ["I saddle the horse", "my personal account", "a madam at the door", "I tell Maya no"]
)
def test_vetting_spares_innocent_words(text):
    assert not vetting.find_banned(text)


def test_placeholders_render_with_pronouns(grammar):
    fills = {"friend": scenarios.Fill("Maya", "she"), "relative": scenarios.Fill("my dad", "he")}
    text = (
        "{relative:cap} asks {friend} about {friend:poss} car; {friend:subj} tells {relative:obj}"
    )
    assert scenarios.render(text, fills) == "My dad asks Maya about her car; she tells him"


def test_third_person_leaves_no_first_person_outside_quotes(grammar):
    first_person = re.compile(r"\b(I|I'm|I've|I'd|I'll|me|my|mine|myself|we|us|our)\b", re.I)
    for where, text in _all_texts(grammar):
        third = perspective.to_third_person(text)
        unquoted = re.sub(r'"[^"]*"', "", third)
        assert not first_person.search(unquoted), (where, third)
        assert not re.search(r"\bthey (am|was|wasn't)\b", third, re.I), (where, third)


def test_third_person_rewrites():
    cases = {
        "I tell Maya I'm too tired and stay home": "They tell Maya they're too tired and stay home",
        "my sister asks me. I was late": "their sister asks them. They were late",
        'text Maya "I can\'t come" and tell myself so': (
            'text Maya "I can\'t come" and tell themselves so'
        ),
    }
    for first, third in cases.items():
        assert perspective.to_third_person(first) == third


def test_bad_template_is_rejected():
    bad = scenarios.Template(
        id="work.bad",
        domain="work",
        held_out=False,
        slots={"friend": "person"},
        situation="{friend} asks me something.",
        actions={c: ("do a", "do b", "do c") for c in schema.ACTION_CLASSES},
    )
    with pytest.raises(ValueError, match="ends with punctuation"):
        scenarios._check_template(bad, scenarios.load_grammar().pools)
