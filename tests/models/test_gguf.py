"""GGUF import: tiny llama.cpp-style files, and the real embedded SmolLM2-135M."""

import numpy as np
import pytest
import torch
import transformers

import pathjax
from pathjax import generate as gen
from pathjax.models import embedded, gguf_import
from tests.models import gguf_writer
from tests.models import hf_reference as ref


def test_unpermute_inverts_llama_cpp_permute():
    weight = np.arange(8 * 3 * 5, dtype=np.float32).reshape(8 * 3, 5)
    permuted = gguf_writer.permute_rotary(weight, 3)
    assert not np.array_equal(permuted, weight)
    np.testing.assert_array_equal(gguf_import.unpermute_rotary(permuted, 3), weight)


@pytest.mark.parametrize("tied", [False, True])
def test_tiny_f32_gguf_matches_transformers(tmp_path, tied):
    hf_model = ref.save_random_model(ref.llama_config(tie_word_embeddings=tied), tmp_path / "hf")
    path = tmp_path / "tiny.gguf"
    gguf_writer.llama_to_gguf(hf_model, path)
    model, _ = pathjax.load_model(str(path), tokenizer=None)
    assert model.config.tie_word_embeddings == tied
    ids = ref.random_ids((2, 12), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


def test_tiny_q8_gguf_matches_transformers_reading_the_same_file(tmp_path):
    # Q8_0 blocks hold 32 values: every matrix's row length is a multiple of 32.
    config = ref.llama_config(hidden_size=64, intermediate_size=96)
    hf_model = ref.save_random_model(config, tmp_path / "hf")
    gguf_writer.llama_to_gguf(hf_model, tmp_path / "q8.gguf", quantize_q8=True)
    model, _ = pathjax.load_model(str(tmp_path / "q8.gguf"), tokenizer=None)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file="q8.gguf", dtype=torch.float32
    ).eval()
    ids = ref.random_ids((2, 12), 96)
    ours = np.asarray(model(ids))
    np.testing.assert_allclose(ours, ref.torch_logits(theirs, ids), atol=1e-4, rtol=0)
    # Quantization did happen: the file is not the float weights.
    assert np.abs(ours - ref.torch_logits(hf_model, ids)).max() > 1e-6


PROMPTS = [
    "The weather today is",
    "When I walked into the kitchen this morning, I noticed",
    "Here is a short list of things to pack for a weekend trip:",
    "My neighbor asked whether",
]


@pytest.fixture(scope="module")
def smollm2():
    path = embedded.embedded_path("smollm2-135m")
    ours, tokenizer = pathjax.load_model("smollm2-135m")
    folder, name = path.rsplit("/", 1)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    ).eval()
    their_tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return ours, tokenizer, theirs, their_tokenizer


@pytest.mark.slow
def test_embedded_smollm2_logits_match_transformers(smollm2):
    ours, tokenizer, theirs, _ = smollm2
    assert ours.config.num_layers == 30 and ours.config.tie_word_embeddings
    for prompt in PROMPTS:
        ids = np.asarray([tokenizer(prompt)["input_ids"]], np.int32)
        diff = np.abs(np.asarray(ours(ids)) - ref.torch_logits(theirs, ids)).max()
        assert diff < 2e-3, (prompt, diff)


@pytest.mark.slow
def test_embedded_smollm2_greedy_tokens_match_transformers(smollm2):
    ours, tokenizer, theirs, _ = smollm2
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS[:2]]
    generated = gen.generate(ours, prompts, gen.SamplingConfig(max_new_tokens=20), eos_ids=[-1])
    for prompt, tokens in zip(prompts, generated, strict=True):
        with torch.no_grad():
            out = theirs.generate(
                torch.tensor([prompt]), max_new_tokens=20, do_sample=False, eos_token_id=None
            )
        assert tokens == out[0, len(prompt) :].tolist()


@pytest.mark.slow
def test_embedded_tokenizer_equals_transformers_gguf_tokenizer(smollm2):
    _, tokenizer, _, their_tokenizer = smollm2
    assert len(tokenizer) == len(their_tokenizer) == 49152
    text = "I said I'd call Maya back tomorrow, but honestly?  Not sure. 3.14 — café"
    assert tokenizer(text)["input_ids"] == their_tokenizer(text)["input_ids"]
    assert tokenizer.eos_token_id == their_tokenizer.eos_token_id == 2
