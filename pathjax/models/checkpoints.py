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
from pathjax.models import layer_stack, registry

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
    config = abstract_model.config
    wanted = {path: _hf_keys(family, config, path) for path, _ in _flat_params(state)}
    available = set(tensors)
    missing = sorted(k for keys in wanted.values() for k, _ in keys if k not in available)
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
        keys = wanted[path]
        if layer_stack.is_stacked_path(config, path):
            readers = [
                _reader(tensors, key, transposed, variable.shape[1:]) for key, transposed in keys
            ]
            value = _place_stacked(readers, variable, mesh, rules)
        else:
            ((key, transposed),) = keys
            value = _place(
                _reader(tensors, key, transposed, variable.shape)(), variable, mesh, rules
            )
        leaves.append((path, variable.replace(value)))
    return nnx.merge(graphdef, nnx.from_flat_state(leaves))


def _hf_keys(family: ModuleType, config, path) -> list[tuple[str, bool]]:
    """The transformers keys of a parameter: one per layer for a stacked one, in layer order."""
    if layer_stack.is_stacked_path(config, path):
        return [
            hf_key(family, layer_stack.per_layer_path(path, i)) for i in range(config.num_layers)
        ]
    return [hf_key(family, path)]


def _reader(tensors: TensorSource, key: str, transposed: bool, shape) -> Callable[[], Any]:
    """Reads `key` in pathjax's layout, refusing a shape other than `shape`."""

    def read():
        array = tensors[key]
        expected = tuple(reversed(shape)) if transposed else tuple(shape)
        if tuple(array.shape) != expected:
            raise CheckpointError(
                f"{tensors.origin}: tensor {key!r} has shape {tuple(array.shape)} but the config "
                f"implies {expected}. The weights do not belong to this config.json."
            )
        return array.T if transposed else array

    return read


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


def _place_stacked(readers, variable: nnx.Variable, mesh, rules) -> jax.Array:
    """The layers' tensors stacked on a leading axis, each read once as it is stacked.

    With a mesh, each distinct device slice is built layer by layer, so a host holds one
    layer's full tensor plus its own slices, never the whole stack (the layer axis is unsharded).
    """
    dtype = variable.dtype
    if mesh is None:
        return jnp.stack([jnp.asarray(read(), dtype=dtype) for read in readers])
    names = variable.get_metadata().get("out_sharding")
    target = sharding_lib.sharding_for(variable.shape, names, mesh, rules)
    index_of = target.addressable_devices_indices_map(variable.shape)
    slice_key = lambda index: tuple((s.start, s.stop, s.step) for s in index[1:])  # noqa: E731
    slices: dict[tuple, list[np.ndarray]] = {slice_key(i): [] for i in index_of.values()}
    for read in readers:
        host = np.asarray(read()).astype(dtype)
        for key in slices:
            slices[key].append(host[tuple(slice(*k) for k in key)])
    stacked = {key: np.stack(parts) for key, parts in slices.items()}
    arrays = [jax.device_put(stacked[slice_key(i)], d) for d, i in index_of.items()]
    return jax.make_array_from_single_device_arrays(variable.shape, target, arrays)


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
    scan_layers: bool = False,
    remat: str = "none",
) -> nnx.Module:
    hf_config = read_hf_config(folder)
    family, config = registry.config_from_hf(hf_config, origin=folder)
    config = registry.with_attention(registry.truncate(config, num_layers), attention)
    config = registry.with_layout(config, scan_layers=scan_layers, remat=remat)
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
        array = np.asarray(jax.device_get(variable[...]))
        keys = _hf_keys(family, model.config, path)
        # A stacked parameter's layers, one key each, in layer order.
        arrays = list(array) if layer_stack.is_stacked_path(model.config, path) else [array]
        for (key, transposed), one in zip(keys, arrays, strict=True):
            out[key] = np.ascontiguousarray(one.T if transposed else one)
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
