"""Scanned layers (`model.scan_layers`) and remat (`model.remat`) against the loop layout."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from pathjax import generate, lora, peft_format, sharding
from pathjax.models import checkpoints, load_model, registry
from pathjax.train import identity
from pathjax.train import step as step_lib
from tests.models import hf_reference as ref

CASES = {"llama": ref.llama_config, "gemma3": ref.gemma3_config}
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module", params=sorted(CASES))
def folder(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    ref.save_random_model(CASES[request.param](), path)
    return str(path)


def _ids(model, shape=(2, 11)):
    return jnp.asarray(ref.random_ids(shape, model.config.vocab_size, seed=1))


def _mask(shape=(2, 11)):
    mask = np.ones(shape, np.int32)
    mask[1, :3] = 0  # Left padding on one row.
    return jnp.asarray(mask)


def _trained_looking(model, seed=1):
    """LoRA on every linear layer, with B != 0 (at init B = 0 would hide a wrong layer)."""
    lora.add_lora(model, lora.LoraConfig(rank=4, targets="all-linear"), rngs=nnx.Rngs(seed))
    for _, adapter in lora.adapters(model):
        key = jax.random.key(adapter.index + 7 * seed)
        adapter.lora_b[...] = 0.1 * jax.random.normal(key, adapter.lora_b.shape)
    return model


def test_checkpoint_loads_stacked_with_the_loop_logits(folder):
    loop, _ = load_model(folder, tokenizer=None)
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    kernel = scan.layers.self_attn.q_proj.kernel
    assert kernel.shape[0] == loop.config.num_layers
    assert kernel.get_metadata()["out_sharding"] == (None, "embed", "heads")
    ids, mask = _ids(loop), _mask()
    np.testing.assert_allclose(scan(ids, mask), loop(ids, mask), **TOLERANCE)
    # Exported back under the per-layer names, bit for bit.
    loop_tensors, scan_tensors = checkpoints.model_tensors(loop), checkpoints.model_tensors(scan)
    assert sorted(scan_tensors) == sorted(loop_tensors)
    for key, array in loop_tensors.items():
        np.testing.assert_array_equal(scan_tensors[key], array)


def test_stacked_checkpoint_onto_a_mesh(folder):
    mesh = sharding.make_mesh((2, 2, 2))
    loop, _ = load_model(folder, tokenizer=None)
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True, mesh=mesh)
    kernel = scan.layers.mlp.up_proj.kernel[...]
    assert kernel.sharding.spec[0] is None  # The layer axis is never split.
    assert any(axis is not None for axis in kernel.sharding.spec[1:])  # The others are.
    np.testing.assert_array_equal(
        np.asarray(kernel),
        np.stack([np.asarray(layer.mlp.up_proj.kernel[...]) for layer in loop.layers]),
    )


def test_cached_decoding_matches(folder):
    loop, _ = load_model(folder, tokenizer=None)
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    ids = _ids(loop, (2, 8))
    outputs = []
    for model in (loop, scan):
        cache = model.init_cache(2, 12)
        logits, cache = model(ids[:, :6], cache=cache)
        step_logits, cache = model(ids[:, 6:7], cache=cache)
        outputs.append((logits, step_logits))
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_allclose(b, a, **TOLERANCE)
    # The scanned model's cache stays one layer-axis array through decoding (no restacking of
    # per-layer caches at every token).
    assert cache.layers.k_bskf.shape[0] == scan.config.num_layers


def test_greedy_generation_matches(folder):
    loop, _ = load_model(folder, tokenizer=None)
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    ids = _ids(loop, (2, 5))
    sampling = generate.SamplingConfig(max_new_tokens=6, temperature=0.0)
    prompts = np.asarray(ids).tolist()
    tokens = [generate.generate(m, prompts, sampling) for m in (loop, scan)]
    assert tokens[1] == tokens[0] and all(len(t) == 6 for t in tokens[0])


@pytest.mark.parametrize("direction", ["scan_to_loop", "loop_to_scan"])
def test_peft_adapters_cross_layouts(folder, tmp_path, direction):
    source_scan = direction == "scan_to_loop"
    source, _ = load_model(folder, tokenizer=None, scan_layers=source_scan)
    target, _ = load_model(folder, tokenizer=None, scan_layers=not source_scan)
    _trained_looking(source)
    peft_format.export_peft(source, lora.LoraConfig(rank=4), str(tmp_path))
    peft_format.load_peft(target, str(tmp_path))
    ids, mask = _ids(source), _mask()
    with_adapters = source(ids, mask)
    assert not np.allclose(with_adapters, registry.init_model(source.config)(ids, mask))
    np.testing.assert_allclose(target(ids, mask), with_adapters, **TOLERANCE)
    # Per-layer PEFT names in both layouts.
    again = tmp_path / "again"
    peft_format.export_peft(target, lora.LoraConfig(rank=4), str(again))
    names = sorted(peft_format.read_peft_tensors(str(again), registry.family_of(target.config)))
    assert names == sorted(
        peft_format.read_peft_tensors(str(tmp_path), registry.family_of(target.config))
    )
    assert "layers.1.self_attn.q_proj" in names


def _loss_and_grads(model, ids, mask):
    graphdef, adapters, controls, base = step_lib.split_model(model)
    batch = {"input_ids": ids, "attention_mask": mask, "loss_mask": mask}

    @jax.jit
    def loss(adapters):
        logits = nnx.merge(graphdef, adapters, controls, base, copy=True)(ids, mask)
        return step_lib.target_nll(logits, batch)[0]

    return jax.value_and_grad(loss)(adapters)


def _stacked_like(loop_grads, n):
    """Loop-layout adapter gradients stacked on a layer axis, keyed by the stacked paths."""
    flat = {}
    for path, value in nnx.to_flat_state(loop_grads):
        flat.setdefault((path[0], *path[2:]), [None] * n)[path[1]] = np.asarray(value[...])
    return {path: np.stack(values) for path, values in flat.items()}


@pytest.mark.parametrize("remat", ["none", "full", "dots"])
def test_remat_keeps_loss_and_gradients(folder, remat):
    reference, _ = load_model(folder, tokenizer=None)
    loss_ref, grads_ref = _loss_and_grads(_trained_looking(reference), _ids(reference), _mask())
    stacked_ref = _stacked_like(grads_ref, reference.config.num_layers)
    for scan in (False, True):
        model, _ = load_model(folder, tokenizer=None, scan_layers=scan, remat=remat)
        _trained_looking(model)
        if scan:
            _copy_adapters(reference, model)  # The loop model's adapter values, stacked.
        loss, grads = _loss_and_grads(model, _ids(model), _mask())
        np.testing.assert_allclose(loss, loss_ref, **TOLERANCE)
        flat = {p: np.asarray(v[...]) for p, v in nnx.to_flat_state(grads)}
        expected = (
            stacked_ref
            if scan
            else {p: np.asarray(v[...]) for p, v in nnx.to_flat_state(grads_ref)}
        )
        assert sorted(flat) == sorted(expected)
        for path, value in flat.items():
            np.testing.assert_allclose(value, expected[path], rtol=1e-4, atol=1e-5)


def _copy_adapters(loop_model, scan_model):
    stacked = _stacked_like(nnx.state(loop_model, lora.ADAPTERS), loop_model.config.num_layers)
    for path, variable in nnx.to_flat_state(nnx.state(scan_model, lora.ADAPTERS)):
        variable[...] = jnp.asarray(stacked[path])


def test_train_step_runs_stacked(folder):
    model, _ = load_model(folder, tokenizer=None, scan_layers=True, remat="dots")
    lora.add_lora(model, lora.LoraConfig(rank=4, dropout=0.1), rngs=nnx.Rngs(0))
    lora.set_train_mode(model, True)
    graphdef, adapters, controls, base = step_lib.split_model(model)
    tx = optax.adam(1e-2)
    state = step_lib.TrainState(
        step=jnp.zeros((), jnp.int32),
        adapters=adapters,
        opt_state=tx.init(adapters),
        rng=jax.random.key_data(jax.random.key(0)),
    )
    ids, mask = _ids(model, (4, 11)), jnp.ones((4, 11), jnp.int32)
    batch = {"input_ids": ids, "attention_mask": mask, "loss_mask": mask}
    step = jax.jit(
        lambda s, b, x: step_lib.train_step(
            s,
            b,
            x,
            graphdef=graphdef,
            controls=controls,
            tx=tx,
            schedule=optax.constant_schedule(1e-2),
        )
    )
    losses = []
    for _ in range(3):
        state, metrics = step(state, base, batch)
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert state.adapters["layers"]["self_attn"]["q_proj"]["lora"]["lora_b"][...].shape[0] == (
        model.config.num_layers
    )


def test_parameter_counts_under_eval_shape_match():
    from pathjax.models import presets

    for name in ("smollm2-135m", "tiny-gemma3"):
        config = presets.preset_config(name)
        family = registry.family_of(config)
        counts = {
            scan: registry.count_params(
                registry.abstract_model(family, dataclasses.replace(config, scan_layers=scan))
            )
            for scan in (False, True)
        }
        assert counts[False] == counts[True] > 0


def test_unsupported_combinations_name_the_fix(folder):
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    with pytest.raises(ValueError, match="model.scan_layers=False"):
        lora.add_lora(scan, lora.LoraConfig(top_layers=1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.scan_layers=False"):
        lora.add_lora(scan, lora.LoraConfig(targets=r"layers\.0\..*q_proj"), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="model.remat"):
        load_model(folder, tokenizer=None, remat="some")


def test_gpt2_refuses_scan_layers(tmp_path):
    ref.save_random_model(ref.gpt2_config(), tmp_path)
    with pytest.raises(ValueError, match="model.scan_layers=False"):
        load_model(str(tmp_path), tokenizer=None, scan_layers=True)


def test_training_identity_tells_the_layouts_apart(folder):
    import ml_collections

    config = ml_collections.ConfigDict({"model": {"source": folder, "preset": ""}})
    loop, _ = load_model(folder, tokenizer=None)
    scan, _ = load_model(folder, tokenizer=None, scan_layers=True)
    loop_id, scan_id = identity.model_identity(config, loop), identity.model_identity(config, scan)
    assert "layer_layout" not in loop_id  # Checkpoints from before the setting still match.
    assert loop_id != scan_id and "model.scan_layers=True" in scan_id["layer_layout"]
