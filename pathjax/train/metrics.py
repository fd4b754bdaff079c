"""Metrics to a JSONL file and TensorBoard event files (written by the first process)."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np
from etils import epath

from pathjax import storage


class MetricsWriter:
    """Appends rows to `metrics.jsonl` and TensorBoard. A run resumed from checkpoint step S
    (`resume_step=S`) first drops what it had logged after S, in both, so the steps it runs
    again are logged once."""

    def __init__(self, workdir: str, *, tensorboard: bool = True, resume_step: int = 0):
        self.enabled = jax.process_index() == 0
        self.path = epath.Path(workdir) / "metrics.jsonl"
        self._file = None
        self._rows: list[str] = []  # A bucket's file, rewritten whole on each write.
        self._tb = None
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _drop_rows_after(self.path, resume_step)
        if storage.is_remote(workdir):
            # Objects in a bucket cannot be appended to: keep the rows and upload them all.
            self._rows = (
                self.path.read_text().splitlines(keepends=True) if self.path.exists() else []
            )
        else:
            self._file = self.path.open("a")  # Appends: a resumed run continues the same file.
        if tensorboard:
            from tensorboardX import SummaryWriter

            # purge_step: TensorBoard hides events at and after it that an earlier run wrote.
            # tensorboardX writes gs:// itself (with google-cloud-storage installed).
            self._tb = SummaryWriter(
                os.path.join(os.fspath(workdir), "tensorboard"), purge_step=resume_step + 1
            )

    def write(self, step: int, split: str, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        scalars = {k: float(np.asarray(v)) for k, v in values.items()}
        line = json.dumps({"step": step, "split": split, **scalars}) + "\n"
        if self._file is not None:
            self._file.write(line)
            self._file.flush()
        else:
            self._rows.append(line)
            self.path.write_text("".join(self._rows))
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(f"{split}/{name}", value, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path: epath.Path, step: int) -> None:
    lines = [line for line in path.read_text().splitlines(keepends=True) if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        # A crash here leaves the old file or the new one.
        storage.write_text_atomic(path, "".join(kept))


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    path = epath.Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
