"""The report's specificity section: the specificity matrix (each model's shift on depression-
and paranoia-keyed items of the families outside the training format) and the dissociation
contrast S between the depression and paranoia adapters (`pathjax.probes.contrasts`)."""

from pathjax.probes import contrasts
from pathjax.probes.report.context import ReportContext
from pathjax.probes.schema import BASE_MODEL, PRIMARY_METRIC, SPECIFICITY_FAMILIES, TRAIT_KEYS


def specificity(ctx: ReportContext) -> tuple[dict | None, dict | None]:
    """(specificity matrix, dissociation contrast S) as dicts; None where not computable."""
    rx = ctx.rx
    fams = {}
    for f in SPECIFICITY_FAMILIES:
        metric, counts = PRIMARY_METRIC[f], rx.keys_of(f)
        if (f, metric) not in rx.by_fm:
            continue
        n = [counts.get(k, 0) for k in TRAIT_KEYS]
        if max(n) < 3 or any(0 < x < 3 for x in n):
            per_key = dict(zip(TRAIT_KEYS, n, strict=True))
            ctx.note(f"Specificity: {f} left out (items per key {per_key}).")
            continue
        fams[f] = metric
    if not fams or not ctx.has_base:
        ctx.note("Specificity matrix: no keyed families (P2, P3, P5, P6) to build it from.")
        return None, None
    models = [BASE_MODEL] + [
        m for m in ctx.adapters if all(rx.has(m, f, x) for f, x in fams.items())
    ]
    left_out = [m for m in ctx.adapters if m not in models]
    if left_out:
        ctx.note(f"Specificity: {left_out} lack some of {sorted(fams)}; not in the matrix.")
    recs = [r for f, x in fams.items() for r in rx.get(f, x)]
    c = ctx.cfg
    matrix = dissociation = None
    if len(models) > 1:
        try:
            matrix = contrasts.specificity_matrix(
                recs, fams, models, n_resamples=c.n_resamples, ci=c.ci, seed=c.seed
            ).to_dict()
        except ValueError as e:
            ctx.note(f"Specificity matrix not computed: {e}")
    dep, par = rx.role("depression"), rx.role("paranoia")
    if dep in models and par in models:
        try:
            dissociation = contrasts.dissociation_contrast(
                recs,
                fams,
                depression_model=dep,
                paranoia_model=par,
                n_resamples=c.n_resamples,
                n_permutations=c.n_permutations,
                ci=c.ci,
                seed=c.seed,
            ).to_dict()
            dissociation["models"] = {"depression": dep, "paranoia": par}
            dissociation["families"] = dict(fams)
        except ValueError as e:
            ctx.note(f"Dissociation contrast S not computed: {e}")
    else:
        ctx.note("Dissociation contrast S needs both a depression and a paranoia adapter.")
    return matrix, dissociation
