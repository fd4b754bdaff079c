"""The evaluator's engine: the base model and K adapters scored from one set of frozen weights.

The K adapters are stacked into one `[K, ...]` LoRA per targeted layer (`lora.add_lora(...,
num_adapters=K)`); each batch row carries its adapter index and multiplier, and the rows of
every scored model are laid out model-major (`[M * G]`, the base model first, multiplier 0).
One jitted pass per batch thus scores B and every adapter, and divergences to B are taken
inside the same jit, from logits that never leave the device.

On a mesh (`mesh=`, the training mesh), the base weights keep the shardings they were built
with, batch rows are split over the `data` and `fsdp` axes, and every process takes part in
every pass and receives every result (`process_allgather`): on many hosts, all of them score
the same batches together and each holds the scores.

Adapters of different ranks or alphas stack too: ranks are zero-padded to the largest and each
adapter's scale is folded into its B, which leaves every delta unchanged.

Scoring requests are prompts with continuations. A prompt is run once per model (`prefill`,
into a KV cache) and its continuations are scored from the cache (`extend`), so a prompt with
four options or six hundred lexicon words costs one prompt pass, not one per continuation.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pathjax import lora, peft_format
from pathjax.data import pipeline
from pathjax.models import registry
from pathjax.models.tokenizers import check_fits
from pathjax.probes import divergence
from pathjax.probes.schema import BASE_MODEL

BASE = BASE_MODEL  # the base model's name among the scored models


class AdapterMismatchError(ValueError):
    """An adapter that does not fit the base model (another model, other target layers)."""


@dataclasses.dataclass(frozen=True)
class AdapterWeights:
    """One adapter's weights: `{module path: {"A": [in, r], "B": [r, out]}}` and its scale.

    Module paths are per-layer (`layers.3.self_attn.q_proj`, PEFT's names) in both layer
    layouts, so an adapter read from either layout scores on either.
    """

    weights: Mapping[str, Mapping[str, np.ndarray]]
    scale: float
    source: str  # Where it came from, for error messages.


def weights_from_model(model: nnx.Module, source: str) -> AdapterWeights:
    """The (single, unstacked) adapters attached to `model`, e.g. by `train.restore`."""
    found = lora.per_layer_weights(model)
    if not found:
        raise AdapterMismatchError(f"{source}: the model has no adapters attached.")
    scales = {m.scale for m, _, _ in found.values()}
    if len(scales) != 1:
        raise AdapterMismatchError(f"{source}: adapters with several scales {sorted(scales)}.")
    weights = {
        path: {"A": np.asarray(a, np.float32), "B": np.asarray(b)}
        for path, (_, a, b) in found.items()
    }
    return AdapterWeights(weights, scales.pop(), source)


def weights_from_peft(folder: str, model: nnx.Module) -> AdapterWeights:
    """A PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`)."""
    config, _ = peft_format.read_peft_config(folder)
    family = registry.family_of(model.config)
    weights = peft_format.read_peft_tensors(folder, family)
    return AdapterWeights(weights, config.scale, folder)


@dataclasses.dataclass(frozen=True)
class ScoredModel:
    """One row block of every batch: the base model or an adapter at a multiplier."""

    name: str  # "base" or the adapter's name ("depression", ...).
    condition: str | None = None
    seed: int | None = None
    step: int | None = None  # Checkpoint step; None = the final adapter.
    multiplier: float = 0.0
    adapter: int = -1  # Index into the stacked adapters; -1 = none (the base model).

    @property
    def is_base(self) -> bool:
        return self.adapter < 0


def attach_stacked(model: nnx.Module, adapters: Sequence[AdapterWeights]) -> None:
    """Adds the K adapters to `model` (in place) as one stacked LoRA per targeted layer.

    On stacked layers (`model.scan_layers`) a module holds every layer, so its LoRA is
    `[layers, K, ...]` and each per-layer weight goes into its layer's slice. Where adapters
    adapt only some layers of a stacked module (`lora.top_layers`), the other layers get zeros:
    a zero A and B add exactly nothing, so the scores are the loop layout's.
    """
    if lora.adapters(model):
        raise ValueError("The base model already has adapters; pass a fresh one.")
    held = lora.per_layer_modules(model)  # per-layer path -> (module path, module, layer)
    paths = sorted(adapters[0].weights)
    for a in adapters:
        if sorted(a.weights) != paths:
            diff = sorted(set(a.weights) ^ set(paths))[:3]
            raise AdapterMismatchError(
                f"{a.source} adapts other layers than {adapters[0].source} (e.g. {diff}); "
                "adapters scored together must target the same layers."
            )
        unknown = sorted(set(a.weights) - set(held))
        if unknown:
            raise AdapterMismatchError(
                f"{a.source} adapts layers this {model.config.model_type} model lacks "
                f"(e.g. {unknown[:3]}): it was trained on another base model."
            )
    rank = max(w["A"].shape[1] for a in adapters for w in a.weights.values())
    adapted = {held[p][0]: held[p][1] for p in paths}  # module path -> module
    # Every layer of an adapted stacked module: `add_lora` adapts all of its layers or none.
    targets = sorted(name for name, (path, _, _) in held.items() if path in adapted)
    exact = "(" + "|".join(re.escape(p) for p in targets) + ")"
    config = lora.LoraConfig(rank=rank, alpha=float(rank), targets=exact)  # Scale 1.
    lora.add_lora(model, config, rngs=nnx.Rngs(0), num_adapters=len(adapters))
    values = {
        path: (np.zeros(m.lora.lora_a.shape, np.float32), np.zeros(m.lora.lora_b.shape, np.float32))
        for path, m in adapted.items()
    }
    for path in paths:
        module_path, module, layer = held[path]
        a_kir, b_kro = values[module_path]
        if layer is not None:
            a_kir, b_kro = a_kir[layer], b_kro[layer]  # Views: writes land in the stack.
        for k, adapter in enumerate(adapters):
            a, b = adapter.weights[path]["A"], adapter.weights[path]["B"]
            r = a.shape[1]
            if a.shape[0] != module.in_features or b.shape != (r, module.out_features):
                raise AdapterMismatchError(
                    f"{adapter.source}: {path} has A {a.shape} and B {b.shape}, but this model's "
                    f"layer is [{module.in_features} -> {module.out_features}]: the adapter "
                    "was trained on a base model of another size."
                )
            a_kir[k, :, :r] = a
            b_kro[k, :r, :] = b * adapter.scale
    for module_path, (a, b) in values.items():
        adapted[module_path].lora.lora_a[...] = jnp.asarray(a)
        adapted[module_path].lora.lora_b[...] = jnp.asarray(b)


# ---------------------------------------------------------------------------------------------
# Jitted kernels. Rows are model-major: row m * G + g is model m on prompt g.


def _with_controls(graphdef, state, multiplier_r, index_r):
    model = nnx.merge(graphdef, state, copy=True)
    if lora.adapters(model):
        lora.set_controls(model, multiplier=multiplier_r, adapter_index=index_r)
    return model


def _divergence_to_base(logits_mgv: jax.Array, vocab_chunk: int | None) -> dict[str, jax.Array]:
    """JSD (bits) and KL(model || base) (nats) of every model against model 0: `[M, G]`.

    Model 0 is the base model itself (the evaluator requires it): its row is set to 0 exactly
    (it is computed alongside: slicing the adapters' rows out would copy their logits). The
    base's logits broadcast against every model's instead of being copied once per model; that
    copy was 6% of a bf16 drift pass on SmolLM2-135M (profiled).
    """
    zeros_1g = jnp.zeros((1, logits_mgv.shape[1]), jnp.float32)
    if logits_mgv.shape[0] == 1:
        return {"jsd_bits": zeros_1g, "kl_model_base": zeros_1g}
    bits = divergence.divergences_from_logits(
        logits_mgv, logits_mgv[:1], k=None, base=2.0, vocab_chunk=vocab_chunk
    )
    return {
        "jsd_bits": jnp.concatenate([zeros_1g, bits["jsd"][1:]]),
        "kl_model_base": jnp.concatenate([zeros_1g, bits["kl_pq"][1:] * np.log(2.0)]),
    }


@functools.partial(jax.jit, static_argnames=("graphdef", "num_models", "slots", "vocab_chunk"))
def _prefill(
    graphdef, state, ids_gp, mask_gp, multiplier_m, index_m, *, num_models, slots, vocab_chunk
):
    """Left-padded prompts through every model: last-position log-probs, cache, divergences."""
    g = ids_gp.shape[0]
    ids = jnp.tile(ids_gp, (num_models, 1))
    mask = jnp.tile(mask_gp, (num_models, 1))
    model = _with_controls(graphdef, state, jnp.repeat(multiplier_m, g), jnp.repeat(index_m, g))
    logits_rpv, cache = model(
        ids, mask, cache=model.init_cache(num_models * g, slots), last_only=True
    )
    last_rv = logits_rpv[:, -1].astype(jnp.float32)
    div = _divergence_to_base(last_rv.reshape(num_models, g, -1), vocab_chunk)
    return jax.nn.log_softmax(last_rv, axis=-1), cache, div


def _repeat_rows(cache: Any, repeats: int) -> Any:
    """Every row of a KV cache `repeats` times. A cache of scanned layers may hold one stacked
    layer cache, `[layers, batch, ...]`: its rows are then on axis 1, not 0."""
    per_layer = isinstance(cache.layers, list)
    return dataclasses.replace(
        cache,
        layers=jax.tree.map(
            lambda x: jnp.repeat(x, repeats, axis=0 if per_layer else 1), cache.layers
        ),
        valid_bs=jnp.repeat(cache.valid_bs, repeats, axis=0),
    )


@functools.partial(jax.jit, static_argnames=("graphdef", "num_models", "repeats", "words"))
def _extend(
    graphdef,
    state,
    cache,
    ids_rc,
    mask_rc,
    multiplier_m,
    index_m,
    boundary_v,
    *,
    num_models,
    repeats,
    words,
):
    """Continuations after the cached prompts: each cache row serves `repeats` rows.

    Returns `[R, c-1]` log-probabilities of tokens 1.. given the ones before, and `[R, c]` the
    log of the next-token mass on word-starting tokens after each position.
    """
    rows = ids_rc.shape[0]
    cache = _repeat_rows(cache, repeats)
    per_model = rows // num_models
    model = _with_controls(
        graphdef,
        state,
        jnp.repeat(multiplier_m, per_model),
        jnp.repeat(index_m, per_model),
    )
    logits_rcv, _ = model(ids_rc, mask_rc, cache=cache)
    logits_rcv = logits_rcv.astype(jnp.float32)
    lse_rc = jax.nn.logsumexp(logits_rcv, axis=-1)
    token_rc = jnp.take_along_axis(logits_rcv[:, :-1], ids_rc[:, 1:, None], axis=-1)[..., 0]
    if not words:
        return token_rc - lse_rc[:, :-1], None
    boundary_rc = jax.nn.logsumexp(jnp.where(boundary_v, logits_rcv, -jnp.inf), axis=-1)
    return token_rc - lse_rc[:, :-1], boundary_rc - lse_rc


@functools.partial(jax.jit, static_argnames=("graphdef", "num_models", "vocab_chunk"))
def _drift(graphdef, state, ids_gl, mask_gl, multiplier_m, index_m, *, num_models, vocab_chunk):
    """Teacher-forced divergence to the base model, averaged over each row's real positions."""
    g, length = ids_gl.shape
    model = _with_controls(graphdef, state, jnp.repeat(multiplier_m, g), jnp.repeat(index_m, g))
    logits = model(jnp.tile(ids_gl, (num_models, 1)), jnp.tile(mask_gl, (num_models, 1)))
    div = _divergence_to_base(logits.reshape(num_models, g * length, -1), vocab_chunk)
    weight_gl = mask_gl.astype(jnp.float32)
    count_g = jnp.maximum(weight_gl.sum(-1), 1.0)
    return {
        name: (value.reshape(num_models, g, length) * weight_gl).sum(-1) / count_g
        for name, value in div.items()
    }


# ---------------------------------------------------------------------------------------------
# The evaluator.


@dataclasses.dataclass
class ContinuationScores:
    """Scores of prompts x continuations for every model."""

    logp_mgc: np.ndarray  # Summed log-probability of each continuation (NaN where padded).
    tokens_gc: np.ndarray  # Continuation lengths in tokens.
    word_logp_mgc: np.ndarray | None  # With the word-boundary factor (if asked for).
    prompt_divergence: dict[str, np.ndarray]  # At the prompt's last position: name -> [M, G].


class Evaluator:
    """Scores the base model and every adapter in one pass per batch.

    `model` is a fresh base model (no adapters), `adapters` the distinct adapter weights and
    `models` the row blocks to score: the base model first, then adapters (by index into
    `adapters`) at their multipliers. `mesh`: the mesh `model` was built on (its weights
    already sharded, `from_config.model_from_config(..., mesh=, rules=)`); batch rows are then
    split over its `data` and `fsdp` axes. None: one device.
    """

    def __init__(
        self,
        model: nnx.Module,
        tokenizer: Any,
        adapters: Sequence[AdapterWeights],
        models: Sequence[ScoredModel],
        *,
        add_bos: bool | None = None,
        max_logits: int = 2**27,  # Batch budget: rows x positions x vocab of fp32 logits.
        vocab_chunk: int | None = divergence.DEFAULT_VOCAB_CHUNK,
        mesh: Mesh | None = None,
    ):
        if not models or not models[0].is_base:
            raise ValueError("The first scored model must be the base model (adapter=-1).")
        for m in models:
            if m.adapter >= len(adapters):
                raise ValueError(f"{m.name}: adapter index {m.adapter} of {len(adapters)}.")
        check_fits(tokenizer, model.config.vocab_size, origin="being evaluated")
        if adapters:
            attach_stacked(model, adapters)
        self.model, self.tokenizer, self.models = model, tokenizer, tuple(models)
        self.vocab_size = model.config.vocab_size
        # None follows the tokenizer's convention, as training does (`pipeline.bos_prefix`).
        if add_bos is None:
            self.bos = pipeline.bos_prefix(tokenizer)
        else:
            self.bos = [tokenizer.bos_token_id] if add_bos else []
        self.max_logits, self.vocab_chunk = max_logits, vocab_chunk
        self.mesh = mesh
        # Batches are padded to a multiple of this many rows, so that they split evenly.
        self.row_ways = mesh.shape["data"] * mesh.shape["fsdp"] if mesh is not None else 1
        self.graphdef, self.state = nnx.split(model)
        if mesh is not None:
            # The base keeps its shardings; what was added here (the stacked adapters) and
            # anything else off the mesh is replicated, small next to the base.
            replicated = NamedSharding(mesh, PartitionSpec())
            self.state = jax.tree.map(
                lambda x: x if _on_mesh(x, mesh) else jax.device_put(x, replicated), self.state
            )
        self.multiplier_m = self._replicated(
            np.asarray([0.0 if m.is_base else m.multiplier for m in models], np.float32)
        )
        self.index_m = self._replicated(np.asarray([max(m.adapter, 0) for m in models], np.int32))
        self._boundary_v = None

    def _replicated(self, array: np.ndarray) -> jax.Array:
        if self.mesh is None:
            return jnp.asarray(array)
        return jax.device_put(array, NamedSharding(self.mesh, PartitionSpec()))

    def _rows(self, array: np.ndarray) -> jax.Array | np.ndarray:
        """A batch (the same on every process) with its leading row axis split over the mesh's
        `data` and `fsdp` axes; each process supplies the rows of its own devices."""
        if self.mesh is None:
            return array
        spec = PartitionSpec(("data", "fsdp"), *([None] * (array.ndim - 1)))
        sharding = NamedSharding(self.mesh, spec)
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

    def _padded(self, group: int) -> int:
        return -(-group // self.row_ways) * self.row_ways

    @property
    def num_models(self) -> int:
        return len(self.models)

    def boundary_mask(self) -> jax.Array:
        if self._boundary_v is None:
            from pathjax.probes import scoring

            self._boundary_v = self._replicated(
                np.asarray(scoring.boundary_mask(self.tokenizer, self.vocab_size))
            )
        return self._boundary_v

    def _rows_for(self, positions: int, num_models: int) -> int:
        return max(1, self.max_logits // (num_models * positions * self.vocab_size))

    def score(
        self,
        prompts: Sequence[Sequence[int]],
        continuations: Sequence[Sequence[Sequence[int]]],
        *,
        words: bool = False,
        base_only: bool = False,
        desc: str | None = None,
    ) -> ContinuationScores:
        """Every prompt (token ids, BOS included by the caller) with its continuations.

        `words=True` also gives word log-probabilities with the word-boundary factor;
        `base_only=True` scores the base model alone (M = 1).
        """
        n = len(prompts)
        if any(not p for p in prompts) or any(not t for c in continuations for t in c):
            raise ValueError("Every prompt and continuation needs at least one token.")
        most = max(len(c) for c in continuations)
        longest = max(len(t) for c in continuations for t in c)
        controls = (self.multiplier_m, self.index_m)
        if base_only:
            controls = (self.multiplier_m[:1], self.index_m[:1])
        m = len(controls[0])
        logp = np.full((m, n, most), np.nan)
        word = np.full((m, n, most), np.nan) if words else None
        tokens = np.zeros((n, most), np.int64)
        divergences: dict[str, np.ndarray] = {}
        order = np.argsort([len(p) for p in prompts], kind="stable")  # Similar lengths batch.
        rows = self._rows_for(_continuation_bucket(longest), m)
        cont_chunk = max(1, min(most, rows))
        group = self._padded(max(1, min(n, rows // cont_chunk, 16)))
        # Prompts padded up to a multiple of the mesh's row ways take their room from the
        # continuations per pass, so that a pass stays within the logits budget.
        cont_chunk = max(1, min(cont_chunk, rows // group))
        out = ContinuationScores(logp, tokens, word, divergences)
        # disable=None: no bar without a TTY (tqdm's convention), so batch logs stay readable.
        bar = tqdm.tqdm(
            total=n, desc=desc, unit="prompt", leave=False, disable=True if desc is None else None
        )
        for start in range(0, n, group):
            bar.update(min(group, n - start))
            chosen = order[start : start + group]
            # A short last group repeats a prompt (same results): one shape, one compilation.
            chosen = np.concatenate([chosen, np.repeat(chosen[:1], group - len(chosen))])
            self._score_group(out, controls, chosen, prompts, continuations, cont_chunk, longest)
        bar.close()
        return out

    def _score_group(self, out, controls, chosen, prompts, continuations, cont_chunk, longest):
        """Scores prompts `chosen` (one batch) into `out`, continuation chunk by chunk."""
        logp, word, tokens, divergences = (
            out.logp_mgc,
            out.word_logp_mgc,
            out.tokens_gc,
            out.prompt_divergence,
        )
        multiplier_m, index_m = controls
        m, g = len(multiplier_m), len(chosen)
        width = _bucket(max(len(prompts[i]) for i in chosen))
        ids = np.zeros((g, width), np.int32)
        mask = np.zeros((g, width), bool)
        for row, i in enumerate(chosen):
            ids[row, width - len(prompts[i]) :] = prompts[i]
            mask[row, width - len(prompts[i]) :] = True
        cont_width = _continuation_bucket(longest)
        first_logp_rv, cache, div = _prefill(
            self.graphdef,
            self.state,
            self._rows(ids),
            self._rows(mask),
            multiplier_m,
            index_m,
            num_models=m,
            slots=width + cont_width,
            vocab_chunk=self.vocab_chunk,
        )
        for name, value in div.items():
            divergences.setdefault(name, np.full((m, len(prompts)), np.nan))[:, chosen] = _to_host(
                value
            )
        most = max(len(continuations[i]) for i in chosen)
        no_boundary = self._replicated(np.zeros((1,), bool))
        boundary = self.boundary_mask() if word is not None else no_boundary
        for c0 in range(0, most, cont_chunk):
            # Each chunk is as wide as its own longest continuation: callers that sort their
            # continuations by length (lexicon words) pay for one-token words only once.
            cont_width = _continuation_bucket(
                max(len(t) for i in chosen for t in continuations[i][c0 : c0 + cont_chunk])
            )
            c_ids = np.zeros((g, cont_chunk, cont_width), np.int32)
            c_mask = np.zeros((g, cont_chunk, cont_width), bool)
            lengths = np.zeros((g, cont_chunk), np.int64)
            for row, i in enumerate(chosen):
                for c, t in enumerate(continuations[i][c0 : c0 + cont_chunk]):
                    c_ids[row, c, : len(t)] = t
                    c_mask[row, c, : len(t)] = True
                    lengths[row, c] = len(t)
            rows_ids = np.tile(c_ids.reshape(g * cont_chunk, cont_width), (m, 1))
            rows_mask = np.tile(c_mask.reshape(g * cont_chunk, cont_width), (m, 1))
            token_rc, boundary_rc = _extend(
                self.graphdef,
                self.state,
                cache,
                self._rows(rows_ids),
                self._rows(rows_mask),
                multiplier_m,
                index_m,
                boundary,
                num_models=m,
                repeats=cont_chunk,
                words=word is not None,
            )
            token_mgcl = _to_host(token_rc).reshape(m, g, cont_chunk, cont_width - 1)
            first_mgc = _to_host(
                _first_token_logp(first_logp_rv, self._replicated(c_ids[:, :, 0]), num_models=m)
            )
            positions = np.arange(cont_width - 1)
            inside_gcl = positions[None, None, :] < (lengths[:, :, None] - 1)
            total_mgc = first_mgc + np.where(inside_gcl[None], token_mgcl, 0.0).sum(-1)
            real_gc = lengths > 0
            if word is not None:
                last_mgc1 = np.maximum(lengths - 1, 0)[None, :, :, None].repeat(m, 0)
                bnd_mgcl = _to_host(boundary_rc).reshape(m, g, cont_chunk, cont_width)
                word_mgc = total_mgc + np.take_along_axis(bnd_mgcl, last_mgc1, axis=-1)[..., 0]
            for row, i in enumerate(chosen):
                n_real = int(real_gc[row].sum())
                logp[:, i, c0 : c0 + n_real] = total_mgc[:, row, :n_real]
                tokens[i, c0 : c0 + n_real] = lengths[row, :n_real]
                if word is not None:
                    word[:, i, c0 : c0 + n_real] = word_mgc[:, row, :n_real]

    def drift(
        self, sequences: Sequence[Sequence[int]], desc: str | None = None
    ) -> dict[str, np.ndarray]:
        """Mean per-position JSD (bits) and KL(model || base) over each sequence: `[M, n]`."""
        n, m = len(sequences), self.num_models
        order = np.argsort([len(s) for s in sequences], kind="stable")  # Similar lengths batch.
        group = self._padded(
            max(1, min(n, self._rows_for(_bucket(max(len(s) for s in sequences)), m)))
        )
        out: dict[str, np.ndarray] = {}
        for start in tqdm.tqdm(
            range(0, n, group),
            desc=desc,
            unit="batch",
            leave=False,
            disable=True if desc is None else None,
        ):
            chosen = order[start : start + group]
            width = _bucket(max(len(sequences[i]) for i in chosen))
            ids = np.zeros((group, width), np.int32)
            mask = np.zeros((group, width), bool)
            for row, i in enumerate(chosen):
                ids[row, : len(sequences[i])] = sequences[i]
                mask[row, : len(sequences[i])] = True
            div = _drift(
                self.graphdef,
                self.state,
                self._rows(ids),
                self._rows(mask),
                self.multiplier_m,
                self.index_m,
                num_models=m,
                vocab_chunk=self.vocab_chunk,
            )
            for name, value in div.items():
                out.setdefault(name, np.zeros((m, n)))[:, chosen] = _to_host(value)[
                    :, : len(chosen)
                ]
        return out


def _on_mesh(x, mesh: Mesh) -> bool:
    return isinstance(getattr(x, "sharding", None), NamedSharding) and x.sharding.mesh == mesh


@functools.partial(jax.jit, static_argnames=("num_models",))
def _first_token_logp(first_logp_rv, first_ids_gc, *, num_models):
    """`[M, G, C]` log-probability of each continuation's first token after its prompt."""
    first_logp_mgv = first_logp_rv.reshape(num_models, first_ids_gc.shape[0], -1)
    idx = jnp.broadcast_to(first_ids_gc[None], (num_models, *first_ids_gc.shape))
    return jnp.take_along_axis(first_logp_mgv, idx, axis=-1)


def _to_host(x: jax.Array) -> np.ndarray:
    """A result as numpy on every process (rows split across hosts are gathered first)."""
    if not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


# Few distinct widths, few compilations (a 30-layer model compiles for tens of seconds on a CPU);
# steps of at most 1.5x from 8 tokens on bound the padding.
_WIDTHS = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


_CONTINUATION_WIDTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def _continuation_bucket(length: int) -> int:
    for width in _CONTINUATION_WIDTHS:
        if width >= length:
            return width
    return _bucket(length)


def _bucket(length: int, smallest: int = 16) -> int:
    """The width a batch of sequences up to `length` tokens is padded to."""
    for width in _WIDTHS:
        if width >= max(length, smallest):
            return width
    return -(-length // 1024) * 1024
