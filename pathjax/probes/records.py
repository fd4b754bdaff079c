"""Per-item probe records: the one interface between the evaluator and the statistics.

The evaluator writes one `Record` per (model, seed, checkpoint step, adapter multiplier, probe
family, item, metric); `pathjax.probes.stats` and the report read nothing else
(docs/ARCHITECTURE.md, "Contracts"). Records travel as JSONL, one JSON object per line with
exactly the fields of `Record`, and can be turned into a tidy column table (`to_table`) for
plotting or pandas.

Conventions:

- `model` is "base" for the base model B and otherwise the adapter's name ("control",
  "depression", "paranoia", or any other); `condition` is the adapter's training condition
  (None for B).
- B has `condition = None`, `seed = None`, `step = None` and `multiplier = 0.0` (an adapter at
  multiplier 0 is B, so no other value is meaningful).
- `seed` is the adapter's training seed (None when a run has only one and it is unnamed);
  `step` is the checkpoint step, None for the final checkpoint; `multiplier` scales the
  adapter's delta at run time (1.0 is the trained adapter).
- `family` is "P1".."P7"; `key` is the item's keying ("depression", "paranoia", "neutral");
  `metric` names the score (e.g. "logodds_negative", "jsd_bits"). Metrics are oriented by the
  probe: a larger score means more of what the metric names.
- `score` may be +-inf (e.g. a KL with a zero in the reference) but not NaN: a missing value is
  a missing record, never a NaN.

Every problem raises `RecordError` naming the record (its position and source) and the field.
"""

import dataclasses
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from pathjax.probes.schema import BASE_MODEL
from pathjax.probes.schema import ITEM_KEYS as KEYS

_FAMILY = re.compile(r"^P[1-7]$")


class RecordError(ValueError):
    """A malformed record or record file; the message names the record and the field."""

    def __init__(self, where: str, field: str, problem: str):
        super().__init__(f"{where}: field {field!r}: {problem}")
        self.where, self.field, self.problem = where, field, problem


@dataclasses.dataclass(frozen=True)
class Record:
    """One score of one probe item on one model (see the module docstring for conventions)."""

    model: str
    condition: str | None
    seed: int | None
    step: int | None
    multiplier: float
    family: str
    item_id: str
    key: str
    metric: str
    score: float

    def __post_init__(self) -> None:
        _check(self, "record")

    @property
    def identity(self) -> tuple[Any, ...]:
        """The fields that locate a score; two records share them only by mistake."""
        return (
            self.model,
            self.seed,
            self.step,
            self.multiplier,
            self.family,
            self.item_id,
            self.metric,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_IDENTITY_NAMES = ("model", "seed", "step", "multiplier", "family", "item_id", "metric")


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value == value.strip()


def _int_or_none(value: Any) -> bool:
    # bool is an int subclass; True as a seed is a bug upstream, not a seed.
    return value is None or (isinstance(value, int | np.integer) and not isinstance(value, bool))


def _real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check(r: Record, where: str) -> None:
    for name in ("model", "family", "item_id", "key", "metric"):
        if not _nonempty_str(getattr(r, name)):
            raise RecordError(where, name, f"must be a non-empty string, got {getattr(r, name)!r}")
    if r.condition is not None and not _nonempty_str(r.condition):
        raise RecordError(where, "condition", f"must be None or a string, got {r.condition!r}")
    if not _int_or_none(r.seed):
        raise RecordError(where, "seed", f"must be None or an int, got {r.seed!r}")
    if not _int_or_none(r.step) or (r.step is not None and r.step < 0):
        raise RecordError(where, "step", f"must be None or an int >= 0, got {r.step!r}")
    if not _real(r.multiplier) or not math.isfinite(r.multiplier):
        raise RecordError(where, "multiplier", f"must be a finite number, got {r.multiplier!r}")
    if not _FAMILY.match(r.family):
        raise RecordError(where, "family", f"must be one of P1..P7, got {r.family!r}")
    if r.key not in KEYS:
        raise RecordError(where, "key", f"must be one of {KEYS}, got {r.key!r}")
    if not _real(r.score) or math.isnan(r.score):
        raise RecordError(where, "score", f"must be a number (not NaN), got {r.score!r}")
    if r.model == BASE_MODEL:
        for name, want in (("condition", None), ("seed", None), ("step", None)):
            if getattr(r, name) is not want:
                raise RecordError(
                    where, name, f"must be None for the base model, got {getattr(r, name)!r}"
                )
        if r.multiplier != 0.0:
            raise RecordError(
                where, "multiplier", f"must be 0.0 for the base model, got {r.multiplier!r}"
            )


def from_dict(d: Mapping[str, Any], where: str = "record") -> Record:
    """A `Record` from a mapping with exactly its fields; errors name `where` and the field."""
    if not isinstance(d, Mapping):
        raise RecordError(where, "*", f"must be a JSON object, got {type(d).__name__}")
    missing = [f for f in FIELDS if f not in d]
    if missing:
        raise RecordError(where, missing[0], f"missing (missing fields: {missing})")
    extra = sorted(set(d) - set(FIELDS))
    if extra:
        raise RecordError(where, extra[0], f"unknown field (unknown: {extra})")
    values = dict(d)
    # JSON has one number type; an integral float multiplier (1 vs 1.0) is the same record.
    if _real(values["multiplier"]):
        values["multiplier"] = float(values["multiplier"])
    if _real(values["score"]):
        values["score"] = float(values["score"])
    try:
        return Record(**values)
    except RecordError as e:
        raise RecordError(where, e.field, e.problem) from None


def check_unique(records: Iterable[Record], source: str = "records") -> None:
    """Raise if two records share an identity (same model, seed, step, multiplier, item, metric)."""
    seen: dict[tuple[Any, ...], int] = {}
    for i, r in enumerate(records):
        j = seen.setdefault(r.identity, i)
        if j != i:
            raise RecordError(
                f"{source}[{i}]",
                "item_id",
                f"duplicate of {source}[{j}]: "
                f"{dict(zip(_IDENTITY_NAMES, r.identity, strict=True))}",
            )


def dumps_jsonl(records: Iterable[Record]) -> str:
    """One JSON object per line, fields in schema order."""
    return "".join(json.dumps(r.to_dict()) + "\n" for r in records)


def loads_jsonl(text: str, source: str = "<string>") -> list[Record]:
    """Parse JSONL text (blank lines skipped); errors name `source:line` and the field."""
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordError(where, "*", f"not valid JSON ({e.msg})") from None
        out.append(from_dict(d, where))
    check_unique(out, source)
    return out


def write_jsonl(records: Iterable[Record], path: str | os.PathLike) -> None:
    records = list(records)
    check_unique(records, str(path))
    epath.Path(path).write_text(dumps_jsonl(records))


def read_jsonl(path: str | os.PathLike) -> list[Record]:
    return loads_jsonl(epath.Path(path).read_text(), source=os.fspath(path))


# Nullable columns stay object arrays so that None survives; the rest get plain dtypes.
_OBJECT_COLUMNS = ("condition", "seed", "step")
_FLOAT_COLUMNS = ("multiplier", "score")


def to_table(records: Sequence[Record]) -> dict[str, np.ndarray]:
    """Tidy columns, one entry per record: str arrays, object arrays (with None) for
    condition/seed/step, float64 for multiplier and score. `pandas.DataFrame(table)` works."""
    table: dict[str, np.ndarray] = {}
    for name in FIELDS:
        values = [getattr(r, name) for r in records]
        if name in _OBJECT_COLUMNS:
            col = np.empty(len(values), dtype=object)
            col[:] = values
        elif name in _FLOAT_COLUMNS:
            col = np.asarray(values, dtype=np.float64)
        else:
            col = np.asarray(values, dtype=np.str_)
        table[name] = col
    return table


def from_table(table: Mapping[str, Sequence[Any]]) -> list[Record]:
    """Inverse of `to_table`: every column must be present and of equal length."""
    missing = [f for f in FIELDS if f not in table]
    if missing:
        raise RecordError("table", missing[0], f"missing column (missing: {missing})")
    lengths = {name: len(table[name]) for name in FIELDS}
    if len(set(lengths.values())) > 1:
        raise RecordError("table", "*", f"columns differ in length: {lengths}")
    n = next(iter(lengths.values()))
    out = []
    for i in range(n):
        d = {name: _py(table[name][i]) for name in FIELDS}
        out.append(from_dict(d, f"table row {i}"))
    return out


def _py(value: Any) -> Any:
    """numpy scalars to Python ones, so that validation sees ints, floats and strs."""
    return value.item() if isinstance(value, np.generic) else value
