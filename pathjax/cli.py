"""What the launchers run, importable and testable; `launch/*.py` only parse flags."""

from __future__ import annotations

import sys
import time

import jax

from pathjax import generate
from pathjax.models import from_config


def generate_and_print(config, prompts=None, out=sys.stdout) -> list[str]:
    start = time.perf_counter()
    model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
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
    print(
        f"\n[{config.model.source}: loaded in {loaded - start:.1f}s, generated "
        f"{len(prompts)} x {sampling.max_new_tokens} tokens in {done - loaded:.1f}s "
        f"(compilation included), on {jax.devices()[0].platform}]",
        file=out,
    )
    return completions
