"""Validation of one adapter during training: loss and token accuracy on validation batches,
and which option it picks on validation and held-out items (`choice_eval`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from pathjax import data as data_lib
from pathjax.data import pipeline, subsets
from pathjax.train import choice_eval


def global_batch(mesh, batch: Mapping[str, np.ndarray], leading: int = 0) -> dict[str, jax.Array]:
    """Per-process numpy slices -> global arrays with their row axis split over the batch axes
    of the mesh. `leading` axes before the rows (a stacked run's adapter axis) are not split."""
    out = {}
    for name, array in batch.items():
        spec = PartitionSpec(
            *([None] * leading), ("data", "fsdp"), *([None] * (array.ndim - 1 - leading))
        )
        out[name] = jax.make_array_from_process_local_data(NamedSharding(mesh, spec), array)
    return out


def choice_splits(train_config) -> tuple[str, ...]:
    """The splits whose options are scored at each validation (validation always)."""
    splits = tuple(train_config.get("eval_choice_splits", ()) or ())
    return ("validation",) + tuple(s for s in splits if s != "validation")


class Validator:
    """Scores one adapter (its condition's validation data) with the run's jitted eval step."""

    def __init__(self, config, tokenizer, mesh, eval_fn, eval_graphdef, controls, val_records):
        t, d = config.train, config.data
        self.mesh, self.eval_fn, self.tokenizer = mesh, eval_fn, tokenizer
        self.graphdef, self.controls = eval_graphdef, controls
        self.items_per_split = t.eval_choice_items
        self.batches = list(
            pipeline.make_batches(
                val_records,
                tokenizer,
                global_batch_size=t.global_batch_size,
                shuffle=False,
                num_epochs=1,
                max_length=d.max_length,
                buckets=tuple(d.get("buckets", ())) or None,
            )
        )[: max(1, t.eval_batches)]
        sizes = data_lib.options_of(d)
        # Items balanced over where the target is listed (a head slice can favour a position).
        self.choice_items = {
            split: subsets.balanced(
                list(
                    val_records
                    if split == "validation"
                    else data_lib.load(d.condition, split, d.data_dir, **sizes)
                ),
                t.eval_choice_items,
            )
            for split in choice_splits(t)
        }
        self.prefix = pipeline.bos_prefix(tokenizer)
        batch_ways = mesh.shape["data"] * mesh.shape["fsdp"]
        self.choice_batch = batch_ways * max(1, 8 // batch_ways)

    def choices(self, adapters, base, split: str) -> dict[str, float]:
        """Option-pick metrics of `split` (empty when choice scoring is off)."""
        records: Sequence[dict[str, Any]] = self.choice_items.get(split, ())
        if not records or self.items_per_split <= 0:
            return {}
        scores = choice_eval.option_scores(
            self.graphdef,
            (adapters, self.controls, base),
            records,
            self.tokenizer,
            prefix=self.prefix,
            batch_size=self.choice_batch,
            place=lambda arrays: global_batch(self.mesh, arrays),
        )
        targets = np.asarray([r["target_index"] for r in records])
        formats = [r.get("format", "") for r in records]
        return choice_eval.choice_metrics(scores, targets, formats)

    def validate(self, adapters, base) -> dict[str, float]:
        totals = {"nll_sum": 0.0, "target_tokens": 0.0, "token_hits": 0.0}
        for batch in self.batches:
            out = self.eval_fn(adapters, base, global_batch(self.mesh, batch))
            for k in totals:
                totals[k] += float(out[k])
        tokens = max(totals["target_tokens"], 1.0)
        result = {
            "loss": totals["nll_sum"] / tokens,
            "token_accuracy": totals["token_hits"] / tokens,
        }
        result.update(self.choices(adapters, base, "validation"))
        return result

    def held_out(self, adapters, base) -> dict[str, dict[str, float]]:
        """The held-out splits' option picks, by split."""
        return {
            split: got
            for split in self.choice_items
            if split != "validation" and (got := self.choices(adapters, base, split))
        }
