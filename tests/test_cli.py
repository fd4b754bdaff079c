"""The generation launcher's library function, on a tiny GPT-2 that uses the real tokenizer."""

import io

import ml_collections

from configs import base
from pathjax import cli
from tests.models import hf_reference as ref


def test_generate_and_print_on_a_tiny_gpt2(tmp_path):
    # GPT-2's full vocabulary so that the exact GPT-2 tokenizer fits; tiny everywhere else.
    ref.save_random_model(
        ref.gpt2_config(vocab_size=50257, bos_token_id=50256, eos_token_id=50256), tmp_path
    )
    config = base.get_base_config()
    config.model.source = str(tmp_path)
    config.generate.max_new_tokens = 5
    out = io.StringIO()
    completions = cli.generate_and_print(config, ["Hello there"], out=out)
    assert len(completions) == 1 and completions[0]
    assert ">>> Hello there" in out.getvalue()


def test_configs_load_and_reject_unknown_variants():
    import pytest

    from configs import smollm2_135m

    assert smollm2_135m.get_config().model.source == "smollm2-135m"
    assert smollm2_135m.get_config("bf16").model.dtype == "bfloat16"
    with pytest.raises(ValueError, match="Unknown variant"):
        smollm2_135m.get_config("fp8")
    assert isinstance(smollm2_135m.get_config(), ml_collections.ConfigDict)
