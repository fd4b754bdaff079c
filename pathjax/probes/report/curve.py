"""The report's learning curve: did training take, and when?

Training scores the options of `eval_choice_items` items of validation and of each split in
`train.eval_choice_splits` at every evaluation (`pathjax/train/choice_eval.py`), and writes
them to the run's `metrics.jsonl`. The main job copies those rows into the report's metadata
(`training.curves`); this module turns them into the table and figure of P1's pick (the
highest mean log-probability per character) against examples seen.
"""

from collections.abc import Mapping
from typing import Any

PRIMARY = "choice_accuracy_per_char"
SUMMED = "choice_accuracy"


def learning_curve(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"runs": [{run, splits: {split: [{step, examples, accuracy, summed, by_format}]}}]}."""
    training = metadata.get("training") or {}
    curves = training.get("curves") or {}
    batch = int(training.get("global_batch_size") or 0)
    runs = []
    for run, rows in curves.items():
        splits: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if PRIMARY not in row and SUMMED not in row:
                continue
            prefix = PRIMARY + "_"
            by_format = {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}
            splits.setdefault(row["split"], []).append(
                {
                    "step": int(row["step"]),
                    "examples": int(row["step"]) * batch,
                    "accuracy": row.get(PRIMARY),
                    "summed": row.get(SUMMED),
                    "by_format": by_format,
                }
            )
        if splits:
            runs.append({"run": run, "splits": splits})
    return {"global_batch_size": batch, "runs": runs} if runs else None
