"""The shared decoder's config: activations against transformers, and attributes it refuses."""

import json

import numpy as np
import pytest

from pathjax.models import checkpoints, decoder_config, presets, registry
from tests.models import hf_reference as ref


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_pytorch_tanh", "gelu_new", "silu"])
def test_activation_matches_transformers(tmp_path, hidden_act):
    hf_model = ref.save_random_model(ref.llama_config(hidden_act=hidden_act), tmp_path)
    model = checkpoints.load_hf_folder(str(tmp_path))
    ids = ref.random_ids((2, 12), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


def test_the_activation_changes_the_logits(tmp_path):
    """The parity above can fail: the same weights under silu and gelu give other logits."""
    ref.save_random_model(ref.llama_config(hidden_act="gelu"), tmp_path)
    gelu = checkpoints.load_hf_folder(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "silu"}))
    silu = checkpoints.load_hf_folder(str(tmp_path))
    ids = ref.random_ids((1, 8), 96)
    assert np.abs(np.asarray(gelu(ids)) - np.asarray(silu(ids))).max() > 1e-3


def test_qwen2_window_starts_at_max_window_layers(tmp_path):
    config = ref.qwen2_config(
        num_hidden_layers=3, use_sliding_window=True, sliding_window=4, max_window_layers=1
    )
    hf_model = ref.save_random_model(config, tmp_path)
    model = checkpoints.load_hf_folder(str(tmp_path))
    assert model.config.layer_types == ("full_attention",) + ("sliding_attention",) * 2
    ids = ref.random_ids((2, 12), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


# What SmolLM2-135M's config.json holds beyond transformers' own fields (nanotron's export).
SMOLLM2_EXTRAS = {
    "is_llama_config": True,
    "rope_interleaved": False,
    "pretraining_tp": 1,
    "transformers.js_config": {"kv_cache_dtype": {"q4f16": "float16"}},
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_cache": True,
}


def test_published_config_extras_load():
    hf = {**ref.llama_config().to_dict(), **SMOLLM2_EXTRAS}
    assert decoder_config.Config.from_hf(hf).activation == "silu"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hidden_act": "relu"}, "hidden_act='relu' is not supported"),
        ({"hidden_act": "quick_gelu"}, "'quick_gelu'"),
        ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "'yarn'"),
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "'dynamic'"),
        ({"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}}, "partial"),
        ({"rope_interleaved": True}, "rope_interleaved"),
        ({"attention_dropout": 0.1}, "attention_dropout=0.1"),
        ({"quantization_config": {"quant_method": "gptq"}}, r"\['quantization_config'\]"),
        ({"sliding_window": 4}, r"llama config .*\['sliding_window'\]"),
    ],
)
def test_unsupported_llama_attributes_are_refused_by_name(tmp_path, change, message):
    hf = ref.llama_config().to_dict()
    if "rope_scaling" in change:  # A transformers v4 config: no rope_parameters.
        hf.pop("rope_parameters")
    hf.update(change)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    with pytest.raises(ValueError, match=message):
        checkpoints.load_hf_folder(str(tmp_path))


CONFIGS = {
    "llama": lambda: presets.preset_config("llama-3.2-1b"),
    "qwen2": lambda: presets.preset_config("qwen2.5-0.5b"),
    "mistral": lambda: decoder_config.Config.from_hf(ref.mistral_config().to_dict()),
    "gemma3_text": lambda: presets.preset_config("gemma3-270m"),
}


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_every_family_is_the_decoder_and_round_trips(model_type):
    config = CONFIGS[model_type]()
    assert config.model_type == model_type
    assert decoder_config.Config.from_hf(config.to_hf()) == config
    assert registry.family_of(config).__name__ == "pathjax.models.decoder"
