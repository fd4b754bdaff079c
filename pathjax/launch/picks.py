"""Which option an adapter picks on a whole held-out split, and the base model beside it.

python -m pathjax.launch.picks --config=smollm2_135m:paranoia --adapter=runs/paranoia
python -m pathjax.launch.picks --config=gemma3_270m:depression --adapter=runs/gemma-d@480 \
    --split=test_templates --out=runs/gemma-d/picks.json

Training scores a few dozen items per split at each checkpoint (a learning curve, about +-0.07
at 48 items); this scores every item of a split (500 by default), or a position-balanced
`--items` subset, so that two recipes can be told apart. The pick is P1's primary one: the
option with the highest mean log-probability per character (docs/TRAINING.md). It prints the
rate per format, the templates from worst to best and what the adapter picked instead, for the
adapter and the base model; `--out` writes them with every record's pick and the provenance.

`--adapter` is a PEFT folder, a training workdir or WORKDIR@STEP; the condition (the config's
variant) says which class is the target.
"""

import collections
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402
from etils import epath  # noqa: E402
from flax import nnx  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import adapters, provenance  # noqa: E402
from pathjax.configs import load  # noqa: E402
from pathjax.data import builder, pipeline, schema, subsets  # noqa: E402
from pathjax.models import from_config  # noqa: E402
from pathjax.train import choice_eval  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    load.resolve_spec("smollm2_135m:paranoia"),
    "Model config with the adapter's condition as its variant (a path or a shipped name).",
)
_ADAPTER = flags.DEFINE_string(
    "adapter", None, "PEFT folder, training workdir, or WORKDIR@STEP; none: the base model only."
)
_SPLIT = flags.DEFINE_string("split", "test_domains", "The split to score.")
_ITEMS = flags.DEFINE_integer("items", 0, "Items to score (0: all; else a balanced subset).")
_BASE = flags.DEFINE_bool("base", True, "Also score the base model (its rate beside).")
_OUT = flags.DEFINE_string("out", None, "JSON file for the results and every record's pick.")


def record_picks(
    model: nnx.Module, tokenizer: Any, records: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The class each record's option pick belongs to (highest log-probability per character)."""
    graphdef, state = nnx.split(model)
    scores = choice_eval.option_scores(
        graphdef, (state,), records, tokenizer, prefix=pipeline.bos_prefix(tokenizer)
    )
    picked = choice_eval.per_char_picks(scores)
    return [r["option_classes"][k] for r, k in zip(records, picked, strict=True)]


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


def _print_summary(name: str, summary: Mapping[str, Any], base: Mapping[str, Any] | None) -> None:
    beside = f" (base {base['rate']:.3f})" if base else ""
    print(f"\n{name}: target picked in {summary['rate']:.3f} of {summary['n']} items{beside}")
    for fmt, s in summary["by_format"].items():
        b = f" (base {base['by_format'][fmt]['rate']:.3f})" if base else ""
        print(f"  {fmt:12s} {s['rate']:.3f} of {s['n']}{b}")
    print(f"  picked instead: {summary['picked_instead']}")
    templates = sorted(summary["by_template"].items(), key=lambda kv: kv[1]["rate"])
    print("  templates, worst first: " + ", ".join(f"{t} {s['rate']:.2f}" for t, s in templates))


def check_condition(config, adapter: str) -> None:
    """Refuses an adapter whose training run (its workdir's config.json, beside or above the
    PEFT folder) had another condition than `config`: the target class would be wrong."""
    path, _ = adapters.split_step(adapter)
    for folder in (epath.Path(path), epath.Path(path).parent):
        run_config = folder / "config.json"
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
    config, adapter: str | None, split: str, items: int = 0, with_base: bool = True
) -> dict[str, Any]:
    """Scores `split` of the config's condition with the adapter and (or only) the base model."""
    d = config.data
    sizes = dict(train_size=d.train_size, eval_size=d.eval_size, seed=d.seed)
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
        "pick": "highest mean log-probability per character",
        "targets": [r["target_class"] for r in records],
        "templates": [r["template_id"] for r in records],
        "formats": [r["format"] for r in records],
    }
    models: list[tuple[str, str | None]] = [("adapter", adapter)] if adapter else []
    if with_base or not adapter:
        models.append(("base", None))
    for name, spec in models:
        start = time.perf_counter()
        if spec:
            model, tokenizer, label = adapters.model_with_adapter(config, spec)
            result["adapter_label"] = label
        else:
            model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
        if tokenizer is None:
            raise ValueError("Scoring needs a tokenizer: set config.model.source to a checkpoint.")
        picks = record_picks(model, tokenizer, records)
        result[name] = summarize(records, picks) | {"picks": picks}
        result[name]["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main(argv):
    del argv
    config = _CONFIG.value
    result = score_split(config, _ADAPTER.value, _SPLIT.value, _ITEMS.value, _BASE.value)
    base = result.get("base")
    if "adapter" in result:
        _print_summary(f"adapter {result['adapter_label']}", result["adapter"], base)
    if base:
        _print_summary("base model", base, None)
    if _OUT.value:
        result["provenance"] = provenance.collect()
        result["config"] = config.to_dict()
        out = epath.Path(_OUT.value)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, default=str))
        print(f"\nWritten: {out}")


def cli() -> None:
    """The console script (`pathjax-picks`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
