"""Metrics to a JSONL file and TensorBoard event files (written by the first process)."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np


class MetricsWriter:
    """Appends rows to `metrics.jsonl` and TensorBoard. A run resumed from checkpoint step S
    (`resume_step=S`) first drops what it had logged after S, in both, so the steps it runs
    again are logged once."""

    def __init__(self, workdir: str, *, tensorboard: bool = True, resume_step: int = 0):
        self.enabled = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._file = None
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        if os.path.exists(self.path):
            _drop_rows_after(self.path, resume_step)
        self._file = open(self.path, "a")  # Appends: a resumed run continues the same file.
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step: TensorBoard hides events at and after it that an earlier run wrote.
            self._tb = SummaryWriter(
                os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1
            )

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        scalars = {k: float(np.asarray(v)) for k, v in values.items()}
        self._file.write(json.dumps({"step": step, "split": split, **scalars}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(f"{split}/{name}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path: str, step: int) -> None:
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, path)  # Atomic: a crash here leaves the old file or the new one.


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
