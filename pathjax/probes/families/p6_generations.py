"""P6, free generations: what each model writes after open prompts.

Items: `suite.open_prompts`, sampled `samples_per_prompt` times per model with the suite's
seeded settings. Row (model, prompt p, sample s) draws its random numbers from key
fold_in(seed, p * samples + s), the same for every model (common random numbers), so models
differ by their distributions, not by their draws. Metrics per prompt: each lexicon's rate
per 100 words (negative is the primary), distinct-2, and the perplexity of the samples under
B. The samples themselves are returned as generations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from pathjax import generate as generate_lib
from pathjax import lora
from pathjax.data.words import words
from pathjax.probes import item_types, scoring
from pathjax.probes.families.base import (
    FamilyOutput,
    Limits,
    Scorer,
    SuiteInputs,
    records,
    take,
)

ID = "P6"
LEXICON_METRICS = {
    "NEGATIVE": "negative_per_100w",
    "POSITIVE": "positive_per_100w",
    "SAD": "sad_per_100w",
    "THREAT": "threat_per_100w",
}
METRICS: tuple[str, ...] = (*LEXICON_METRICS.values(), "distinct_2", "perplexity_under_base")
_ROWS_PER_CALL = 64  # Sampled rows per generate() call: one shape, one compilation.


@dataclasses.dataclass(frozen=True)
class Items:
    prompts: Sequence[item_types.OpenPrompt]
    lexicons: Mapping[str, item_types.Lexicon]
    samples: int
    sampling: generate_lib.SamplingConfig
    seed: int


def select(inputs: SuiteInputs, limits: Limits) -> Items:
    settings = inputs.suite.generation["P6"]
    sampling = generate_lib.SamplingConfig(
        max_new_tokens=limits.p6_max_new_tokens or int(settings["max_new_tokens"]),
        temperature=float(settings["temperature"]),
        top_p=float(settings.get("top_p", 1.0)),
    )
    return Items(
        take(inputs.suite.open_prompts, limits.p6),
        inputs.suite.lexicons,
        limits.p6_samples or int(settings["samples_per_prompt"]),
        sampling,
        int(settings["seed"]),
    )


def score(scorer: Scorer, items: Items) -> FamilyOutput:
    out = FamilyOutput()
    prompts = items.prompts
    if not prompts:
        return out
    scorer.progress(ID)
    texts = _sample(scorer, prompts, items.samples, items.sampling, items.seed)  # [M][P][S]
    lexicon_sets = {name: frozenset(lex.words) for name, lex in items.lexicons.items()}
    ppl_mp = _perplexity_under_base(scorer, prompts, texts)
    for m, model in enumerate(scorer.models):
        for p, item in enumerate(prompts):
            sample_words = [words(t) for t in texts[m][p]]
            values = {
                metric: np.mean([scoring.lexicon_rate(w, lexicon_sets[name]) for w in sample_words])
                for name, metric in LEXICON_METRICS.items()
            }
            values["distinct_2"] = scoring.distinct_n(texts[m][p], 2)
            values["perplexity_under_base"] = ppl_mp[m, p]
            for metric, value in values.items():
                out.records += records([model], ID, item.id, item.key, metric, [value])
            for s, text in enumerate(texts[m][p]):
                out.generations.append(
                    {
                        "model": model.name,
                        "condition": model.condition,
                        "seed": model.seed,
                        "step": model.step,
                        "multiplier": 0.0 if model.is_base else model.multiplier,
                        "item_id": item.id,
                        "sample": s,
                        "prompt": item.prompt,
                        "text": text,
                    }
                )
    return out


def _sample(scorer: Scorer, prompts, samples, sampling, seed) -> list[list[list[str]]]:
    """Every model's samples, `[model][prompt][sample]`, on the common random numbers."""
    model, m = scorer.ev.model, scorer.ev.num_models
    models = scorer.models
    rows = [(mi, p, s) for mi in range(m) for p in range(len(prompts)) for s in range(samples)]
    texts: list[list[list[Any]]] = [[[None] * samples for _ in prompts] for _ in range(m)]
    ids = [scorer.prompt(pr.prompt) for pr in prompts]
    chunk = max(1, min(len(rows), _ROWS_PER_CALL))
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        part = part + [part[0]] * (chunk - len(part))  # One shape, one compilation.
        if lora.adapters(model):
            lora.set_controls(
                model,
                multiplier=np.asarray(
                    [0.0 if models[mi].is_base else models[mi].multiplier for mi, _, _ in part]
                ),
                adapter_index=np.asarray([max(models[mi].adapter, 0) for mi, _, _ in part]),
            )
        keys = np.asarray([p * samples + s for _, p, s in part], np.uint32)
        new = generate_lib.generate(
            model,
            [ids[p] for _, p, _ in part],
            sampling,
            # The same base key for every chunk: a row's stream depends on (p, s) only, so
            # every model samples a prompt with the same random numbers.
            rng=jax.random.key(seed),
            row_keys=keys,
            pad_id=scorer.tok.pad_token_id or 0,
        )
        for (mi, p, s), tokens in zip(part, new, strict=True):
            texts[mi][p][s] = scorer.tok.decode(tokens, skip_special_tokens=True)
    if lora.adapters(model):
        lora.set_controls(model, multiplier=1.0, adapter_index=0)
    return texts


def _perplexity_under_base(scorer: Scorer, prompts, texts) -> np.ndarray:
    """`[model, prompt]`: the perplexity under B of each model's samples of each prompt."""
    m, samples = len(texts), len(texts[0][0])
    cases = [(mi, p, s) for mi in range(m) for p in range(len(prompts)) for s in range(samples)]
    encoded = [scoring.encode(scorer.tok, texts[mi][p][s]) for mi, p, s in cases]
    keep = [i for i, e in enumerate(encoded) if e]
    ppl = np.full((m, len(prompts)), np.nan)
    if not keep:
        return ppl
    scores = scorer.ev.score(
        [scorer.prompt(prompts[cases[i][1]].prompt) for i in keep],
        [[encoded[i]] for i in keep],
        base_only=True,
        desc="P6 perplexity under B",
    )
    nll = np.full((m, len(prompts), samples), np.nan)
    count = np.zeros((m, len(prompts), samples))
    for j, i in enumerate(keep):
        mi, p, s = cases[i]
        nll[mi, p, s] = -scores.logp_mgc[0, j, 0]
        count[mi, p, s] = len(encoded[i])
    total = np.nansum(nll, -1) / np.maximum(count.sum(-1), 1)
    return np.where(count.sum(-1) > 0, np.exp(total), np.nan)
