"""Lexical leakage (docs/PROBES.md, "Lexical leakage"): which probe lexicon words occur in the
training data, and the P4 lexicon shifts with all words beside those over unseen words only.

A probe word the adapter saw in training can move because it was trained on, not because the
trait generalised; the `*_unseen` P4 metrics leave those words out, and this section puts the
two side by side.
"""

from collections.abc import Mapping
from typing import Any

from pathjax.probes import dataset_inputs, stats
from pathjax.probes import items as items_lib
from pathjax.probes.report.context import ReportContext

LEXICON_METRICS = ("neg_share", "threat_minus_sad")  # each with an `_unseen` twin


def vocabulary_overlap(config) -> dict[str, Any]:
    """The probe lexicon words that occur in the training data of `config` (its `data`
    section; the suite is `config.eval.suite_version`) and their fraction of all lexicon words:
    the `leakage` entry of a report's metadata."""
    # The evaluator's own training vocabulary, so that these words are the ones the `_unseen`
    # metrics leave out. Imported here: it reads the dataset, which the rest of the report
    # (a function of records) never needs.

    suite = items_lib.load_suite(config.eval.suite_version or None)
    seen = dataset_inputs.training_vocabulary(config)
    words = sorted({w for lex in suite.lexicons.values() for w in lex.words})
    leaked = [w for w in words if w in seen]
    return {
        "probe_words_in_training_vocabulary": leaked,
        "fraction": len(leaked) / max(len(words), 1),
    }


def leakage(ctx: ReportContext) -> dict[str, Any]:
    """The overlap from the metadata (`vocabulary_overlap`; empty where none was supplied) and
    each adapter's P4 lexicon shifts with all words and with the words unseen in training only."""
    info = ctx.metadata.get("leakage")
    info = dict(info) if isinstance(info, Mapping) else {}
    comparison = []
    for m in ctx.adapters:
        for metric in LEXICON_METRICS:
            pair = [ctx.effect(m, "P4", x) for x in (metric, f"{metric}_unseen")]
            if all(pair):
                comparison.append(
                    {
                        "model": m,
                        "metric": metric,
                        "all_words": _interval(pair[0][0]),
                        "unseen_words_only": _interval(pair[1][0]),
                    }
                )
    return {
        "probe_words_in_training_vocabulary": info.get("probe_words_in_training_vocabulary"),
        "fraction": info.get("fraction"),
        "lexicon_metrics_with_and_without": comparison,
    }


def _interval(s: stats.EffectSummary) -> dict[str, Any]:
    return {
        "mean_delta": s.mean_delta,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "n_items": s.n_items,
        "n_seeds": s.n_seeds,
    }
