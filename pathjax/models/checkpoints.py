"""Checkpoint import and export: HF safetensors folders and GGUF files to NNX state, and back.

Loading never materializes a randomly initialized model: the module is built abstractly
(`nnx.eval_shape`), each parameter is read by its transformers key, checked against the
abstract shape, and placed straight into its sharding. Only safetensors and GGUF are read;
pickle-based checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx

from pathjax import sharding as sharding_lib
from pathjax.models import registry

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Keys transformers writes that are buffers or derived copies, not parameters.
IGNORED_KEY_SUFFIXES = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says what is wrong and how to fix it."""


# ---------------------------------------------------------------------------------------------
# Parameter path <-> transformers key.


def hf_key(family: ModuleType, path: Sequence[Any]) -> tuple[str, bool]:
    """The transformers key of an NNX parameter path, and whether the array is transposed."""
    *modules, leaf = (str(p) for p in path)
    suffix = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias"}[leaf]
    name = ".".join([*modules, suffix])
    if modules[0] not in family.HF_UNPREFIXED:
        name = family.HF_PREFIX + name
    return name, leaf == "kernel" and family.HF_LINEAR_TRANSPOSED


def _flat_params(state: nnx.State) -> Iterator[tuple[tuple[Any, ...], nnx.Variable]]:
    yield from nnx.to_flat_state(state)


# ---------------------------------------------------------------------------------------------
# Filling an abstract model from a tensor source.


class TensorSource(Mapping[str, np.ndarray]):
    """Read-only mapping from transformers key to array, read lazily one tensor at a time."""

    def __init__(self, readers: dict[str, Callable[[], Any]], origin: str):
        self._readers = readers
        self.origin = origin

    def __getitem__(self, key: str):
        return self._readers[key]()

    def __iter__(self):
        return iter(self._readers)

    def __len__(self):
        return len(self._readers)


def fill_model(
    abstract_model: nnx.Module,
    family: ModuleType,
    tensors: TensorSource,
    *,
    mesh: jax.sharding.Mesh | None = None,
    rules=sharding_lib.DEFAULT_RULES,
) -> nnx.Module:
    """Replaces every abstract parameter with the checkpoint's array, placed in its sharding."""
    graphdef, state = nnx.split(abstract_model)
    wanted = {path: hf_key(family, path) for path, _ in _flat_params(state)}
    available = set(tensors)
    missing = sorted(k for k, _ in wanted.values() if k not in available)
    if missing:
        raise CheckpointError(
            f"{tensors.origin} lacks {len(missing)} tensor(s) the {family.__name__.split('.')[-1]} "
            f"model needs, e.g. {missing[:3]}. Is it a checkpoint of this architecture and size? "
            "Check config.json against the weights."
        )
    leaves = []
    params = list(_flat_params(state))
    # disable=None: a bar on terminals, silence in logs and CI.
    for path, variable in tqdm.tqdm(params, desc="Loading weights", unit="tensor", disable=None):
        key, transposed = wanted[path]
        array = tensors[key]
        expected = tuple(reversed(variable.shape)) if transposed else tuple(variable.shape)
        if tuple(array.shape) != expected:
            raise CheckpointError(
                f"{tensors.origin}: tensor {key!r} has shape {tuple(array.shape)} but the config "
                f"implies {expected}. The weights do not belong to this config.json."
            )
        if transposed:
            array = array.T
        value = _place(array, variable, mesh, rules)
        leaves.append((path, variable.replace(value)))
    return nnx.merge(graphdef, nnx.from_flat_state(leaves))


def _place(array, variable: nnx.Variable, mesh, rules) -> jax.Array:
    dtype = variable.dtype
    if mesh is None:
        return jnp.asarray(array, dtype=dtype)
    names = variable.get_metadata().get("out_sharding")
    target = sharding_lib.sharding_for(variable.shape, names, mesh, rules)
    host = (
        np.asarray(array).astype(dtype) if not isinstance(array, jax.Array) else array.astype(dtype)
    )
    # Each device receives only its slice, also across hosts of a multi-controller run.
    return jax.make_array_from_callback(variable.shape, target, lambda index: host[index])


# ---------------------------------------------------------------------------------------------
# HF folders.


def read_hf_config(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise CheckpointError(
            f"{folder} has no config.json: it is not a transformers model folder. Point to the "
            "folder that `save_pretrained` wrote, or to a .gguf file."
        )
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}).") from e


def safetensors_source(folder: str) -> TensorSource:
    """Tensors of `model.safetensors` or of the shards a `model.safetensors.index.json` lists."""
    from safetensors import safe_open

    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            weight_map: dict[str, str] = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
        absent = [name for name in files if not os.path.isfile(os.path.join(folder, name))]
        if absent:
            raise CheckpointError(
                f"{index} lists shard(s) missing from {folder}: {absent}. Copy or download the "
                "complete checkpoint."
            )
    elif os.path.isfile(single):
        files = ["model.safetensors"]
        weight_map = None
    else:
        pickles = [n for n in sorted(os.listdir(folder)) if n.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise CheckpointError(
                f"{folder} holds only pickle checkpoint(s) {pickles}; pathjax never unpickles "
                "(it can run arbitrary code). Convert once, in an environment you trust, with "
                "`AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
                "safe_serialization=True)`."
            )
        raise CheckpointError(
            f"{folder} has neither model.safetensors nor model.safetensors.index.json."
        )
    handles = {name: safe_open(os.path.join(folder, name), framework="flax") for name in files}
    if weight_map is None:
        weight_map = {key: "model.safetensors" for key in handles["model.safetensors"].keys()}
    readers = {
        key: (lambda key=key, name=name: handles[name].get_tensor(key))
        for key, name in weight_map.items()
    }
    return TensorSource(readers, folder)


def _strip_prefix_aliases(tensors: TensorSource, family: ModuleType) -> TensorSource:
    """Original GPT-2 checkpoints store `h.0...` where transformers writes `transformer.h.0...`."""
    prefix = family.HF_PREFIX
    readers = dict(tensors._readers)
    for key in list(readers):
        if not key.startswith(prefix) and prefix + key not in readers:
            readers[prefix + key] = readers[key]
    return TensorSource(readers, tensors.origin)


def load_hf_folder(
    folder: str,
    *,
    dtype=jnp.float32,
    mesh=None,
    rules=sharding_lib.DEFAULT_RULES,
    num_layers: int | None = None,
    attention: str = "auto",
) -> nnx.Module:
    hf_config = read_hf_config(folder)
    family, config = registry.config_from_hf(hf_config, origin=folder)
    config = registry.with_attention(registry.truncate(config, num_layers), attention)
    tensors = _strip_prefix_aliases(safetensors_source(folder), family)
    abstract = registry.abstract_model(family, config, dtype=dtype)
    return fill_model(abstract, family, tensors, mesh=mesh, rules=rules)


# ---------------------------------------------------------------------------------------------
# Export.


def model_tensors(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters under transformers' keys and layouts, as host arrays."""
    family = registry.family_of(model.config)
    out = {}
    for path, variable in _flat_params(nnx.state(model, nnx.Param)):
        if "lora" in path:
            continue
        key, transposed = hf_key(family, path)
        array = np.asarray(jax.device_get(variable[...]))
        out[key] = np.ascontiguousarray(array.T if transposed else array)
    return out


def export_hf(model: nnx.Module, folder: str, tokenizer=None, *, dtype=None) -> str:
    """Writes `config.json`, `model.safetensors` (and the tokenizer) that transformers loads."""
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    tensors = model_tensors(model)
    if dtype is not None:
        tensors = {k: v.astype(dtype) for k, v in tensors.items()}
    hf_config = model.config.to_hf()
    hf_config["dtype"] = str(next(iter(tensors.values())).dtype)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
