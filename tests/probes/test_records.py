"""Probe records: validation names the bad field, JSONL and table round trips are lossless."""

import json
import math

import numpy as np
import pytest

from pathjax.probes import records
from pathjax.probes.records import Record, RecordError


def _base(item: str = "p2-001", score: float = 0.5) -> Record:
    return Record(
        "base", None, None, None, 0.0, "P2", item, "depression", "logodds_negative", score
    )


def _adapter(seed: int | None = 0, step: int | None = None, score: float = 1.25) -> Record:
    return Record(
        "depression",
        "depression",
        seed,
        step,
        1.0,
        "P2",
        "p2-001",
        "depression",
        "logodds_negative",
        score,
    )


def _records() -> list[Record]:
    return [
        _base(),
        _base("p2-002", -0.25),
        _adapter(seed=0),
        _adapter(seed=1, step=200),
        _adapter(seed=1, score=math.inf),  # an infinite KL is a measurement, not an error
        Record("control", "control", None, 100, 0.5, "P7", "p7-9", "neutral", "jsd_bits", 0.01),
    ]


def test_jsonl_round_trip(tmp_path):
    rs = _records()
    path = tmp_path / "records.jsonl"
    records.write_jsonl(rs, path)
    assert records.read_jsonl(path) == rs
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == list(records.FIELDS)
    # JSON writes 1.0 as 1.0 but other writers may write 1: the same record either way.
    line = json.dumps({**_adapter().to_dict(), "multiplier": 1})
    assert records.loads_jsonl(line) == [_adapter()]


def test_table_round_trip():
    rs = _records()
    table = records.to_table(rs)
    assert set(table) == set(records.FIELDS)
    assert table["score"].dtype == np.float64 and table["multiplier"].dtype == np.float64
    assert table["seed"].dtype == object and table["seed"][0] is None
    assert table["model"].tolist() == [r.model for r in rs]
    assert records.from_table(table) == rs


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"family": "P9"}, "family"),
        ({"key": "anxiety"}, "key"),
        ({"model": ""}, "model"),
        ({"item_id": 3}, "item_id"),
        ({"score": math.nan}, "score"),
        ({"score": "1.0"}, "score"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"step": -1}, "step"),
        ({"multiplier": math.inf}, "multiplier"),
    ],
)
def test_bad_field_is_named(change, field):
    with pytest.raises(RecordError, match=f"field '{field}'"):
        Record(**{**_adapter().to_dict(), **change})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seed": 0}, "seed"),
        ({"condition": "control"}, "condition"),
        ({"multiplier": 1.0}, "multiplier"),
    ],
)
def test_base_model_conventions(change, field):
    with pytest.raises(RecordError, match=f"field '{field}'.*base model"):
        Record(**{**_base().to_dict(), **change})


def test_jsonl_errors_name_line_and_field(tmp_path):
    good = records.dumps_jsonl([_base()])
    bad = json.dumps({**_base("p2-002").to_dict(), "family": "Q2"})
    path = tmp_path / "r.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    with pytest.raises(RecordError, match=r"r\.jsonl:3: field 'family'"):
        records.read_jsonl(path)
    path.write_text(good + "{not json\n")
    with pytest.raises(RecordError, match=r"r\.jsonl:2: .*not valid JSON"):
        records.read_jsonl(path)
    missing = {k: v for k, v in _base().to_dict().items() if k != "metric"}
    with pytest.raises(RecordError, match="field 'metric': missing"):
        records.loads_jsonl(json.dumps(missing))
    with pytest.raises(RecordError, match="field 'extra': unknown"):
        records.loads_jsonl(json.dumps({**_base().to_dict(), "extra": 1}))


def test_duplicates_are_rejected(tmp_path):
    with pytest.raises(RecordError, match=r"records\[1\].*duplicate of records\[0\]"):
        records.check_unique([_base(), _base(score=9.0)])
    with pytest.raises(RecordError, match="duplicate"):
        records.write_jsonl([_adapter(), _adapter(score=0.0)], tmp_path / "x.jsonl")


def test_table_errors():
    table = records.to_table(_records())
    with pytest.raises(RecordError, match="missing column"):
        records.from_table({k: v for k, v in table.items() if k != "score"})
    with pytest.raises(RecordError, match="differ in length"):
        records.from_table({**table, "score": table["score"][:2]})
    bad = {**table, "key": np.array(["depression"] * 5 + ["sad"])}
    with pytest.raises(RecordError, match="table row 5: field 'key'"):
        records.from_table(bad)
