"""The generation launcher's body (`launch.generate.generate_and_print`), on a tiny GPT-2 that
uses the real tokenizer, with and without an adapter; and the shipped configs."""

import io

import ml_collections
import numpy as np
import pytest
from flax import nnx

from pathjax import lora, peft_format
from pathjax.configs import base
from pathjax.launch import generate
from pathjax.models import load_model
from tests.models import hf_reference as ref


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    # GPT-2's full vocabulary so that the exact GPT-2 tokenizer fits; tiny everywhere else.
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    ref.save_random_model(
        ref.gpt2_config(vocab_size=50257, bos_token_id=50256, eos_token_id=50256), folder
    )
    return folder


def _config(model_folder):
    config = base.get_base_config()
    config.model.source = str(model_folder)
    config.generate.max_new_tokens = 5
    return config


def _write_adapter(model_folder, adapter_folder) -> None:
    """A PEFT adapter for the tiny model whose delta is large enough to change greedy picks."""
    model, _ = load_model(str(model_folder))
    config = lora.LoraConfig(rank=4, alpha=8.0, targets="all-linear")
    lora.add_lora(model, config, rngs=nnx.Rngs(0))
    rng = np.random.RandomState(0)
    for _, module in lora.adapters(model):
        module.lora_b[...] = rng.normal(0, 1.0, module.lora_b.shape).astype(np.float32)
    peft_format.export_peft(model, config, str(adapter_folder))


def test_generate_and_print_on_a_tiny_gpt2(tiny_gpt2):
    out = io.StringIO()
    completions = generate.generate_and_print(_config(tiny_gpt2), ["Hello there"], out=out)
    assert len(completions) == 1 and completions[0]
    assert ">>> Hello there" in out.getvalue()


def test_an_adapter_changes_the_generations(tiny_gpt2, tmp_path):
    # A finished training workdir holds its adapter in adapter/; an `@` in the folder's name
    # is part of the path, not a step.
    workdir = tmp_path / "user@host" / "run"
    _write_adapter(tiny_gpt2, workdir / "adapter")
    prompts = ["Hello there", "The weather today"]
    config = _config(tiny_gpt2)
    plain = generate.generate_and_print(config, prompts, out=io.StringIO())
    out = io.StringIO()
    adapted = generate.generate_and_print(config, prompts, adapter=str(workdir), out=out)
    assert adapted != plain
    assert f"adapter {workdir / 'adapter'}" in out.getvalue()
    # The PEFT folder named directly gives the same model.
    direct = generate.generate_and_print(
        config, prompts, adapter=str(workdir / "adapter"), out=io.StringIO()
    )
    assert direct == adapted


def test_a_checkpoint_step_reads_the_runs_checkpoints(tiny_gpt2, tmp_path):
    workdir = tmp_path / "user@host" / "run"
    workdir.mkdir(parents=True)
    # `@40` is a step: the run's checkpoints are read (there are none), not a PEFT folder.
    with pytest.raises(FileNotFoundError, match="No checkpoints"):
        generate.generate_and_print(_config(tiny_gpt2), ["Hi"], adapter=f"{workdir}@40")


def test_configs_load_and_reject_unknown_variants():
    from pathjax.configs import smollm2_135m

    assert smollm2_135m.get_config().model.source == "smollm2-135m"
    assert smollm2_135m.get_config("bf16").model.dtype == "bfloat16"
    with pytest.raises(ValueError, match="Unknown variant"):
        smollm2_135m.get_config("fp8")
    assert isinstance(smollm2_135m.get_config(), ml_collections.ConfigDict)
