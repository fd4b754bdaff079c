"""Checkpoint import (single, sharded, onto a mesh) and export back to transformers."""

import json
import os

import jax
import numpy as np
import pytest
import transformers
from flax import nnx

from pathjax import sharding
from pathjax.models import checkpoints
from tests.models import hf_reference as ref


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    return folder, ref.save_random_model(ref.llama_config(), folder)


def test_sharded_index_loads_like_single_file(llama_folder, tmp_path):
    folder, hf_model = llama_folder
    hf_model.save_pretrained(tmp_path, max_shard_size="20KB")
    assert os.path.isfile(tmp_path / "model.safetensors.index.json")
    assert (
        len({*json.load(open(tmp_path / "model.safetensors.index.json"))["weight_map"].values()})
        > 1
    )
    ids = ref.random_ids((1, 8), 96)
    single = np.asarray(checkpoints.load_hf_folder(str(folder))(ids))
    sharded = np.asarray(checkpoints.load_hf_folder(str(tmp_path))(ids))
    np.testing.assert_array_equal(single, sharded)


def test_load_onto_mesh_places_each_parameter_in_its_sharding(llama_folder):
    folder, hf_model = llama_folder
    assert jax.device_count() == 8
    mesh = sharding.make_mesh((2, 2, 2))
    model = checkpoints.load_hf_folder(str(folder), mesh=mesh)
    q_kernel = model.layers[0].self_attn.q_proj.kernel[...]
    assert q_kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    assert len(q_kernel.addressable_shards) == 8
    assert q_kernel.addressable_shards[0].data.shape == (16, 16)
    ids = ref.random_ids((2, 8), 96)
    np.testing.assert_allclose(
        np.asarray(model(ids)), ref.torch_logits(hf_model, ids), atol=1e-4, rtol=0
    )


@pytest.mark.parametrize("family", ["gpt2", "qwen2", "llama_tied"])
def test_export_reloads_in_transformers(family, tmp_path):
    config = {
        "gpt2": ref.gpt2_config,
        "qwen2": ref.qwen2_config,
        "llama_tied": lambda: ref.llama_config(tie_word_embeddings=True),
    }[family]()
    ref.save_random_model(config, tmp_path / "src")
    model = checkpoints.load_hf_folder(str(tmp_path / "src"))
    # Change a weight so the export must carry our values, not a copy of the source file.
    kernel = model.layers[0].mlp.up_proj.kernel if family != "gpt2" else model.h[0].mlp.c_fc.kernel
    kernel[...] = kernel[...] + 0.1
    checkpoints.export_hf(model, str(tmp_path / "out"))
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    ids = ref.random_ids((2, 10), model.config.vocab_size)
    np.testing.assert_allclose(
        ref.torch_logits(reloaded, ids), np.asarray(model(ids)), atol=1e-4, rtol=0
    )


def test_export_roundtrips_every_parameter(llama_folder, tmp_path):
    folder, _ = llama_folder
    model = checkpoints.load_hf_folder(str(folder))
    checkpoints.export_hf(model, str(tmp_path))
    again = checkpoints.load_hf_folder(str(tmp_path))
    for (path, a), (_, b) in zip(
        nnx.to_flat_state(nnx.state(model, nnx.Param)),
        nnx.to_flat_state(nnx.state(again, nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]), err_msg=str(path))
