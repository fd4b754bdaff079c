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
With both scored it adds the shift pick: the option whose log-probability per character rose
most over the base model's, i.e. what training moved, apart from the base's preference.
`--multiplier` scales the adapter's delta (1: as trained).

`--adapter` is a PEFT folder, a training workdir or WORKDIR@STEP; the condition (the config's
variant) says which class is the target.
"""

import json
from collections.abc import Mapping
from typing import Any

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402
from etils import epath  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import provenance  # noqa: E402
from pathjax.configs import load  # noqa: E402
from pathjax.probes import picks  # noqa: E402

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
_MULTIPLIER = flags.DEFINE_float("multiplier", 1.0, "Scale of the adapter's delta (1: as trained).")
_OUT = flags.DEFINE_string("out", None, "JSON file for the results and every record's pick.")


def _print_summary(name: str, summary: Mapping[str, Any], base: Mapping[str, Any] | None) -> None:
    beside = f" (base {base['rate']:.3f})" if base else ""
    print(f"\n{name}: target picked in {summary['rate']:.3f} of {summary['n']} items{beside}")
    for fmt, s in summary["by_format"].items():
        b = f" (base {base['by_format'][fmt]['rate']:.3f})" if base else ""
        print(f"  {fmt:12s} {s['rate']:.3f} of {s['n']}{b}")
    print(f"  picked instead: {summary['picked_instead']}")
    templates = sorted(summary["by_template"].items(), key=lambda kv: kv[1]["rate"])
    print("  templates, worst first: " + ", ".join(f"{t} {s['rate']:.2f}" for t, s in templates))


def main(argv):
    del argv
    config = _CONFIG.value
    result = picks.score_split(
        config, _ADAPTER.value, _SPLIT.value, _ITEMS.value, _BASE.value, _MULTIPLIER.value
    )
    base = result.get("base")
    if "adapter" in result:
        label = f"adapter {result['adapter_label']} x {_MULTIPLIER.value:g}"
        _print_summary(label, result["adapter"], base)
    if base:
        _print_summary("base model", base, None)
    if "shift" in result:
        _print_summary(
            "shift pick (largest rise over the base, per character)", result["shift"], None
        )
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
