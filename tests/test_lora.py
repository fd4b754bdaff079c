"""LoRA: PEFT's init and semantics, frozen base, merge, multiplier, stacked adapters, PEFT I/O."""

import jax
import jax.numpy as jnp
import numpy as np
import peft
import pytest
import torch
from flax import nnx

from pathjax import lora, peft_format
from pathjax.models import checkpoints
from pathjax.train import step as step_lib
from tests.models import hf_reference as ref

CASES = {"llama": ref.llama_config, "gpt2": ref.gpt2_config, "qwen2": ref.qwen2_config}


@pytest.fixture(scope="module", params=sorted(CASES))
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    hf_model = ref.save_random_model(CASES[request.param](), folder)
    return request.param, folder, hf_model


def _with_trained_looking_adapters(folder, config=None):
    config = config or lora.LoraConfig(rank=4, alpha=8)
    model = checkpoints.load_hf_folder(str(folder))
    lora.add_lora(model, config, rngs=nnx.Rngs(1))
    for _, adapter in lora.adapters(model):  # B = 0 at init: give it values.
        key = jax.random.key(adapter.index)
        adapter.lora_b[...] = 0.1 * jax.random.normal(key, adapter.lora_b.shape)
    return model, config


def test_default_targets_and_unchanged_base_paths(tiny):
    name, folder, _ = tiny
    model = checkpoints.load_hf_folder(str(folder))
    before = {p for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    paths = lora.add_lora(model, lora.LoraConfig(), rngs=nnx.Rngs(0))
    after = {p for p, _ in nnx.to_flat_state(nnx.state(model, lora.BASE))}
    assert before == after
    leaves = {p.split(".")[-1] for p in paths}
    assert leaves == ({"c_attn"} if name == "gpt2" else {"q_proj", "v_proj"})
    all_linear = checkpoints.load_hf_folder(str(folder))
    every = lora.add_lora(all_linear, lora.LoraConfig(targets="all-linear"), rngs=nnx.Rngs(0))
    assert len(every) > len(paths) and not any("lm_head" in p for p in every)


def test_init_follows_peft_and_changes_nothing(tiny):
    _, folder, _ = tiny
    model = checkpoints.load_hf_folder(str(folder))
    ids = ref.random_ids((2, 9), model.config.vocab_size)
    before = np.asarray(model(ids))
    lora.add_lora(model, lora.LoraConfig(rank=4), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(np.asarray(model(ids)), before)
    for _, adapter in lora.adapters(model):
        a = np.asarray(adapter.lora_a[...])
        bound = 1 / np.sqrt(a.shape[0])
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.5 * bound
        assert not np.asarray(adapter.lora_b[...]).any()


def test_scale_and_rslora():
    assert lora.LoraConfig(rank=4, alpha=8).scale == 2.0
    assert lora.LoraConfig(rank=4, alpha=8, use_rslora=True).scale == 4.0
    with pytest.raises(ValueError, match="rank"):
        lora.LoraConfig(rank=0)


def test_no_gradient_reaches_frozen_weights(tiny):
    _, folder, _ = tiny
    model, _ = _with_trained_looking_adapters(folder)
    graphdef, adapters, controls, base = step_lib.split_model(model)
    ids = ref.random_ids((2, 8), model.config.vocab_size)
    batch = {
        "input_ids": jnp.asarray(ids),
        "attention_mask": jnp.ones((2, 8), jnp.int32),
        "loss_mask": jnp.ones((2, 8), jnp.float32),
    }

    def loss(adapters, base):
        logits = step_lib._forward(graphdef, adapters, controls, base, batch)
        return step_lib.target_nll(logits, batch)[0]

    adapter_grads = jax.grad(loss)(adapters, base)
    assert all(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(adapter_grads))
    # The step differentiates adapters only: base weights are inputs, never differentiated.
    # Differentiating both shows the base has a gradient to withhold, which the step drops.
    _, base_grads = jax.grad(loss, argnums=(0, 1))(adapters, base)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(base_grads))


def test_head_at_target_positions_gives_the_full_logits_loss_and_gradients(tiny):
    """The step's head-at-targets path equals the loss-masked loss over every position."""
    _, folder, _ = tiny
    model, _ = _with_trained_looking_adapters(folder)
    graphdef, adapters, controls, base = step_lib.split_model(model)
    ids = jnp.asarray(ref.random_ids((2, 10), model.config.vocab_size))
    loss_mask = np.zeros((2, 10), np.float32)
    loss_mask[0, 4:10] = 1  # Row 0: 6 target tokens; row 1: 3, then padding.
    loss_mask[1, 5:8] = 1
    attention = np.ones((2, 10), np.int32)
    attention[1, 8:] = 0
    positions = np.zeros((2, 8), np.int32)
    weights = np.zeros((2, 8), np.float32)
    positions[0, :6], weights[0, :6] = np.arange(3, 9), 1
    positions[1, :3], weights[1, :3] = np.arange(4, 7), 1
    full = {"input_ids": ids, "attention_mask": jnp.asarray(attention), "loss_mask": loss_mask}
    at_targets = {**full, "target_positions": positions, "target_weights": weights}

    def loss(adapters, batch):
        logits = step_lib._forward(graphdef, adapters, controls, base, batch)
        nll, tokens = step_lib.target_nll(logits, batch)
        return nll / tokens, step_lib.target_accuracy(logits, batch)

    (full_loss, full_acc), full_grads = jax.value_and_grad(loss, has_aux=True)(adapters, full)
    (loss_t, acc_t), grads_t = jax.value_and_grad(loss, has_aux=True)(adapters, at_targets)
    assert abs(float(full_loss) - float(loss_t)) < 1e-5
    assert [float(x) for x in full_acc] == [float(x) for x in acc_t]
    for a, b in zip(jax.tree.leaves(full_grads), jax.tree.leaves(grads_t), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=1e-4)
    # The positions matter: shifting them back by one scores other tokens.
    shifted = {**at_targets, "target_positions": positions - weights.astype(np.int32)}
    assert abs(float(loss(adapters, shifted)[0]) - float(full_loss)) > 1e-3


def test_merged_equals_unmerged_and_unmerge_restores(tiny):
    _, folder, _ = tiny
    model, config = _with_trained_looking_adapters(folder)
    ids = ref.random_ids((2, 9), model.config.vocab_size)
    adapted = np.asarray(model(ids))
    adapter_state = nnx.state(model, lora.ADAPTERS)
    base_before = jax.tree.map(np.asarray, nnx.state(model, lora.BASE))
    lora.merge(model)
    assert not lora.adapters(model)
    np.testing.assert_allclose(np.asarray(model(ids)), adapted, atol=1e-5, rtol=0)
    lora.unmerge(model, adapter_state, config)
    np.testing.assert_allclose(np.asarray(model(ids)), adapted, atol=1e-5, rtol=0)
    for a, b in zip(
        jax.tree.leaves(base_before), jax.tree.leaves(nnx.state(model, lora.BASE)), strict=True
    ):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-6)


def test_multiplier_zero_is_the_base_model_and_scales_the_delta(tiny):
    _, folder, _ = tiny
    plain = checkpoints.load_hf_folder(str(folder))
    model, _ = _with_trained_looking_adapters(folder)
    ids = ref.random_ids((3, 7), model.config.vocab_size)
    base_logits = np.asarray(plain(ids))
    full = np.asarray(model(ids))
    lora.set_controls(model, multiplier=jnp.asarray([0.0, 1.0, 0.0]))
    mixed = np.asarray(model(ids))
    np.testing.assert_allclose(mixed[0], base_logits[0], atol=1e-5)
    np.testing.assert_allclose(mixed[1], full[1], atol=1e-5)
    np.testing.assert_allclose(mixed[2], base_logits[2], atol=1e-5)


def test_stacked_adapters_score_base_and_k_adapters_in_one_pass(tiny):
    _, folder, _ = tiny
    singles = []
    for seed in (1, 2):
        model = checkpoints.load_hf_folder(str(folder))
        lora.add_lora(model, lora.LoraConfig(rank=4), rngs=nnx.Rngs(seed))
        for _, adapter in lora.adapters(model):
            adapter.lora_b[...] = 0.1 * jax.random.normal(
                jax.random.key(seed * 100 + adapter.index), adapter.lora_b.shape
            )
        singles.append(model)
    stacked = checkpoints.load_hf_folder(str(folder))
    lora.add_lora(stacked, lora.LoraConfig(rank=4), rngs=nnx.Rngs(0), num_adapters=2)
    for (_, target), *sources in zip(
        lora.adapters(stacked), *(lora.adapters(m) for m in singles), strict=True
    ):
        target.lora_a[...] = jnp.stack([s[1].lora_a[...] for s in sources])
        target.lora_b[...] = jnp.stack([s[1].lora_b[...] for s in sources])
    ids = ref.random_ids((1, 8), stacked.config.vocab_size)
    rows = np.repeat(ids, 3, axis=0)  # Base, adapter 0, adapter 1.
    lora.set_controls(stacked, multiplier=jnp.asarray([0.0, 1.0, 1.0]), adapter_index=[0, 0, 1])
    together = np.asarray(stacked(rows))
    base = checkpoints.load_hf_folder(str(folder))
    np.testing.assert_allclose(together[0], np.asarray(base(ids))[0], atol=1e-5)
    np.testing.assert_allclose(together[1], np.asarray(singles[0](ids))[0], atol=1e-5)
    np.testing.assert_allclose(together[2], np.asarray(singles[1](ids))[0], atol=1e-5)


def test_exported_adapter_reproduces_logits_in_peft(tiny, tmp_path):
    _, folder, hf_model = tiny
    model, config = _with_trained_looking_adapters(folder)
    peft_format.export_peft(model, config, str(tmp_path))
    peft_model = peft.PeftModel.from_pretrained(hf_model, str(tmp_path)).eval()
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    ours = np.asarray(model(ids))
    np.testing.assert_allclose(ref.torch_logits(peft_model, ids), ours, atol=1e-4, rtol=0)
    plain = np.asarray(checkpoints.load_hf_folder(str(folder))(ids))
    assert np.abs(ours - plain).max() > 1e-3  # The adapter matters: the check can fail.


def test_importing_an_adapter_made_by_peft(tiny, tmp_path):
    name, folder, _ = tiny
    torch.manual_seed(0)
    hf_model = ref.save_random_model(CASES[name](), tmp_path / "base")
    targets = ["c_attn", "c_proj"] if name == "gpt2" else ["q_proj", "v_proj", "down_proj"]
    peft_config = peft.LoraConfig(
        r=4,
        lora_alpha=12,
        target_modules=targets,
        use_rslora=(name == "qwen2"),
        fan_in_fan_out=name == "gpt2",
    )
    peft_model = peft.get_peft_model(hf_model, peft_config)
    with torch.no_grad():
        for param_name, param in peft_model.named_parameters():
            if "lora_B" in param_name:
                param.normal_(0, 0.1)
    peft_model.save_pretrained(tmp_path / "adapter")
    model = checkpoints.load_hf_folder(str(tmp_path / "base"))
    loaded = peft_format.load_peft(model, str(tmp_path / "adapter"))
    assert loaded.scale == peft_config.lora_alpha / (2 if name == "qwen2" else 4)
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(peft_model.eval(), ids), atol=1e-4, rtol=0
    )


def test_adapter_for_another_base_model_is_refused(tmp_path):
    ref.save_random_model(ref.llama_config(), tmp_path / "small")
    model, config = _with_trained_looking_adapters(tmp_path / "small")
    peft_format.export_peft(model, config, str(tmp_path / "adapter"))
    ref.save_random_model(ref.llama_config(hidden_size=64), tmp_path / "wide")
    wide = checkpoints.load_hf_folder(str(tmp_path / "wide"))
    with pytest.raises(peft_format.AdapterError, match="base model of another size"):
        peft_format.load_peft(wide, str(tmp_path / "adapter"))
    ref.save_random_model(ref.gpt2_config(), tmp_path / "gpt2")
    gpt2 = checkpoints.load_hf_folder(str(tmp_path / "gpt2"))
    with pytest.raises(peft_format.AdapterError, match="trained on another base model"):
        peft_format.load_peft(gpt2, str(tmp_path / "adapter"))


def test_unknown_targets_name_the_layers(tiny):
    _, folder, _ = tiny
    model = checkpoints.load_hf_folder(str(folder))
    with pytest.raises(ValueError, match="matches no linear layer.*its linear layers are named"):
        lora.add_lora(model, lora.LoraConfig(targets=("query",)), rngs=nnx.Rngs(0))


def test_top_layers_adapts_only_the_last_layers_and_exports_to_peft(tiny, tmp_path):
    name, folder, _ = tiny
    # A fresh reference: PeftModel.from_pretrained injects its layers into the model it wraps,
    # so the module fixture's model may already carry another test's adapter.
    hf_model = ref.save_random_model(CASES[name](), tmp_path / "base")
    config = lora.LoraConfig(rank=4, alpha=8, targets="all-linear", top_layers=1)
    model, _ = _with_trained_looking_adapters(folder, config)
    layer_ids = {int(lora._LAYER_INDEX.search(p).group(1)) for p, _ in lora.adapters(model)}
    all_ids = {
        int(m.group(1)) for p, _ in lora.linear_modules(model) if (m := lora._LAYER_INDEX.search(p))
    }
    assert layer_ids == {max(all_ids)} and len(all_ids) > 1
    peft_format.export_peft(model, config, str(tmp_path))
    peft_model = peft.PeftModel.from_pretrained(hf_model, str(tmp_path)).eval()
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    np.testing.assert_allclose(ref.torch_logits(peft_model, ids), np.asarray(model(ids)), atol=1e-4)
    with pytest.raises(ValueError, match="lora.top_layers=99 but the model has"):
        lora.add_lora(
            checkpoints.load_hf_folder(str(folder)),
            lora.LoraConfig(targets="all-linear", top_layers=99),
            rngs=nnx.Rngs(0),
        )
