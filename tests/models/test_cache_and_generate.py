"""KV-cache decoding equals the full forward pass; sampling filters and stopping behave."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pathjax import generate as gen
from pathjax.models import checkpoints
from tests.models import hf_reference as ref


@pytest.fixture(scope="module", params=["llama", "gpt2", "mistral"])
def tiny(request, tmp_path_factory):
    config = {
        "llama": ref.llama_config,
        "gpt2": ref.gpt2_config,
        "mistral": lambda: ref.mistral_config(sliding_window=4),
    }[request.param]()
    folder = tmp_path_factory.mktemp(request.param)
    hf_model = ref.save_random_model(config, folder)
    return checkpoints.load_hf_folder(str(folder)), hf_model


def test_cached_decoding_equals_full_forward(tiny):
    model, _ = tiny
    ids = ref.random_ids((2, 12), model.config.vocab_size)
    full = np.asarray(model(ids))
    cache = model.init_cache(2, 12)
    prefix_logits, cache = model(ids[:, :5], cache=cache)
    steps = [np.asarray(prefix_logits)]
    for t in range(5, 12):
        logits, cache = model(ids[:, t : t + 1], cache=cache)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5, rtol=0)


def test_cached_decoding_with_left_padding(tiny):
    model, _ = tiny
    short = ref.random_ids((1, 7), model.config.vocab_size, seed=3)[0]
    ids, mask = gen.left_pad([short], pad_id=0, multiple=8)
    cache = model.init_cache(1, ids.shape[1] + 3)
    _, cache = model(ids, mask, cache=cache)
    nxt = ref.random_ids((1, 1), model.config.vocab_size, seed=4)
    logits, _ = model(nxt, jnp.ones((1, 1), bool), cache=cache)
    full = np.asarray(model(np.concatenate([short[None], nxt], axis=1)))
    np.testing.assert_allclose(np.asarray(logits)[0, -1], full[0, -1], atol=1e-5, rtol=0)


def test_greedy_generation_equals_transformers(tiny):
    model, hf_model = tiny
    prompts = [ref.random_ids((1, n), model.config.vocab_size, seed=n)[0].tolist() for n in (5, 9)]
    ours = gen.generate(model, prompts, gen.SamplingConfig(max_new_tokens=10), eos_ids=[-1])
    for prompt, tokens in zip(prompts, ours, strict=True):
        with torch.no_grad():
            out = hf_model.generate(
                torch.tensor([prompt]),
                max_new_tokens=10,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        assert tokens == out[0, len(prompt) :].tolist()


def test_top_k_and_top_p_filters():
    logits = jnp.log(jnp.asarray([[0.5, 0.25, 0.15, 0.1]]))
    kept_k = np.isfinite(np.asarray(gen.filter_logits(logits, top_k=2, top_p=None)))
    assert kept_k.tolist() == [[True, True, False, False]]
    # Mass before each token: 0, .5, .75, .9 -> top_p=.7 keeps the first two.
    kept_p = np.isfinite(np.asarray(gen.filter_logits(logits, top_k=None, top_p=0.7)))
    assert kept_p.tolist() == [[True, True, False, False]]
    kept_tiny_p = np.isfinite(np.asarray(gen.filter_logits(logits, top_k=None, top_p=1e-6)))
    assert kept_tiny_p.tolist() == [[True, False, False, False]]


def test_sampling_is_reproducible_and_key_dependent(tiny):
    model, _ = tiny
    prompts = [[1, 2, 3], [4, 5, 6, 7]]
    sampling = gen.SamplingConfig(max_new_tokens=12, temperature=1.0, top_k=20, top_p=0.95)
    first = gen.generate(model, prompts, sampling, rng=jax.random.key(7), eos_ids=[-1])
    again = gen.generate(model, prompts, sampling, rng=jax.random.key(7), eos_ids=[-1])
    other = gen.generate(model, prompts, sampling, rng=jax.random.key(8), eos_ids=[-1])
    assert first == again
    assert first != other


def test_generation_stops_at_eos(tiny):
    model, _ = tiny
    prompts = [[1, 2, 3]]
    free = gen.generate(model, prompts, gen.SamplingConfig(max_new_tokens=8), eos_ids=[-1])[0]
    eos = free[2]  # Declare the third greedy token EOS: output must end right there.
    stopped = gen.generate(model, prompts, gen.SamplingConfig(max_new_tokens=8), eos_ids=[eos])[0]
    assert stopped == free[: free.index(eos) + 1]


def test_bad_sampling_settings_are_refused():
    with pytest.raises(ValueError, match="top_p"):
        gen.SamplingConfig(top_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        gen.SamplingConfig(temperature=-1)
