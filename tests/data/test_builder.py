"""The TFDS builder: registration, determinism, the dataset card, reading without TF, errors."""

import hashlib
import json
import os

import pytest
import tensorflow_datasets as tfds

import pathjax.data  # noqa: F401  (registers the builder)
from pathjax.data import builder, card, items, schema
from pathjax.data.words import words
from tests.data.conftest import SMALL

# sha256 of the records of every split and condition at size 40, seed 0. Any change to the
# grammar or the sampler changes it: bump builder.VERSION (and RELEASE_NOTES), then update this.
PINNED = {
    "1.0.0": "951574e21ab5224844e923107cfca74c4bb5f960a8e9458bb999779d02210b51",
    "2.0.0": "d51a3a2e918bea1fbe67fb5b9be1d563f745f51707ee1c4610ce2e45d5ab0c4b",
    "2.1.0": "94ea6c957041ced57cba721e457a96cb00e4e7406ef0e71cf0e8e89d909de1b8",
    "2.2.0": "67e32c2e9c89a0c87074f50b79f6d0f5180644cf251980dfd20185df3ee09f42",
    "2.3.0": "5d11a1d8fcbce7a689cb6a80503cb437aa3a0916d28821c6d1a61c38f0b54b0d",
}


def _files(version_dir):
    return {
        name: open(os.path.join(version_dir, name), "rb").read()
        for name in sorted(os.listdir(version_dir))
    }


def test_builder_is_registered_with_its_configs():
    # (tfds.list_builders() would reach for Google Storage.)
    assert tfds.builder_cls("pathjax_behavior") is builder.PathjaxBehavior
    configs = {c.name for c in builder.PathjaxBehavior.BUILDER_CONFIGS}
    assert configs == set(schema.CONDITIONS)


def test_default_build_has_the_promised_sizes(tmp_path):
    b = pathjax.data.build("control", tmp_path)
    assert b.builder_config.name == "control"
    source = tfds.data_source("pathjax_behavior/control", data_dir=os.fspath(tmp_path))
    assert len(source["train"]) == builder.DEFAULT_TRAIN_SIZE >= 5000
    assert all(len(source[s]) == builder.DEFAULT_EVAL_SIZE >= 500 for s in schema.SPLITS[1:])


def test_same_version_and_seed_give_byte_identical_builds(small_build, tmp_path):
    _, first = small_build
    second = builder.build("paranoia", tmp_path, **SMALL)
    a, b = _files(first.data_dir), _files(second.data_dir)
    assert sorted(a) == sorted(b)
    assert any(name.endswith("array_record-00000-of-00001") for name in a)
    for name in a:
        assert a[name] == b[name], name


def test_a_different_seed_gives_a_different_build(small_build, tmp_path):
    _, first = small_build
    other = builder.build("paranoia", tmp_path, **{**SMALL, "seed": SMALL["seed"] + 1})
    name = "pathjax_behavior-train.array_record-00000-of-00001"
    assert _files(first.data_dir)[name] != _files(other.data_dir)[name]


def test_fewer_wordings_change_the_training_split_only(small_build, tmp_path):
    _, first = small_build
    ablated = builder.build("paranoia", tmp_path, **SMALL, wordings=2)
    assert ablated.builder_config.name.endswith("-wordings2")
    a, b = _files(first.data_dir), _files(ablated.data_dir)
    for split in schema.SPLITS:
        name = f"pathjax_behavior-{split}.array_record-00000-of-00001"
        assert (a[name] == b[name]) == (split != "train"), split


def test_records_read_back_with_tfds_data_source(small_build):
    data_dir, b = small_build
    name = b.builder_config.name
    source = tfds.data_source(f"pathjax_behavior/{name}", data_dir=os.fspath(data_dir))
    assert set(source) == set(schema.SPLITS)
    assert len(source["train"]) == SMALL["train_size"]
    assert all(len(source[s]) == SMALL["eval_size"] for s in schema.SPLITS if s != "train")
    expected = items.generate_split("paranoia", "test_format", SMALL["eval_size"], SMALL["seed"])
    loaded = pathjax.data.load("paranoia", "test_format", data_dir, **SMALL)
    assert list(loaded) == expected
    assert set(loaded[0]) == set(builder.FEATURES.keys())


def test_dataset_card_is_written_beside_the_data(small_build):
    data_dir, b = small_build
    info = json.load(open(os.path.join(b.data_dir, card.CARD_JSON)))
    assert info["version"] == builder.VERSION and info["condition"] == "paranoia"
    for split in schema.SPLITS:
        counts = info["counts"][split]
        for key in ("domain", "target_class", "format"):
            assert sum(counts[key].values()) == counts["total"]
    assert info["counts"]["train"]["target_class"] == {"suspicion": SMALL["train_size"]}
    markdown = open(os.path.join(b.data_dir, card.CARD_MD)).read()
    assert "## Examples" in markdown and "test_format / third_person" in markdown
    vocabulary = pathjax.data.read_vocabulary(b.data_dir)
    train = pathjax.data.load("paranoia", "train", data_dir, **SMALL)
    assert vocabulary == set().union(*(words(r["prompt"] + r["target"]) for r in train))
    assert len(vocabulary) == info["train_vocabulary_size"]


def test_content_is_pinned_to_the_version():
    digest = hashlib.sha256()
    for condition in schema.CONDITIONS:
        for split in schema.SPLITS:
            records = items.generate_split(condition, split, 40, 0)
            digest.update(json.dumps(records, sort_keys=True).encode())
    assert PINNED.get(builder.VERSION) == digest.hexdigest(), (
        "The records changed: bump builder.VERSION (with a RELEASE_NOTES entry) and update "
        f"PINNED in this test to {{{builder.VERSION!r}: {digest.hexdigest()!r}}}."
    )


def test_unknown_condition_or_split_is_a_clear_error(small_build, tmp_path):
    data_dir, _ = small_build
    with pytest.raises(ValueError, match="Unknown condition 'sad'"):
        builder.build("sad", tmp_path)
    with pytest.raises(ValueError, match="Unknown split 'test'.*test_templates"):
        pathjax.data.load("paranoia", "test", data_dir, **SMALL)


def test_reading_data_that_was_never_built_says_how_to_build_it(tmp_path):
    with pytest.raises(ValueError, match="build it first: python -m pathjax.launch.data"):
        pathjax.data.load("control", "train", tmp_path, train_size=10, eval_size=10)


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="Cannot write to data_dir.*pass a folder you can write"):
        builder.build("control", blocker / "data", train_size=10, eval_size=10)


def test_a_read_only_version_on_disk_still_loads(small_build, tmp_path):
    # A 1.0.0 build stands in as a copy of this build relabelled 1.0.0: what is tested is that
    # the builder reads an older version from disk instead of regenerating it.
    data_dir, b = small_build
    config_dir = os.path.dirname(b.data_dir)
    old_root = tmp_path / "old"
    old_dir = old_root / "pathjax_behavior" / os.path.basename(config_dir) / "1.0.0"
    os.makedirs(old_dir)
    for name, content in _files(b.data_dir).items():
        if name == "dataset_info.json":
            info = json.loads(content)
            info["version"] = "1.0.0"
            content = json.dumps(info).encode()
        (old_dir / name).write_bytes(content)
    old = pathjax.data.load("paranoia", "train", old_root, version="1.0.0", **SMALL)
    new = pathjax.data.load("paranoia", "train", data_dir, **SMALL)
    assert [r["prompt"] for r in old] == [r["prompt"] for r in new]


def test_an_old_version_that_is_not_on_disk_says_it_cannot_be_generated(tmp_path):
    with pytest.raises(ValueError, match="1.0.0.*cannot be generated"):
        pathjax.data.load("paranoia", "train", tmp_path, version="1.0.0", **SMALL)
    with pytest.raises(ValueError, match="Unknown pathjax_behavior version '0.9.0'"):
        pathjax.data.load("paranoia", "train", tmp_path, version="0.9.0", **SMALL)
