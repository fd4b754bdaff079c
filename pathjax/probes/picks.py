"""Which option a model picks on every item of a held-out split, and how often it is the target.

The pick is P1's primary one, the option with the highest mean log-probability per character
(`train/choice_eval.per_char_picks`). Training scores a few dozen items per checkpoint (a
learning curve); this scores a whole split, so that two recipes can be told apart
(`pathjax-picks`, docs/TRAINING.md).

With the base model scored too, a second pick asks what training changed rather than what the
adapter prefers: the option whose log-probability per character rose most over the base
model's (the base's own preference subtracted). Where this "shift" pick finds the target and
the primary pick does not, the adapter moved the target class up but the base model's
preference for another wording (its fluency) outweighed the move.
"""

import collections
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath
from flax import nnx

from pathjax import adapters, lora, provenance
from pathjax.data import builder, pipeline, schema, subsets
from pathjax.models import from_config
from pathjax.train import choice_eval


def record_scores(
    model: nnx.Module, tokenizer: Any, records: Sequence[Mapping[str, Any]]
) -> choice_eval.OptionScores:
    """Every record's options scored after its prompt (summed log-probability, characters)."""
    graphdef, state = nnx.split(model)
    return choice_eval.option_scores(
        graphdef, (state,), records, tokenizer, prefix=pipeline.bos_prefix(tokenizer)
    )


def classes_of(records: Sequence[Mapping[str, Any]], picked: np.ndarray) -> list[str]:
    """The class of each record's picked option index."""
    return [r["option_classes"][k] for r, k in zip(records, picked, strict=True)]


def shift_picks(adapter: choice_eval.OptionScores, base: choice_eval.OptionScores) -> np.ndarray:
    """Each record's option whose log-probability per character rose most over the base's."""
    return np.argmax((adapter.summed_no - base.summed_no) / adapter.chars_no, axis=1)


def summarize(records: Sequence[Mapping[str, Any]], picks: Sequence[str]) -> dict[str, Any]:
    """Target pick rate overall, per format and per template; what was picked instead."""
    hits = [p == r["target_class"] for r, p in zip(records, picks, strict=True)]

    def rate(keys: Sequence[str]) -> dict[str, dict[str, float]]:
        groups: dict[str, list[bool]] = collections.defaultdict(list)
        for key, hit in zip(keys, hits, strict=True):
            groups[key].append(hit)
        return {k: {"rate": float(np.mean(v)), "n": len(v)} for k, v in sorted(groups.items())}

    instead = collections.Counter(p for p, hit in zip(picks, hits, strict=True) if not hit)
    return {
        "rate": float(np.mean(hits)),
        "n": len(hits),
        "by_format": rate([r["format"] for r in records]),
        "by_template": rate([r["template_id"] for r in records]),
        "picked_instead": dict(instead.most_common()),
    }


def check_condition(config, adapter: str) -> None:
    """Refuses an adapter whose training run (its workdir's config.json, beside or above the
    PEFT folder) had another condition than `config`: the target class would be wrong."""
    path, _ = adapters.split_step(adapter)
    for folder in (epath.Path(path), epath.Path(path).parent):
        run_config = folder / provenance.CONFIG_FILE  # What training writes beside its run.
        if run_config.is_file():
            trained = json.loads(run_config.read_text()).get("data", {}).get("condition")
            wanted = config.data.condition
            if trained and trained != wanted:
                raise ValueError(
                    f"Adapter {adapter!r} was trained on condition {trained!r}, but the config "
                    f"scores {wanted!r} as the target; pass --config=<model>:{trained}."
                )
            return


def score_split(
    config,
    adapter: str | None,
    split: str,
    items: int = 0,
    with_base: bool = True,
    multiplier: float = 1.0,
) -> dict[str, Any]:
    """Scores `split` of the config's condition with the adapter (its delta scaled by
    `multiplier`) and (or only) the base model; with both, the shift pick too."""
    d = config.data
    sizes = builder.options_of(d)
    schema.check_split(split)
    if adapter:
        check_condition(config, adapter)
    # As training does: built once if missing (a few seconds), then reused.
    builder.build(d.condition, d.data_dir, **sizes)
    records = list(builder.load(d.condition, split, d.data_dir, **sizes))
    records = list(subsets.balanced(records, items))
    result: dict[str, Any] = {
        "condition": d.condition,
        "split": split,
        "adapter_spec": adapter,
        "multiplier": multiplier,
        "pick": "highest mean log-probability per character",
        "targets": [r["target_class"] for r in records],
        "templates": [r["template_id"] for r in records],
        "formats": [r["format"] for r in records],
    }
    start = time.perf_counter()
    if adapter:
        model, tokenizer, result["adapter_label"] = adapters.model_with_adapter(config, adapter)
    else:
        model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
    if tokenizer is None:
        raise ValueError("Scoring needs a tokenizer: set config.model.source to a checkpoint.")
    scored = (["adapter"] if adapter else []) + (["base"] if with_base or not adapter else [])
    scores = {}
    for name in scored:
        if adapter:
            # The base is the same loaded model with its adapter's delta scaled to 0 (the
            # evaluator's multiplier), not a second load of the checkpoint.
            lora.set_controls(model, multiplier=multiplier if name == "adapter" else 0.0)
        scores[name] = record_scores(model, tokenizer, records)
        picks = classes_of(records, choice_eval.per_char_picks(scores[name]))
        per_char = scores[name].summed_no / scores[name].chars_no
        result[name] = summarize(records, picks) | {
            "picks": picks,
            "per_char_logprob": np.round(per_char, 5).tolist(),
            "seconds": round(time.perf_counter() - start, 1),
        }
        start = time.perf_counter()
    if len(scores) == 2:
        picks = classes_of(records, shift_picks(scores["adapter"], scores["base"]))
        result["shift"] = summarize(records, picks) | {
            "picks": picks,
            "pick": "highest rise in log-probability per character over the base model",
        }
    return result
