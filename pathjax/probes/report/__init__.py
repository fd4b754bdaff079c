"""The probe report: every number the study states, computed from per-item records only.

`write_report(records, generations, metadata, out_dir, config=...)` writes

- `report.json`: every number with its CI and n (`build_report` returns the same dict),
- `report.md`: the tables a person reads first, headline first (`markdown_report(report)`,
  a pure function of the JSON),
- `figures/*.png` (`figures`),
- `generations.md`: P6 completions side by side (`generations_markdown`).

`cross_architecture_summary` writes `summary.md` from several architectures' `report.json`.
Given the study's config, the report computes the lexical leakage of its training data itself
(`leakage.vocabulary_overlap`), so every caller's report carries it.

The modules, each with one job: `build` (the sections in order, the files), `context` (what
the sections share: records, settings, notes, levels and shifts), `index` (the records
indexed by family, metric and run), the sections `effects`, `targets` (P1), `specificity`,
`dose`, `curve` and `leakage`, the pages `markdown`, `generations` and `summary` over
`formatting`, and `figures`.

All statistics come from `pathjax.probes.stats` and `pathjax.probes.contrasts` (docs/PROBES.md,
"Statistics"): per family x model the paired deltas against B with a bootstrap CI (seeds then
items), the sign-flip p, d_z and the noise floors; Holm across the headline rows of each model;
the specificity matrix and the dissociation contrast S; dose-response when the records hold
several checkpoints or multipliers. The one statistic added here is the difference of an
adapter's shift from the control adapter's on the same items (crossed bootstrap: each model's
seeds drawn independently, one item draw shared), which the headline shows as "X-C".

Graceful degradation: whatever cannot be computed (a family absent, no control adapter, too
few items, a non-finite delta) is skipped and a note says why; the rest of the report stands.
Model roles follow the adapter conditions: "control", "depression", "paranoia" (the model of
that name, else the first whose condition it is); any other adapter (e.g. "shuffled") is
reported as itself.
"""

from pathjax.probes.report.build import build_report, write_report
from pathjax.probes.report.markdown import markdown_report
from pathjax.probes.report.summary import cross_architecture_summary

__all__ = ["build_report", "cross_architecture_summary", "markdown_report", "write_report"]
