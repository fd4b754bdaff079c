"""The report's dose-response section: for each adapter with several checkpoints or several
multipliers, the slope of its primary shift over the dose (`contrasts.dose_response`), on its
own trait key where the family has one and on its P1 target class."""

from collections.abc import Mapping
from typing import Any

from pathjax.probes import contrasts
from pathjax.probes.report.context import ReportContext
from pathjax.probes.report.index import FINAL_RUN
from pathjax.probes.schema import PRIMARY_METRIC


def dose_response(ctx: ReportContext) -> list[dict[str, Any]]:
    rx, c = ctx.rx, ctx.cfg
    out = []
    for m in ctx.adapters:
        runs = rx.runs[m]
        final_step = _final_step(ctx.metadata, m)
        steps = [s for s, x in runs if x == 1.0 and s is not None]
        # The final checkpoint's records carry step None; metadata says which step that was.
        n_step_levels = len(steps) + (final_step is not None and FINAL_RUN in runs)
        mults = [x for s, x in runs if s is None]
        if steps and final_step is None and n_step_levels >= 1:
            ctx.note(
                f"Dose-response over steps for {m}: the final checkpoint is left out "
                "(metadata has no final_step)."
            )
        bys = [b for b, n in (("step", n_step_levels), ("multiplier", len(mults))) if n >= 2]
        own = rx.condition.get(m)
        for by in bys:
            for f in rx.families:
                if f == "P1":
                    cls = ctx.target(m)
                    metric, key = (f"top_{cls}" if cls else None), None
                else:
                    metric = PRIMARY_METRIC.get(f)
                    key = own if rx.keys_of(f).get(own, 0) >= 2 else None
                if metric is None or (f, metric) not in rx.by_fm:
                    continue
                try:
                    dr = contrasts.dose_response(
                        rx.get(f, metric),
                        m,
                        by,
                        family=f,
                        metric=metric,
                        key=key,
                        final_step=final_step if by == "step" else None,
                        n_resamples=c.n_resamples,
                        n_permutations=c.n_permutations,
                        ci=c.ci,
                        seed=c.seed,
                    )
                except ValueError as e:
                    ctx.note(f"Dose-response {m} {f}/{metric} by {by}: {e}")
                    continue
                out.append(dr.to_dict())
    return out


def _final_step(metadata: Mapping[str, Any], model: str) -> int | None:
    """metadata["final_step"]: one int for every adapter, or {model: int}."""
    fs = metadata.get("final_step")
    if isinstance(fs, Mapping):
        fs = fs.get(model)
    return fs if isinstance(fs, int) and not isinstance(fs, bool) else None
