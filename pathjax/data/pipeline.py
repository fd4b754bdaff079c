"""The grain input pipeline: tokenized, loss-masked, bucketed, shuffled, per-process batches.

Each process gets numpy batches of `b = global_batch_size // process_count` rows (its own
slice of every global batch, rows `[p * b, (p + 1) * b)`):

- `input_ids [b, L] int32`: [BOS] + prompt + target + EOS, right-padded.
- `attention_mask [b, L] int32`: 1 on real tokens, 0 on padding.
- `loss_mask [b, L] float32`: 1 where token t is a target token or the final EOS. The mask is
  aligned to the token being predicted: position t-1 predicts token t, so a step computes
  `nll(logits[:, :-1], input_ids[:, 1:])` weighted by `loss_mask[:, 1:]`.
- `target_positions [b, K] int32`, `target_weights [b, K] float32`: the positions whose
  predictions the loss reads (t-1 for every target token t, in order) and 1 where the entry is
  real, 0 on padding. K is the smallest target bucket (powers of two from 32) that fits the
  batch's longest target; the training step runs the output head at these positions only.
- `target_index [b] int32`: which of the record's options is the target.
- `example_index [b] int32`: the record's index in its split (options, classes, ...).

L is the smallest bucket length that fits the longest example of the whole *global* batch, so
every process sees the same shape at every step (multi-host arrays need that).

Prompt and target are tokenized separately and concatenated: BPE would otherwise merge across
the boundary and the loss mask would not fall on the target. The formats make this safe: a
prompt never ends in a space and the target starts with the boundary space, which BPE attaches
to the target's first word either way.
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

DEFAULT_MAX_LENGTH = 512


@dataclasses.dataclass(frozen=True)
class Tokenized:
    """A split, tokenized: per-example ids and where the target starts."""

    ids: tuple[np.ndarray, ...]  # [length_i] int32 each.
    target_starts: np.ndarray  # [n] int32: index of the first target token.
    target_index: np.ndarray  # [n] int32.

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids], dtype=np.int32)


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts BOS first in its own encoding (Llama and Gemma do, GPT-2 not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("a")["input_ids"]
    return bos is not None and len(ids) > 0 and ids[0] == bos


def bos_prefix(tokenizer: Any) -> list[int]:
    """What goes before a prompt that is tokenized without special tokens: `[BOS]` where the
    tokenizer's own encoding starts with it (`adds_bos`), else nothing. Training, validation
    and the probes all prefix prompts this way, so a model is scored as it was trained."""
    return [tokenizer.bos_token_id] if adds_bos(tokenizer) else []


def tokenize(
    records: Sequence[dict[str, Any]], tokenizer: Any, *, add_bos: bool | None = None
) -> Tokenized:
    """Tokenizes prompt and target separately; EOS ends every example.

    `tokenizer` is a `transformers` fast tokenizer. `add_bos=None` follows the tokenizer's own
    convention (see `adds_bos`).
    """
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError(
            f"The tokenizer {type(tokenizer).__name__} has no EOS token (eos_token_id is None); "
            "targets must end with EOS. Set `tokenizer.eos_token = ...` or use the model's own "
            "tokenizer."
        )
    if add_bos is None:
        add_bos = adds_bos(tokenizer)
    prefix = [tokenizer.bos_token_id] if add_bos else []
    for i, r in enumerate(records):
        if r["prompt"] != r["prompt"].rstrip() or not r["target"].startswith(" "):
            raise ValueError(
                f"Record {i}: a prompt must not end with whitespace and a target must start with "
                f"its boundary space; got prompt ...{r['prompt'][-10:]!r}, target {r['target']!r}."
            )
    prompts = tokenizer([r["prompt"] for r in records], add_special_tokens=False)["input_ids"]
    targets = tokenizer([r["target"] for r in records], add_special_tokens=False)["input_ids"]
    ids = tuple(
        np.array(prefix + p + t + [eos], dtype=np.int32)
        for p, t in zip(prompts, targets, strict=True)
    )
    starts = np.array([len(prefix) + len(p) for p in prompts], dtype=np.int32)
    target_index = np.array([r["target_index"] for r in records], dtype=np.int32)
    return Tokenized(ids, starts, target_index)


def default_buckets(max_length: int) -> tuple[int, ...]:
    """Powers of two from 64 below `max_length`, then `max_length` itself."""
    buckets, length = [], 64
    while length < max_length:
        buckets.append(length)
        length *= 2
    return (*buckets, max_length)


def target_bucket(span: int) -> int:
    """Powers of two from 32: few distinct head widths, so few compilations (a 30-layer
    train step takes about a minute to compile on a 2-core CPU; the behavioral targets all fit
    32 tokens, and 32 rows of head cost little next to the prompt's 64-160)."""
    return max(32, 1 << max(0, span - 1).bit_length())


@dataclasses.dataclass(frozen=True)
class _LocalBatch:
    """Global batch of example indices -> this process's padded numpy batch."""

    data: Tokenized
    lengths: np.ndarray
    buckets: tuple[int, ...]
    pad_id: int
    process_index: int
    local_batch_size: int

    def __call__(self, global_indices: np.ndarray) -> dict[str, np.ndarray]:
        longest = int(self.lengths[global_indices].max())
        length = next(b for b in self.buckets if b >= longest)
        spans = self.lengths[global_indices] - self.data.target_starts[global_indices]
        width = min(target_bucket(int(spans.max())), length)
        start = self.process_index * self.local_batch_size
        local = global_indices[start : start + self.local_batch_size]
        n = len(local)
        input_ids = np.full((n, length), self.pad_id, dtype=np.int32)
        attention_mask = np.zeros((n, length), dtype=np.int32)
        loss_mask = np.zeros((n, length), dtype=np.float32)
        target_positions = np.zeros((n, width), dtype=np.int32)
        target_weights = np.zeros((n, width), dtype=np.float32)
        for row, i in enumerate(local):
            ids = self.data.ids[i]
            first = self.data.target_starts[i]
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
            loss_mask[row, first : len(ids)] = 1.0
            target_positions[row, : len(ids) - first] = np.arange(first - 1, len(ids) - 1)
            target_weights[row, : len(ids) - first] = 1.0
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "loss_mask": loss_mask,
            "target_positions": target_positions,
            "target_weights": target_weights,
            "target_index": self.data.target_index[local],
            "example_index": local.astype(np.int32),
        }


def _process_defaults(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax  # Only when the caller does not say: keeps the pipeline usable without jax.

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    return process_index, process_count


def make_batches(
    records: Sequence[dict[str, Any]],
    tokenizer: Any,
    *,
    global_batch_size: int,
    seed: int = 0,
    num_epochs: int | None = 1,
    shuffle: bool = True,
    max_length: int = DEFAULT_MAX_LENGTH,
    buckets: Sequence[int] | None = None,
    add_bos: bool | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    batch_by_format: bool = False,
) -> grain.MapDataset:
    """A grain dataset of this process's batches, one element per global step.

    Examples are shuffled with `seed` (differently each epoch) and repeated `num_epochs` times
    (`None`: forever); the last incomplete global batch is dropped. `process_index` and
    `process_count` default to jax's.

    `batch_by_format` (endless streams only) fills each batch from one format, the formats'
    batches mixed in proportion to their sizes. A `choice` prompt lists four options and is
    2-3x as long as a `narrative` one, so a mixed batch pads every row to the choice length;
    one format per batch lets narrative batches use a short bucket (the cost per example of a
    CPU or a small accelerator batch follows the padded length).
    """
    process_index, process_count = _process_defaults(process_index, process_count)
    if global_batch_size < 1 or global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size {global_batch_size} must be a positive multiple of the "
            f"process count {process_count}."
        )
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
    if num_epochs is not None and len(records) * num_epochs < global_batch_size:
        raise ValueError(
            f"{len(records)} records x {num_epochs} epochs do not fill one global batch of "
            f"{global_batch_size}; lower the batch size or raise num_epochs."
        )
    buckets = tuple(sorted(set(buckets))) if buckets else default_buckets(max_length)
    data = tokenize(records, tokenizer, add_bos=add_bos)
    lengths = data.lengths
    if (too_long := np.flatnonzero(lengths > buckets[-1])).size:
        raise ValueError(
            f"{too_long.size} examples are longer than the largest bucket {buckets[-1]} (record "
            f"{too_long[0]} has {lengths[too_long[0]]} tokens); raise max_length or buckets."
        )
    pad_id = getattr(tokenizer, "pad_token_id", None)
    pad_id = tokenizer.eos_token_id if pad_id is None else pad_id

    if batch_by_format and num_epochs is None:
        ds = _batches_by_format(records, global_batch_size, seed, shuffle)
    else:
        ds = grain.MapDataset.range(len(records))
        if shuffle:
            ds = ds.shuffle(seed=seed)
        ds = ds.repeat(num_epochs)
        ds = ds.batch(global_batch_size, drop_remainder=True)
    return ds.map(
        _LocalBatch(
            data=data,
            lengths=lengths,
            buckets=buckets,
            pad_id=int(pad_id),
            process_index=process_index,
            local_batch_size=global_batch_size // process_count,
        )
    )


def _batches_by_format(
    records: Sequence[dict[str, Any]], global_batch_size: int, seed: int, shuffle: bool
) -> grain.MapDataset:
    """Endless batches of example indices, each batch from one format (see `make_batches`)."""
    formats = np.asarray([r.get("format", "") for r in records])
    streams, weights = [], []
    for k, fmt in enumerate(sorted(set(formats))):
        indices = np.flatnonzero(formats == fmt)
        if len(indices) < global_batch_size:
            raise ValueError(
                f"{len(indices)} {fmt!r} records do not fill one batch of {global_batch_size}; "
                "lower the batch size or turn batch_by_format off."
            )
        ds = grain.MapDataset.source(indices)
        if shuffle:
            ds = ds.shuffle(seed=seed + k)
        streams.append(ds.repeat(None).batch(global_batch_size, drop_remainder=True))
        weights.append(float(len(indices)))
    return grain.MapDataset.mix(streams, weights)


def make_iterator(
    records: Sequence[dict[str, Any]], tokenizer: Any, **kwargs: Any
) -> grain.DatasetIterator:
    """`make_batches(...)` as a checkpointable iterator: save `it.get_state()` (a small dict
    that JSON can hold) with the training state and `it.set_state(state)` to resume exactly."""
    return iter(make_batches(records, tokenizer, **kwargs).to_iter_dataset())
