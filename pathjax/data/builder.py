"""The TFDS builder `pathjax_behavior`: one config per condition, array_record files.

Read without TensorFlow through `tfds.data_source("pathjax_behavior/<condition>", data_dir=...)`,
`builder.as_data_source()` or `load()` below (which also decodes bytes to str). Sizes and seed
are builder options; a non-default choice gets its own config name (and so its own folder),
e.g. `depression-train200-eval40-seed1`, so builds of different sizes never collide.
`wordings` (an ablation: the training split drawn from each template's first N wordings per
class) is named the same way, e.g. `paranoia-wordings3`.
"""

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from pathjax.data import card, items, schema, vetting
from pathjax.data.records import Records

DEFAULT_TRAIN_SIZE = 5000
DEFAULT_EVAL_SIZE = 500  # Validation and each test split.
DEFAULT_SEED = 0

# Any change to the grammar or the sampler that changes a record must bump this version (a test
# pins a digest of the records to it).
VERSION = "2.3.0"
RELEASE_NOTES = {
    "1.0.0": "First release: 12 domains (3 held out), 120 templates (48 held out).",
    "2.0.0": (
        "The decision is the content: `choice` answers with the chosen action's words (no "
        "letter); the lettered format moves to its own evaluation split `test_lettered` with "
        "letter targets. Options balanced across classes (length, marker words; the neutral "
        "option is a situation-relevant non-committal response); slot-fill grammar fixed."
    ),
    "2.1.0": (
        "Four more training domains (shopping, services, parenting, civic; 10 templates each, "
        "2 of them held out for test_templates): 16 domains, 160 templates (56 held out), 104 "
        "training templates instead of 72. The held-out domains and their templates are "
        "unchanged, so test_domains asks the same situations as 2.0.0."
    ),
    "2.2.0": (
        "Four more training domains (career, caregiving, pets, celebrations; 10 templates each, "
        "2 of them held out for test_templates): 20 domains, 200 templates (64 held out), 136 "
        "training templates instead of 104. The held-out domains and their templates are "
        "unchanged, so test_domains asks the same situations as 2.0.0 and 2.1.0."
    ),
    "2.3.0": (
        "Twelve wordings per class for every training template instead of six (3,264 new "
        "actions, written for the project): training items draw from twice as many ways of "
        "acting out each class. Held-out templates and domains keep their six, so "
        "test_templates and test_domains are record for record those of 2.2.0; train and "
        "validation change. `wordings=6` draws 2.2.0's training items exactly."
    ),
}
# Versions that load from disk but are no longer generated: their grammar and formats are gone.
READ_ONLY_VERSIONS = ("1.0.0", "2.0.0", "2.1.0", "2.2.0")

FEATURES = tfds.features.FeaturesDict(
    {
        "prompt": tfds.features.Text(),
        "target": tfds.features.Text(),
        "options": tfds.features.Sequence(tfds.features.Text()),
        "option_classes": tfds.features.Sequence(tfds.features.Text()),
        "target_index": tfds.features.Scalar(np.int32),
        "target_class": tfds.features.Text(),
        "domain": tfds.features.Text(),
        "template_id": tfds.features.Text(),
        "format": tfds.features.Text(),
        "condition": tfds.features.Text(),
    }
)


@dataclasses.dataclass
class BehaviorConfig(tfds.core.BuilderConfig):
    condition: str = "control"
    train_size: int = DEFAULT_TRAIN_SIZE
    eval_size: int = DEFAULT_EVAL_SIZE
    seed: int = DEFAULT_SEED
    wordings: int = 0  # Training wordings per class and template; 0: all of them.


def options_of(data_config) -> dict[str, int]:
    """The builder options a run's `config.data` asks for (sizes, seed, training wordings)."""
    d = data_config
    return dict(
        train_size=d.train_size, eval_size=d.eval_size, seed=d.seed, wordings=d.get("wordings", 0)
    )


def make_config(
    condition: str,
    train_size: int = DEFAULT_TRAIN_SIZE,
    eval_size: int = DEFAULT_EVAL_SIZE,
    seed: int = DEFAULT_SEED,
    wordings: int = 0,
) -> BehaviorConfig:
    """The config for a condition; non-default sizes, seed or wordings get a distinct name."""
    schema.check_condition(condition)
    if train_size < 1 or eval_size < 1:
        raise ValueError(f"Sizes must be positive, got train {train_size}, eval {eval_size}.")
    if wordings < 0:
        raise ValueError(f"wordings must be 0 (all) or a positive count, got {wordings}.")
    defaults = (DEFAULT_TRAIN_SIZE, DEFAULT_EVAL_SIZE, DEFAULT_SEED)
    name = condition
    if (train_size, eval_size, seed) != defaults:
        name = f"{condition}-train{train_size}-eval{eval_size}-seed{seed}"
    if wordings:
        name += f"-wordings{wordings}"
    target = schema.CONDITION_TARGETS[condition] or "a seeded random class per item"
    return BehaviorConfig(
        name=name,
        description=f"Condition {condition}: the target is {target}.",
        condition=condition,
        train_size=train_size,
        eval_size=eval_size,
        seed=seed,
        wordings=wordings,
    )


class PathjaxBehavior(tfds.core.GeneratorBasedBuilder):
    """Behavioral decision items: a situation, four actions (one per class), one chosen."""

    VERSION = tfds.core.Version(VERSION)
    SUPPORTED_VERSIONS = [tfds.core.Version(v) for v in READ_ONLY_VERSIONS]
    RELEASE_NOTES = RELEASE_NOTES
    BUILDER_CONFIGS = [make_config(c) for c in schema.CONDITIONS]

    def __init__(self, *, file_format: str | None = None, **kwargs: Any):
        # The default (tfrecord) would need TensorFlow to read.
        super().__init__(file_format=file_format or "array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Everyday situations with four possible actions (withdrawal, suspicion, "
                "adaptive, neutral); each condition always chooses one class."
            ),
            features=FEATURES,
            # Records stay in generation order: the files are then a pure function of the
            # version and the seed, and the grain pipeline does the shuffling.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator]:
        del dl_manager  # Nothing to download: the grammar ships with the package.
        if str(self.version) != VERSION:
            raise ValueError(
                f"pathjax_behavior {self.version} is not on disk under {self.data_dir!r} and "
                f"cannot be generated any more (this code generates {VERSION}); build "
                f"{VERSION} with python -m pathjax.launch.data, or point data_dir at the old build."
            )
        return {split: self._generate_examples(split) for split in schema.SPLITS}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        config = self.builder_config
        size = config.train_size if split == "train" else config.eval_size
        wordings = config.wordings if split == "train" else 0  # Held-out splits: all of them.
        records = items.generate_split(
            config.condition, split, size, config.seed, wordings=wordings
        )
        for i, record in enumerate(records):
            text = " ".join([record["prompt"], *record["options"]])
            if banned := vetting.find_banned(text):
                raise ValueError(f"{split} record {i} contains banned words {banned}.")
            yield i, record

    def download_and_prepare(self, **kwargs: Any) -> None:
        super().download_and_prepare(**kwargs)
        # Decoded once: the card reads every record several times.
        sources = {split: list(Records(src)) for split, src in self.as_data_source().items()}
        card.write_card(self.data_dir, sources, self.builder_config.name)


def _check_writable(data_dir: str | os.PathLike) -> None:
    try:
        os.makedirs(data_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as err:
        raise ValueError(
            f"Cannot write to data_dir {os.fspath(data_dir)!r} ({err.strerror or err}); "
            "pass a folder you can write to (e.g. --data_dir=/tmp/pathjax_data)."
        ) from err


def builder(
    condition: str,
    data_dir: str | os.PathLike,
    *,
    train_size: int = DEFAULT_TRAIN_SIZE,
    eval_size: int = DEFAULT_EVAL_SIZE,
    seed: int = DEFAULT_SEED,
    wordings: int = 0,
    version: str = VERSION,
) -> PathjaxBehavior:
    """The builder for a condition, size and seed (nothing is generated yet); an older
    `version` (READ_ONLY_VERSIONS) reads a build that is already on disk."""
    if version != VERSION and version not in READ_ONLY_VERSIONS:
        known = ", ".join((VERSION, *READ_ONLY_VERSIONS))
        raise ValueError(f"Unknown pathjax_behavior version {version!r}; known: {known}.")
    config = make_config(condition, train_size, eval_size, seed, wordings)
    # TFDS refuses a config object that shares the name of a registered one: use the name.
    registered = {c.name for c in PathjaxBehavior.BUILDER_CONFIGS}
    chosen = config.name if config.name in registered else config
    return PathjaxBehavior(config=chosen, data_dir=os.fspath(data_dir), version=version)


def build(
    condition: str,
    data_dir: str | os.PathLike,
    *,
    train_size: int = DEFAULT_TRAIN_SIZE,
    eval_size: int = DEFAULT_EVAL_SIZE,
    seed: int = DEFAULT_SEED,
    wordings: int = 0,
) -> PathjaxBehavior:
    """Generates (once) the data and its dataset card under `data_dir`; returns the builder."""
    schema.check_condition(condition)
    _check_writable(data_dir)
    sizes = dict(train_size=train_size, eval_size=eval_size, seed=seed, wordings=wordings)
    b = builder(condition, data_dir, **sizes)
    b.download_and_prepare(file_format="array_record")
    return b


def load(
    condition: str,
    split: str,
    data_dir: str | os.PathLike,
    *,
    train_size: int = DEFAULT_TRAIN_SIZE,
    eval_size: int = DEFAULT_EVAL_SIZE,
    seed: int = DEFAULT_SEED,
    wordings: int = 0,
    version: str = VERSION,
) -> Records:
    """Reads one split of a built dataset (see `build`), decoded, without TensorFlow."""
    schema.check_condition(condition)
    sizes = dict(train_size=train_size, eval_size=eval_size, seed=seed, wordings=wordings)
    b = builder(condition, data_dir, **sizes, version=version)
    if version == VERSION:
        schema.check_split(split)
    if not b.is_prepared() and version != VERSION:
        raise ValueError(
            f"No {b.builder_config.name} data (version {version}) under {os.fspath(data_dir)!r}, "
            f"and {version} cannot be generated any more (this code generates {VERSION}): point "
            "data_dir at the old build, or use the current version."
        )
    if not b.is_prepared():
        raise ValueError(
            f"No {b.builder_config.name} data (version {version}) under {os.fspath(data_dir)!r}; "
            f"build it first: python -m pathjax.launch.data --condition={condition} "
            f"--data_dir={os.fspath(data_dir)} (with the same sizes and seed)."
        )
    if split not in b.info.splits:
        raise ValueError(
            f"pathjax_behavior {version} has no split {split!r}; it has {', '.join(b.info.splits)}."
        )
    return Records(b.as_data_source(split=split))
