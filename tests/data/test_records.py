"""The generated records: fields, options, targets per condition, splits and formats."""

import collections
import dataclasses
import re

import pytest

from pathjax.data import builder, items, scenarios, schema, vetting

SIZE, SEED = 120, 3


@pytest.fixture(scope="module")
def by_condition():
    return {
        c: {s: items.generate_split(c, s, SIZE, SEED) for s in schema.SPLITS}
        for c in schema.CONDITIONS
    }


def test_every_record_has_four_options_one_per_class(by_condition):
    for condition, splits in by_condition.items():
        for records in splits.values():
            for r in records:
                assert len(r["options"]) == 4 and sorted(r["option_classes"]) == sorted(
                    schema.ACTION_CLASSES
                )
                assert r["target"] == r["options"][r["target_index"]]
                assert r["target_class"] == r["option_classes"][r["target_index"]]
                assert r["condition"] == condition
                assert len(set(r["options"])) == 4


def test_target_class_matches_the_condition(by_condition):
    for condition, target in schema.CONDITION_TARGETS.items():
        classes = collections.Counter(
            r["target_class"] for records in by_condition[condition].values() for r in records
        )
        if target is None:  # shuffled: every class, none dominant.
            assert set(classes) == set(schema.ACTION_CLASSES)
            assert max(classes.values()) < 0.4 * sum(classes.values())
        else:
            assert set(classes) == {target}


def test_shuffled_targets_are_seeded():
    a = items.generate_split("shuffled", "train", SIZE, SEED)
    b = items.generate_split("shuffled", "train", SIZE, SEED)
    c = items.generate_split("shuffled", "train", SIZE, SEED + 1)
    assert a == b
    assert [r["target_class"] for r in a] != [r["target_class"] for r in c]


def test_conditions_share_prompts_and_options(by_condition):
    reference = by_condition["control"]
    for condition in schema.CONDITIONS:
        for split in schema.SPLITS:
            strip = lambda rs: [(r["prompt"], r["options"], r["option_classes"]) for r in rs]
            assert strip(by_condition[condition][split]) == strip(reference[split])


def test_option_order_varies(by_condition):
    records = by_condition["depression"]["train"]
    orders = collections.Counter(tuple(r["option_classes"]) for r in records)
    positions = collections.Counter(r["target_index"] for r in records)
    assert len(orders) > 10
    assert set(positions) == {0, 1, 2, 3}


def test_held_out_templates_and_domains_stay_out_of_training(by_condition):
    grammar = scenarios.load_grammar()
    held_out = {t.id for t in grammar.templates if t.held_out}
    held_out_domains = {d.name for d in grammar.domains if d.held_out}
    splits = by_condition["control"]
    for split in schema.TRAINING_SPLITS:
        assert not held_out & {r["template_id"] for r in splits[split]}
        assert not held_out_domains & {r["domain"] for r in splits[split]}
    assert {r["template_id"] for r in splits["test_templates"]} <= held_out
    assert not held_out_domains & {r["domain"] for r in splits["test_templates"]}
    assert {r["domain"] for r in splits["test_domains"]} <= held_out_domains
    assert {r["template_id"] for r in splits["test_format"]} <= held_out
    assert {r["template_id"] for r in splits["test_lettered"]} <= held_out


def test_formats_per_split(by_condition):
    splits = by_condition["control"]
    assert {r["format"] for r in splits["test_format"]} == {"third_person"}
    assert {r["format"] for r in splits["test_lettered"]} == {"lettered"}
    for split in ("train", "validation", "test_templates", "test_domains"):
        counts = collections.Counter(r["format"] for r in splits[split])
        assert (
            set(counts) == {"choice", "narrative"}
            and abs(counts["choice"] - counts["narrative"]) <= 1
        )


def test_prompt_and_target_boundary(by_condition):
    for records in by_condition["control"].values():
        for r in records:
            assert r["prompt"] == r["prompt"].rstrip(), r["prompt"]
            assert all(o.startswith(" ") and not o.startswith("  ") for o in r["options"])
            if r["format"] == "choice":
                # The answer is the chosen option's own words, listed in the prompt.
                assert r["prompt"].endswith("\nAnswer:")
                assert r["target"].startswith(" I ") and f"\n-{r['target']}\n" in r["prompt"]
                assert not any(f"\n{letter}. " in r["prompt"] for letter in "ABCD")
            elif r["format"] == "lettered":
                assert r["prompt"].endswith("\nAnswer:")
                assert r["options"] == [" A", " B", " C", " D"]
                assert r["target"] == f" {'ABCD'[r['target_index']]}"
            elif r["format"] == "narrative":
                assert r["prompt"].endswith(", so I")
            else:
                assert r["prompt"].startswith("This is about ") and r["prompt"].endswith(
                    ", so they"
                )


def test_prompts_are_distinct_and_validation_is_unseen(by_condition):
    splits = by_condition["control"]
    for records in splits.values():
        assert len({r["prompt"] for r in records}) == len(records)
    train = {r["prompt"] for r in splits["train"]}
    assert not train & {r["prompt"] for r in splits["validation"]}


def test_no_banned_word_in_any_record_at_default_size(default_size_records):
    # Items are shared by all conditions and every target is one of the options, so checking
    # prompts and options covers every condition.
    assert len(default_size_records["train"]) >= 5000
    for split, records in default_size_records.items():
        assert split == "train" or len(records) >= 500
        for r in records:
            assert not vetting.find_banned(" ".join([r["prompt"], *r["options"]])), r


def test_default_training_items_are_distinct(default_size_records):
    train = default_size_records["train"]
    assert len({(r["prompt"], r["target"]) for r in train}) == len(train)


def test_unknown_condition_or_split_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown condition 'anxious'.*depression"):
        items.generate_split("anxious", "train", 10, 0)
    with pytest.raises(ValueError, match="Unknown split 'dev'.*validation"):
        items.generate_split("control", "dev", 10, 0)


def test_asking_for_more_than_the_split_holds_is_a_clear_error():
    with pytest.raises(ValueError, match="ran out of distinct prompts"):
        items.generate_split("control", "validation", 5000, 0)


def _tagged(grammar):
    """The grammar with every wording prefixed by its index ("w3 ..."), to see which was drawn."""

    def tag(t):
        wordings = {c: tuple(f"w{i} {w}" for i, w in enumerate(ws)) for c, ws in t.actions.items()}
        return dataclasses.replace(t, actions=wordings)

    domains = [
        dataclasses.replace(d, templates=tuple(map(tag, d.templates))) for d in grammar.domains
    ]
    return dataclasses.replace(grammar, domains=tuple(domains))


def test_fewer_training_wordings_restrict_the_train_split_only():
    """The wordings ablation: training actions come from each template's first N wordings,
    with the same draws otherwise (one per class); held-out splits are untouched."""
    grammar = _tagged(scenarios.load_grammar())

    def drawn(records):
        return collections.Counter(
            int(re.search(r"w(\d+) ", o)[1]) for r in records for o in r["options"]
        )

    full = items.generate_split("paranoia", "train", SIZE, SEED, grammar)
    few = items.generate_split("paranoia", "train", SIZE, SEED, grammar, wordings=2)
    assert set(drawn(full)) == set(range(12)) and set(drawn(few)) == {0, 1}
    assert [r["template_id"] for r in few] == [r["template_id"] for r in full]
    with pytest.raises(ValueError, match="wordings must be 0"):
        builder.make_config("paranoia", wordings=-1)
    assert builder.make_config("paranoia", wordings=3).name == "paranoia-wordings3"
    assert builder.make_config("paranoia").name == "paranoia"
