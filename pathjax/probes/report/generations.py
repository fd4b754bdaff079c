"""`generations.md`: the P6 completions of B and every adapter side by side, one table per
prompt."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pathjax.probes.records import Record
from pathjax.probes.report.formatting import model_order, table
from pathjax.probes.schema import BASE_MODEL


def generations_markdown(
    generations: Sequence[Mapping[str, Any]], records: Sequence[Record] = ()
) -> str:
    """P6 completions side by side: per prompt, a table of samples x models (B, and every
    adapter's final checkpoint at multiplier 1; several seeds get a column each)."""
    keys = {r.item_id: r.key for r in records if r.family == "P6"}
    out = ["# Generations", ""]
    kept = [
        g
        for g in generations
        if g.get("model")
        and (
            g["model"] == BASE_MODEL or (g.get("step") is None and g.get("multiplier", 1.0) == 1.0)
        )
    ]
    if not kept:
        return "\n".join(out + ["No generations.", ""])
    column = lambda g: g["model"] + (f" (seed {g['seed']})" if g.get("seed") is not None else "")
    seeds = defaultdict(set)
    for g in kept:
        seeds[g["model"]].add(g.get("seed"))
    label = lambda g: column(g) if len(seeds[g["model"]]) > 1 else g["model"]
    order = {m: i for i, m in enumerate(model_order(seeds))}
    columns = sorted(
        {label(g): (order[g["model"]], str(g.get("seed"))) for g in kept}.items(),
        key=lambda x: x[1],
    )
    columns = [c for c, _ in columns]
    out += [f"Final checkpoints at multiplier 1; columns: {', '.join(columns)}.", ""]
    by_prompt: dict[str, list] = defaultdict(list)
    for g in kept:
        by_prompt[str(g.get("item_id"))].append(g)
    for pid in sorted(by_prompt):
        gs = by_prompt[pid]
        key = f" ({keys[pid]}-keyed)" if pid in keys else ""
        prompt = next((g.get("prompt") for g in gs if g.get("prompt")), "")
        out += [f"## {pid}{key}", ""] + [f"> {line}" for line in str(prompt).splitlines()] + [""]
        cells = {(g.get("sample"), label(g)): str(g.get("text", "")).strip() for g in gs}
        samples = sorted({s for s, _ in cells}, key=lambda s: (s is None, str(s).zfill(8)))
        rows = [[s] + [cells.get((s, c), "") for c in columns] for s in samples]
        out += table(["sample"] + columns, rows) + [""]
    return "\n".join(out)
