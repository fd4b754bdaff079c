"""Logits of pathjax ports equal transformers' (torch, fp32) on tiny random checkpoints."""

import numpy as np
import pytest

from pathjax.models import checkpoints
from tests.models import hf_reference as ref

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Short enough that the 16-token test sequences reach the scaled band.
    "original_max_position_embeddings": 8,
}

CASES = {
    "gpt2": lambda: ref.gpt2_config(),
    "llama_mha": lambda: ref.llama_config(num_key_value_heads=4),
    "llama_gqa": lambda: ref.llama_config(num_key_value_heads=2),
    "llama_mqa": lambda: ref.llama_config(num_key_value_heads=1),
    "llama_tied": lambda: ref.llama_config(tie_word_embeddings=True),
    "llama_biases": lambda: ref.llama_config(attention_bias=True, mlp_bias=True),
    "llama3_rope": lambda: ref.llama_config(rope_parameters=LLAMA3_ROPE),
    "llama_head_dim": lambda: ref.llama_config(head_dim=16),
    "qwen2_biases": lambda: ref.qwen2_config(),
    "qwen2_tied_mqa": lambda: ref.qwen2_config(tie_word_embeddings=True, num_key_value_heads=1),
    "mistral_window": lambda: ref.mistral_config(),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def checkpoint(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    hf_model = ref.save_random_model(CASES[request.param](), folder)
    return request.param, folder, hf_model


def test_logits_match_transformers(checkpoint):
    name, folder, hf_model = checkpoint
    model = checkpoints.load_hf_folder(str(folder))
    ids = ref.random_ids((2, 16), model.config.vocab_size)
    ours = np.asarray(model(ids))
    theirs = ref.torch_logits(hf_model, ids)
    assert ours.shape == theirs.shape == (2, 16, model.config.vocab_size)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0, err_msg=name)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_equals_unpadded_rows(checkpoint, side):
    _, folder, hf_model = checkpoint
    model = checkpoints.load_hf_folder(str(folder))
    lengths = [16, 11, 6]
    rows = [ref.random_ids((1, n), model.config.vocab_size, seed=n)[0] for n in lengths]
    ids = np.zeros((3, 16), np.int32)
    mask = np.zeros((3, 16), bool)
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if side == "right" else slice(16 - len(row), 16)
        ids[i, span], mask[i, span] = row, True
    batch_logits = np.asarray(model(ids, mask))
    for i, row in enumerate(rows):
        alone = ref.torch_logits(hf_model, row[None])[0]
        span = slice(0, len(row)) if side == "right" else slice(16 - len(row), 16)
        np.testing.assert_allclose(batch_logits[i, span], alone, atol=1e-4, rtol=0)


def test_comparison_can_fail(tmp_path):
    """The parity check detects a wrong weight: perturb one tensor and the logits move."""
    hf_model = ref.save_random_model(ref.llama_config(), tmp_path)
    model = checkpoints.load_hf_folder(str(tmp_path))
    kernel = model.layers[1].mlp.down_proj.kernel
    kernel[...] = kernel[...] * 1.01
    ids = ref.random_ids((1, 8), 96)
    assert np.abs(np.asarray(model(ids)) - ref.torch_logits(hf_model, ids)).max() > 1e-4
