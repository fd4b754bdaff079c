"""GGUF metadata without torch, for transformers' GGUF tokenizer conversion.

transformers (5.x) builds a fast tokenizer from a GGUF file's metadata, but its metadata reader
lives in a module that imports torch at the top (for tensor dtypes the tokenizer never needs).
pathjax does not depend on torch, so `torch_free_gguf_reader()` stands in for that module while
the tokenizer is converted: `read_metadata` reads the same keys into the same Python values
with the `gguf` package. Tests check that the two readers agree and that the tokenizer equals
transformers' own conversion.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
from collections.abc import Container, Iterator

import gguf

_READER_MODULE = "transformers.integrations.gguf.reader"
_LAZY_PACKAGE = "transformers.integrations.gguf"
_MISSING = object()


def read_metadata(path: str, string_arrays: Container[str] = ()) -> tuple[dict, tuple[str, ...]]:
    """`(metadata, tensor_names)` as transformers' `read_gguf_metadata` returns them: scalars
    and numeric arrays as Python values, string arrays in full only when named in
    `string_arrays` (a vocabulary, merges) and otherwise as their length."""
    full, string_array_keys, tensor_names = _read_all(path)
    metadata = {
        key: len(value) if key in string_array_keys and key not in string_arrays else value
        for key, value in full.items()
    }
    return metadata, tensor_names


@functools.lru_cache(maxsize=1)
def _read_all(path: str) -> tuple[dict, frozenset[str], tuple[str, ...]]:
    # One parse per file (a 262k-token vocabulary takes `gguf` ~20 s); the conversion asks twice.
    reader = gguf.GGUFReader(path, "r")
    metadata, string_array_keys = {}, set()
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # The reader's own header entries, not metadata keys.
            continue
        kinds = field.types
        if (
            len(kinds) > 1
            and kinds[0] == gguf.GGUFValueType.ARRAY
            and kinds[-1] == gguf.GGUFValueType.STRING
        ):
            string_array_keys.add(key)
        metadata[key] = field.contents()
    if "general.architecture" not in metadata:
        raise ValueError(f"{path} has no `general.architecture` in its metadata.")
    return metadata, frozenset(string_array_keys), tuple(t.name for t in reader.tensors)


def tokenizer_from_gguf(path: str):
    """The fast tokenizer transformers builds from a GGUF file, without torch.

    `AutoTokenizer.from_pretrained(gguf_file=...)` reads the model config through torch to pick
    the tokenizer class; this picks it from the architecture with the same table
    (`TOKENIZER_MAPPING_NAMES`; `TokenizersBackend` where it names none, as for llama).
    """
    import os

    from transformers.models.auto import tokenization_auto

    metadata, _ = read_metadata(path)
    name = tokenization_auto.TOKENIZER_MAPPING_NAMES.get(metadata["general.architecture"])
    tokenizer_class = tokenization_auto.tokenizer_class_from_name(name or "TokenizersBackend")
    with torch_free_gguf_reader():
        return tokenizer_class.from_pretrained(
            os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path)
        )


@contextlib.contextmanager
def torch_free_gguf_reader() -> Iterator[None]:
    """Within the block, transformers' GGUF metadata reader is `read_metadata`."""
    lazy = importlib.import_module(_LAZY_PACKAGE)
    cached = lazy.__dict__.get("read_gguf_metadata", _MISSING)
    saved = sys.modules.get(_READER_MODULE)
    shim = types.ModuleType(_READER_MODULE)
    shim.read_gguf_metadata = read_metadata
    sys.modules[_READER_MODULE] = shim
    try:
        yield
    finally:
        # Leave transformers as it was: its lazy package caches what an import resolved to.
        if saved is None:
            sys.modules.pop(_READER_MODULE, None)
        else:
            sys.modules[_READER_MODULE] = saved
        if lazy.__dict__.get("read_gguf_metadata") is read_metadata:
            if cached is _MISSING:
                del lazy.__dict__["read_gguf_metadata"]
            else:
                lazy.read_gguf_metadata = cached
