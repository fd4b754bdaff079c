"""What the probe report's pages share: the model order, number and interval formatting,
Markdown tables, family labels, and the conversion to plain JSON.

`markdown` (report.md), `generations` (generations.md) and `summary` (summary.md) format with
these; the builder (`build`) and the record index use `model_order` and `jsonable` too, so they
live here, below all of them.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pathjax.probes.schema import FAMILY_LABELS, ROLES


def model_order(models) -> list[str]:
    """B, then the control, depression and paranoia adapters, then any other by name."""
    return sorted(models, key=lambda m: (ROLES.index(m) if m in ROLES else len(ROLES), m))


def jsonable(x: Any) -> Any:
    """Plain JSON: dataclasses and numpy to Python, non-finite floats to null."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return jsonable(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, bool | int | str):
        return x
    return str(x)


def number(x: Any, signed: bool = False) -> str:
    """Three significant digits (whole numbers from 1000 up); "-" where missing or not finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:+.0f}" if signed else f"{x:.0f}"
    return f"{x:+.3g}" if signed else f"{x:.3g}"


def interval(est: Any, low: Any, high: Any, signed: bool = True) -> str:
    """ "est [low, high]"."""
    return f"{number(est, signed)} [{number(low, signed)}, {number(high, signed)}]"


def ci(d: Mapping[str, Any] | None, est: str = "mean_delta", signed: bool = True) -> str:
    """The estimate `est` of an effect dict with its CI; "-" where there is no effect."""
    return "-" if not d else interval(d[est], d["ci_low"], d["ci_high"], signed)


def p_value(p: Any) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3g}")


def table(header: str | Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table; `header` may be one "a|b|c" string."""
    header = header.split("|") if isinstance(header, str) else header
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", "<br>")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def family_label(row: Mapping[str, Any]) -> str:
    """ "P2 ambiguous situations, depression-keyed" for a row with a family and a key."""
    key = f", {row['key']}-keyed" if row.get("key") else ""
    return f"{row['family']} {FAMILY_LABELS.get(row['family'], '')}{key}"
