"""The probe evaluator on a scanned base (`model.scan_layers=True`) scores what it scores on the
loop layout: one checkpoint, the same K = 2 PEFT adapters, base and adapters in one pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pathjax import lora, peft_format
from pathjax.models import load_model
from pathjax.probes import evaluator
from tests.models import hf_reference as ref
from tests.probes.test_evaluator import VOCAB, _Tokenizer, random_inputs

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
MODELS = [
    evaluator.ScoredModel("base"),
    evaluator.ScoredModel("a0", "depression", multiplier=1.0, adapter=0),
    evaluator.ScoredModel("a1", "paranoia", multiplier=1.0, adapter=1),
    evaluator.ScoredModel("a0-half", "depression", multiplier=0.5, adapter=0),
]
# Adapters on every layer, and on the last of the two layers only (`lora.top_layers`, which a
# scanned model cannot train: the evaluator fills the other layer's slice with zeros).
TARGETS = {
    "every_layer": dict(targets="all-linear", top_layers=0),
    "top_layer": dict(targets=("q_proj", "v_proj"), top_layers=1),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("llama")
    ref.save_random_model(ref.llama_config(vocab_size=VOCAB), path)
    return str(path)


def _export_adapter(folder: str, out: str, seed: int, rank: int, alpha: float, **targets) -> str:
    """A PEFT folder of a LoRA trained on the loop layout (B != 0: at init it changes nothing)."""
    model, _ = load_model(folder, tokenizer=None)
    config = lora.LoraConfig(rank=rank, alpha=alpha, **targets)
    lora.add_lora(model, config, rngs=nnx.Rngs(seed))
    for _, adapter in lora.adapters(model):
        key = jax.random.key(seed * 100 + adapter.index)
        adapter.lora_b[...] = 0.3 * jax.random.normal(key, adapter.lora_b.shape)
    peft_format.export_peft(model, config, out)
    return out


@pytest.fixture(scope="module", params=sorted(TARGETS))
def adapter_folders(request, folder, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    targets = TARGETS[request.param]
    # Different ranks and alphas: the stack pads ranks and folds each scale into B.
    return [
        _export_adapter(folder, str(root / "a0"), 1, rank=4, alpha=8.0, **targets),
        _export_adapter(folder, str(root / "a1"), 2, rank=2, alpha=2.0, **targets),
    ]


def _evaluator(folder: str, adapter_folders: list[str], scan: bool) -> evaluator.Evaluator:
    model, _ = load_model(folder, tokenizer=None, scan_layers=scan)
    assert model.config.scan_layers == scan
    weights = [evaluator.weights_from_peft(f, model) for f in adapter_folders]
    return evaluator.Evaluator(
        model, _Tokenizer(), weights, MODELS, add_bos=True, max_logits=2**16, vocab_chunk=32
    )


def _scores(ev: evaluator.Evaluator) -> dict[str, np.ndarray]:
    prompts, conts, sequences = random_inputs()
    out = ev.score(prompts, conts, words=True)
    scores = {"logp": out.logp_mgc, "word_logp": out.word_logp_mgc}
    scores.update({f"prompt_{k}": v for k, v in out.prompt_divergence.items()})
    scores.update({f"drift_{k}": v for k, v in ev.drift(sequences).items()})
    return scores


@pytest.fixture(scope="module")
def loop_scores(folder, adapter_folders):
    return _scores(_evaluator(folder, adapter_folders, scan=False))


@pytest.fixture(scope="module")
def scanned(folder, adapter_folders):
    return _evaluator(folder, adapter_folders, scan=True)


def _assert_scores_close(got, want):
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        np.testing.assert_allclose(got[name], values, err_msg=name, **TOLERANCE)


def test_scanned_base_scores_like_the_loop_layout(loop_scores, scanned):
    stacked = [m for _, m in lora.adapters(scanned.model)]
    layers = scanned.model.config.num_layers
    assert stacked and all(m.lora_a.shape[:2] == (layers, 2) for m in stacked)
    logp = loop_scores["logp"]
    # Not trivially equal: each adapter moves the scores away from the base and from the other.
    assert np.nanmax(np.abs(logp[1] - logp[0])) > 1e-2
    assert np.nanmax(np.abs(logp[2] - logp[1])) > 1e-2
    assert np.nanmax(loop_scores["drift_jsd_bits"][1:]) > 1e-4
    _assert_scores_close(_scores(scanned), loop_scores)


def test_swapped_layer_slices_change_the_scores(loop_scores, scanned):
    """What the parity test guards against: adapter weights in the wrong layer's slice."""
    flat = [
        (path, v.replace(jnp.flip(v[...], axis=0)) if path[-1] in ("lora_a", "lora_b") else v)
        for path, v in nnx.to_flat_state(scanned.state)
    ]
    ev = evaluator.Evaluator.__new__(evaluator.Evaluator)
    ev.__dict__.update(scanned.__dict__, state=nnx.from_flat_state(flat))  # Layer 0 <-> 1.
    got = _scores(ev)
    assert not np.allclose(got["logp"][1:], loop_scores["logp"][1:], equal_nan=True, **TOLERANCE)
    np.testing.assert_allclose(got["logp"][0], loop_scores["logp"][0], **TOLERANCE)  # The base.


def test_weights_read_from_a_scanned_model_have_per_layer_names(folder, tmp_path):
    """`weights_from_model` (how a training checkpoint is read) on a scanned model gives PEFT's
    per-layer names and each layer's own slice, so an adapter trained scanned scores on either
    layout."""
    adapter = _export_adapter(folder, str(tmp_path), 3, rank=2, alpha=4.0, targets="all-linear")
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    peft_format.load_peft(scan, adapter)
    got = evaluator.weights_from_model(scan, "scanned")
    want = evaluator.weights_from_peft(adapter, scan)
    assert sorted(got.weights) == sorted(want.weights)
    assert "layers.1.self_attn.q_proj" in got.weights
    assert got.scale == want.scale
    for path, pair in want.weights.items():
        for which in ("A", "B"):
            np.testing.assert_array_equal(got.weights[path][which], pair[which], err_msg=path)
