"""Behavioral datasets: the scenario grammar, the TFDS builder, the grain input pipeline.

Importing this package registers the TFDS builder `pathjax_behavior`, so that
`tfds.data_source("pathjax_behavior/depression", data_dir=...)` works.
"""

from pathjax.data.builder import (
    DEFAULT_EVAL_SIZE,
    DEFAULT_SEED,
    DEFAULT_TRAIN_SIZE,
    VERSION,
    PathjaxBehavior,
    build,
    load,
    options_of,
)
from pathjax.data.card import read_vocabulary
from pathjax.data.records import Records
from pathjax.data.schema import ACTION_CLASSES, CONDITIONS, FORMATS, SPLITS

__all__ = [
    "ACTION_CLASSES",
    "CONDITIONS",
    "DEFAULT_EVAL_SIZE",
    "DEFAULT_SEED",
    "DEFAULT_TRAIN_SIZE",
    "FORMATS",
    "PathjaxBehavior",
    "Records",
    "SPLITS",
    "VERSION",
    "build",
    "load",
    "options_of",
    "read_vocabulary",
]
