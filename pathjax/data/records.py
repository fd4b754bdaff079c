"""Decoded, random-access views of the TFDS splits (TFDS hands text back as bytes)."""

from collections.abc import Sequence
from typing import Any

import numpy as np


class Records(Sequence[dict[str, Any]]):
    """A random-access split whose records have str fields (TFDS hands back bytes)."""

    def __init__(self, source: Any):
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return decode(self._source[index % len(self)])


def decode(raw: dict[str, Any]) -> dict[str, Any]:
    """Turns a TFDS record (bytes, numpy) into plain Python (str, list, int)."""
    record: dict[str, Any] = {"target_index": int(raw["target_index"])}
    for key, value in raw.items():
        if key == "target_index":
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            record[key] = [v.decode() if isinstance(v, bytes) else str(v) for v in value]
        else:
            record[key] = value.decode() if isinstance(value, bytes) else str(value)
    return record
