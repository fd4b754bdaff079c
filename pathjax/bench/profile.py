"""Where a jitted call's time goes: one call under `jax.profiler`, summed per XLA operation.

The profiler's Perfetto trace holds one event per executed XLA operation (a fusion, a library
matmul such as `ynn_fusion`, a `dot_general`); their names are HLO instruction names. Summing
them by name with the numeric suffix dropped (`ynn_fusion.625` -> `ynn_fusion`) shows how much
of a step the matmuls take and which element-wise fusions cost the rest. The sum is over
operations, so two operations overlapping on two cores count twice: shares, not wall time.
Control-flow operations (`while`, `conditional`, `call`) are left out: their events contain
their bodies' operations, which are counted themselves.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import gzip
import json
import os
import re
from collections.abc import Callable

import jax

# HLO instruction names (`ynn_fusion.12`, `wrapped_convert`, `dot_general.3`); the runtime's own
# events have capitals, spaces, `::` or a leading `$`.
_OP_NAME = re.compile(r"^([a-z][a-z0-9_\-]*?)(\.\d+)?$")
# Control-flow operations whose events span their bodies' operations (a scanned layer stack
# is a `while`): counting them would count the body twice.
_CONTAINERS = frozenset({"while", "conditional", "call"})
# Operations that are matrix products: XLA's library fusions (XNNPACK/YNNPACK, oneDNN) and
# its own dot emitter.
_MATMUL_KINDS = ("ynn_fusion", "xnn_fusion", "onednn", "dot", "dot_general", "custom-call")


@dataclasses.dataclass(frozen=True)
class OpTime:
    op: str  # Instruction name without its numeric suffix.
    ms: float  # Summed duration over the call.
    count: int  # How many executions were summed.
    share: float  # Of all operations' summed time.


def profile_call(fn: Callable[[], object], out_dir: str) -> list[OpTime]:
    """Runs `fn` once under the profiler (compile it first) and summarizes its trace."""
    with jax.profiler.trace(out_dir, create_perfetto_trace=True):
        jax.block_until_ready(fn())
    return summarize(out_dir)


def summarize(out_dir: str) -> list[OpTime]:
    """Per-operation totals of the newest trace under `out_dir`, largest first."""
    traces = glob.glob(os.path.join(out_dir, "**", "*.trace.json.gz"), recursive=True)
    if not traces:
        raise FileNotFoundError(f"No *.trace.json.gz under {out_dir}: was a profile written?")
    with gzip.open(max(traces, key=os.path.getmtime)) as f:
        events = json.load(f)["traceEvents"]
    total_us: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for event in events:
        match = _OP_NAME.match(event.get("name", "")) if event.get("ph") == "X" else None
        if match and match.group(1) not in _CONTAINERS:
            total_us[match.group(1)] += event.get("dur", 0)
            count[match.group(1)] += 1
    overall = sum(total_us.values()) or 1
    return [OpTime(op, us / 1e3, count[op], us / overall) for op, us in total_us.most_common()]


def matmul_share(ops: list[OpTime]) -> float:
    """The share of the summed operation time spent in matrix products."""
    return sum(o.share for o in ops if o.op.startswith(_MATMUL_KINDS))


def format_profile(ops: list[OpTime], top: int = 12) -> str:
    lines = [f"matmuls: {100 * matmul_share(ops):.0f}% of the summed operation time; top ops:"]
    lines += ["| op | ms | count | share |", "| --- | --- | --- | --- |"]
    lines += [f"| {o.op} | {o.ms:.1f} | {o.count} | {100 * o.share:.1f}% |" for o in ops[:top]]
    return "\n".join(lines)
