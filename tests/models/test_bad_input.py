"""Bad checkpoints and tokenizers get clear errors that name the problem and the fix."""

import json
import os
import pickle

import numpy as np
import pytest

import pathjax
from pathjax.models import checkpoints, registry, tokenizers
from tests.models import gguf_writer
from tests.models import hf_reference as ref


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    ref.save_random_model(ref.llama_config(), folder)
    return folder


def test_unknown_model_type_lists_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="'bert' is not supported.*gpt2, llama, mistral, qwen2"):
        checkpoints.load_hf_folder(str(tmp_path))


def test_missing_shard_is_named(llama_folder, tmp_path):
    from tests.models.hf_reference import save_random_model

    hf_model = save_random_model(ref.llama_config(), tmp_path / "full")
    hf_model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    shard = sorted(n for n in os.listdir(tmp_path / "sharded") if n.startswith("model-"))[1]
    os.remove(tmp_path / "sharded" / shard)
    with pytest.raises(checkpoints.CheckpointError, match=f"missing.*{shard}"):
        checkpoints.load_hf_folder(str(tmp_path / "sharded"))


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_checkpoint_is_refused_and_never_unpickled(llama_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((llama_folder / "config.json").read_text())
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump(_Boom(), f)
    with pytest.raises(checkpoints.CheckpointError, match="never unpickles"):
        pathjax.load_model(str(folder), tokenizer=None)
    with pytest.raises(checkpoints.CheckpointError, match="never unpickles"):
        pathjax.load_model(str(folder / "pytorch_model.bin"), tokenizer=None)
    assert not os.path.exists(tmp_path / "pwned")


def test_weights_of_another_config_are_rejected(llama_folder, tmp_path):
    config = json.loads((llama_folder / "config.json").read_text())
    config["intermediate_size"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    os.symlink(llama_folder / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(
        checkpoints.CheckpointError, match=r"shape \(32, 48\) but the config implies \(32, 64\)"
    ):
        checkpoints.load_hf_folder(str(tmp_path))


def test_config_missing_a_field_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 8}))
    with pytest.raises(ValueError, match="config.json lacks the field 'num_attention_heads'"):
        checkpoints.load_hf_folder(str(tmp_path))


def test_gguf_of_unsupported_architecture(tmp_path):
    path = tmp_path / "bert.gguf"
    gguf_writer.write_gguf(path, "bert", {}, {"token_embd.weight": np.zeros((4, 8), np.float32)})
    with pytest.raises(checkpoints.CheckpointError, match="'bert' is not supported.*llama"):
        pathjax.load_model(str(path), tokenizer=None)


def test_tokenizer_that_does_not_fit_the_vocabulary(llama_folder):
    with pytest.raises(tokenizers.TokenizerError, match="50257 tokens.*vocabulary of 96"):
        pathjax.load_model(str(llama_folder), tokenizer="gpt2")


def test_folder_without_tokenizer_says_how_to_pass_one(llama_folder):
    with pytest.raises(tokenizers.TokenizerError, match="tokenizer=None"):
        pathjax.load_model(str(llama_folder))


def test_missing_path_and_offline_hub_id():
    with pytest.raises(FileNotFoundError, match="No model at"):
        pathjax.load_model("./no/such/folder")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        pathjax.load_model("HuggingFaceTB/SmolLM2-135M")


def test_registry_names_its_families():
    assert registry.supported_model_types() == ["gemma3_text", "gpt2", "llama", "mistral", "qwen2"]
