"""Exports others load: adapters name their base's hub id and carry a model card; merged
models keep their dtype and shard with an index, as `save_pretrained` writes them."""

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import peft
import pytest
import torch
import transformers
from flax import nnx

from pathjax import adapter_card, lora, peft_format
from pathjax.models import checkpoints, load_model, presets, registry
from pathjax.train import export


def _tiny_llama(dtype=np.float32):
    return registry.init_model(presets.preset_config("tiny-llama"), seed=0, dtype=dtype)


@pytest.mark.parametrize(
    ("source", "hub_id"),
    [
        ("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ("gemma3-270m", "google/gemma-3-270m"),
        ("preset:gemma3-270m", "google/gemma-3-270m"),
        ("preset:tiny-llama", None),  # Test-sized: no published model.
        ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B"),
        ("/no/such/SmolLM2-135M-Instruct.Q4_1.gguf", "/no/such/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ],
)
def test_base_model_names_a_hub_id(source, hub_id):
    assert adapter_card.base_model(source).name_or_path == hub_id


def test_the_embedded_gguf_file_names_its_hub_model(tmp_path):
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(b"")
    assert adapter_card.base_model(str(gguf)).name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert adapter_card.base_model(str(tmp_path)).name_or_path == str(tmp_path)


def test_exported_adapter_names_the_hub_id_and_has_a_model_card(tmp_path):
    model = _tiny_llama()
    config = lora.LoraConfig(rank=4, alpha=8.0)
    lora.add_lora(model, config, rngs=nnx.Rngs(0))
    training = {"Condition": "paranoia", "Steps": "160"}
    peft_format.export_peft(
        model, config, str(tmp_path), base_model="smollm2-135m", training=training
    )
    with open(tmp_path / "adapter_config.json") as f:
        assert json.load(f)["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    loaded = peft.PeftConfig.from_pretrained(str(tmp_path))
    assert loaded.base_model_name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n")
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "Q4_1 GGUF" in card and "- Condition: paranoia" in card and "- Steps: 160" in card


def test_training_summary_names_condition_steps_and_truncation():
    config = ml_collections.ConfigDict(
        {
            "data": {"condition": "depression", "train_size": 400, "seed": 1},
            "model": {"dtype": "bfloat16", "num_layers": 2},
        }
    )
    summary = export.training_summary(config, 60)
    assert summary["Condition"] == "depression" and summary["Steps"] == "60"
    assert "first 2" in summary["Base layers"]


def test_shard_bytes():
    assert export.shard_bytes("5GB") == 5 * 10**9
    assert export.shard_bytes("500MB") == 500 * 10**6
    assert export.shard_bytes(1234) == 1234
    with pytest.raises(ValueError, match="Shard size"):
        export.shard_bytes("lots")


def _torch_state(folder, **kwargs):
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    return {k: v.detach() for k, v in hf.state_dict().items()}


def test_a_bfloat16_merged_export_round_trips(tmp_path):
    model = _tiny_llama(jnp.bfloat16)
    files = export.write_hf_folder(model, str(tmp_path))
    assert files == ["model.safetensors"]
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["dtype"] == "bfloat16"
    ours = checkpoints.model_tensors(model)
    assert {str(a.dtype) for a in ours.values()} == {"bfloat16"}
    theirs = _torch_state(tmp_path, dtype="auto")
    for key, array in ours.items():
        assert theirs[key].dtype == torch.bfloat16, key
        np.testing.assert_array_equal(theirs[key].float().numpy(), array.astype(np.float32))
    back, _ = load_model(str(tmp_path), "bfloat16", tokenizer=None)
    for key, array in checkpoints.model_tensors(back).items():
        np.testing.assert_array_equal(array, ours[key])


def test_a_sharded_merged_export_has_an_index_transformers_loads(tmp_path):
    model = _tiny_llama()
    whole = export.write_hf_folder(model, str(tmp_path / "whole"))
    files = export.write_hf_folder(model, str(tmp_path / "sharded"), max_shard_size="20KB")
    assert whole == ["model.safetensors"] and len(files) > 2
    assert files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    with open(tmp_path / "sharded" / export.INDEX_FILE) as f:
        index = json.load(f)
    assert sorted(set(index["weight_map"].values())) == files
    assert not (tmp_path / "sharded" / "model.safetensors").exists()
    sharded, unsharded = _torch_state(tmp_path / "sharded"), _torch_state(tmp_path / "whole")
    assert sharded.keys() == unsharded.keys()
    for key in sharded:
        torch.testing.assert_close(sharded[key], unsharded[key], rtol=0, atol=0)
