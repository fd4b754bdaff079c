"""Generates completions from a model, e.g. the embedded SmolLM2-135M, with or without an adapter.

python -m pathjax.launch.generate --config=smollm2_135m
python -m pathjax.launch.generate --config=smollm2_135m --adapter=runs/paranoia/adapter
python -m pathjax.launch.generate --config=smollm2_135m:paranoia --adapter=runs/paranoia@80

`--adapter` is a PEFT folder, a training workdir (its final adapter, else its latest checkpoint)
or `WORKDIR@STEP` (a checkpoint: --config must then be the run's, condition variant included).
"""

import sys
import time

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

import jax  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pathjax import adapters, generate  # noqa: E402
from pathjax.configs import load  # noqa: E402
from pathjax.models import from_config  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", load.resolve_spec("smollm2_135m"), "Model config (a path or a shipped name)."
)
_PROMPTS = flags.DEFINE_multi_string("prompt", None, "Prompts (default: the config's).")
_ADAPTER = flags.DEFINE_string(
    "adapter", None, "PEFT folder, training workdir, or WORKDIR@STEP (a checkpoint)."
)


def generate_and_print(config, prompts=None, *, adapter: str | None = None, out=sys.stdout):
    """`config`'s model (with `adapter`, as `pathjax.adapters` spells it) completes `prompts`
    (default: the config's), printed to `out`; returns the completions."""
    start = time.perf_counter()
    if adapter:
        model, tokenizer, label = adapters.model_with_adapter(config, adapter)
    else:
        model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
        label = None
    if tokenizer is None:
        raise ValueError("Generation needs a tokenizer: set config.model.source to a checkpoint.")
    loaded = time.perf_counter()
    sampling = generate.SamplingConfig(
        max_new_tokens=config.generate.max_new_tokens,
        temperature=config.generate.temperature,
        top_k=config.generate.top_k or None,
        top_p=config.generate.top_p if config.generate.top_p < 1 else None,
    )
    prompts = list(prompts or config.generate.prompts)
    completions = generate.generate_text(
        model, tokenizer, prompts, sampling, rng=jax.random.key(config.seed)
    )
    done = time.perf_counter()
    for prompt, completion in zip(prompts, completions, strict=True):
        print(f"\n>>> {prompt}\n{prompt}{completion}", file=out)
    with_adapter = f" + adapter {label}" if label else ""
    print(
        f"\n[{config.model.source or config.model.preset}{with_adapter}: loaded in "
        f"{loaded - start:.1f}s, generated {len(prompts)} x {sampling.max_new_tokens} tokens in "
        f"{done - loaded:.1f}s (compilation included), on {jax.devices()[0].platform}]",
        file=out,
    )
    return completions


def main(argv):
    del argv
    generate_and_print(_CONFIG.value, _PROMPTS.value, adapter=_ADAPTER.value)


def cli() -> None:
    """The console script (`pathjax-generate`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
