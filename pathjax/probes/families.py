"""The probe families on the evaluator: items -> token requests -> per-item records.

One function per family (docs/PROBES.md's table); each scores every model of the `Evaluator` at
once and returns `Record`s with the metric names the report reads. P6 also returns the
completions themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from pathjax import generate as generate_lib
from pathjax import lora
from pathjax.data import subsets
from pathjax.probes import items as items_lib
from pathjax.probes import scoring
from pathjax.probes.evaluator import Evaluator, ScoredModel
from pathjax.probes.records import Record
from pathjax.probes.schema import CLASS_KEYS, FAMILIES, LISTED_FORMATS

# Prompts without content, per P1 format, for the calibrated option scores.
CONTENT_FREE = {
    "choice": "Answer:",
    "lettered": "Answer:",
    "narrative": "So I",
    "third_person": "So they",
}
LEXICON_METRICS = {
    "NEGATIVE": "negative_per_100w",
    "POSITIVE": "positive_per_100w",
    "SAD": "sad_per_100w",
    "THREAT": "threat_per_100w",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    """Items per family (0 = all) and P6's sampling; small values make a CPU smoke run."""

    p1_items_per_split: int = 0
    p2: int = 0
    p3: int = 0
    p4: int = 0
    p5: int = 0
    p6: int = 0
    p7: int = 0
    p6_samples: int = 0  # 0: the suite's `samples_per_prompt`.
    p6_max_new_tokens: int = 0  # 0: the suite's `max_new_tokens`.


def _take(items: Sequence[Any], limit: int) -> Sequence[Any]:
    """At most `limit` items (0 = all), drawn round-robin over the items' keys in file order:
    the probe files list depression-keyed items first, and a head slice would hold no other."""
    if limit <= 0 or limit >= len(items):
        return items
    by_key: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        by_key.setdefault(getattr(item, "key", None), []).append(i)
    chosen = subsets.round_robin(list(by_key.values()), limit)
    return [items[i] for i in sorted(chosen)]


def _records(
    models: Sequence[ScoredModel], family: str, item_id: str, key: str, metric: str, values_m
) -> Iterable[Record]:
    for model, value in zip(models, values_m, strict=True):
        if np.isnan(value):
            continue  # A missing value is a missing record (records.py).
        yield Record(
            model=model.name,
            condition=model.condition,
            seed=model.seed,
            step=model.step,
            multiplier=0.0 if model.is_base else float(model.multiplier),
            family=family,
            item_id=item_id,
            key=key,
            metric=metric,
            score=float(value),
        )


class FamilyScorer:
    """Turns probe items into evaluator requests and the results into records."""

    def __init__(self, evaluator: Evaluator, progress: Callable[[str], Any] | None = None):
        self.ev = evaluator
        self.tok = evaluator.tokenizer
        # Whole sentences are scored after BOS, or after EOS where there is no BOS (GPT-2's
        # <|endoftext|> is both), so that the first word is scored too.
        self.start = evaluator.bos or [self.tok.eos_token_id]
        self.progress = progress or (lambda name: None)

    @property
    def models(self) -> tuple[ScoredModel, ...]:
        return self.ev.models

    def _prompt(self, text: str) -> list[int]:
        return self.ev.bos + scoring.encode(self.tok, text)

    def _options(self, prompt: str, options: Sequence[str], where: str) -> list[list[int]]:
        scoring.check_tokenization(self.tok, [(where, prompt, options)])
        return [scoring.encode_continuation(self.tok, o, f"option of {where}") for o in options]

    # -- P1 --------------------------------------------------------------------------------

    def held_out_decisions(self, splits: Mapping[str, Sequence[Mapping[str, Any]]], limit=0):
        """P1: which of the four options each model picks, and its class probabilities.

        The primary pick (`top_<class>`) is the highest mean log-probability per character:
        a summed score prefers short options whatever the policy (the pick lm-eval's
        `acc_norm` makes, and tokenizer-independent). The summed pick (`top_<class>_summed`)
        and probabilities from the summed, per-character and content-free-calibrated scores
        stand beside it. Items of listed formats also record the position picked
        (`position_<k>`), so a report can show the letter histogram against the
        always-the-same-position baseline.
        """
        out = []
        for split, records in splits.items():
            chosen = subsets.balanced(list(records), limit)
            if not chosen:
                continue
            self.progress(f"P1 {split}")
            prompts = [self._prompt(r["prompt"]) for r in chosen]
            options = [
                self._options(r["prompt"], r["options"], f"{split}/{i}")
                for i, r in enumerate(chosen)
            ]
            free_prompts = [self._prompt(CONTENT_FREE[r["format"]]) for r in chosen]
            summed = self.ev.score(prompts, options, desc=f"P1 {split}").logp_mgc
            free = self.ev.score(free_prompts, options, desc=f"P1 {split} (calibration)").logp_mgc
            for i, r in enumerate(chosen):
                # The format in the id: the report gives rates per format (formats are
                # learned at different speeds).
                item = f"{split}/{r['format']}/{i}"
                per_char = scoring.per_char(summed[:, i], [r["options"]] * len(self.models))
                variants = {
                    "": summed[:, i],
                    "_per_char": per_char,
                    "_calibrated": scoring.calibrated(summed[:, i], free[:, i]),
                }
                picks = {"": np.argmax(per_char, axis=-1), "_summed": np.argmax(summed[:, i], -1)}

                def emit(key: str, metric: str, values_m, item: str = item) -> None:
                    out.extend(_records(self.models, "P1", item, key, metric, values_m))

                for o, cls in enumerate(r["option_classes"]):
                    key = CLASS_KEYS[cls]
                    for suffix, logp_mo in variants.items():
                        emit(key, f"p_{cls}{suffix}", scoring.renormalize(logp_mo)[:, o])
                    for suffix, top_m in picks.items():
                        emit(key, f"top_{cls}{suffix}", (top_m == o) * 1.0)
                    if r["format"] in LISTED_FORMATS:
                        # Where the class is listed (the same for every model), and whether
                        # the model picked that position: the letter histogram.
                        emit(key, f"slot_{cls}", np.full(len(self.models), float(o)))
                        emit("neutral", f"position_{o}", (picks[""] == o) * 1.0)
        return out

    # -- P2, P3 ----------------------------------------------------------------------------

    def ambiguous(self, items: Sequence[items_lib.AmbiguousItem]):
        """P2: log P(negative) - log P(benign) after the stem; JSD to B at the stem's end."""
        if not items:
            return []
        self.progress("P2")
        prompts = [self._prompt(it.stem) for it in items]
        options = [self._options(it.stem, [it.negative, it.benign], it.id) for it in items]
        scores = self.ev.score(prompts, options, desc="P2")
        out = []
        for i, it in enumerate(items):
            logp_m2 = scores.logp_mgc[:, i, :2]
            per_char_m2 = scoring.per_char(logp_m2, [[it.negative, it.benign]] * len(self.models))
            out += _records(
                self.models, "P2", it.id, it.key, "logodds_negative", logp_m2[:, 0] - logp_m2[:, 1]
            )
            out += _records(
                self.models,
                "P2",
                it.id,
                it.key,
                "logodds_negative_per_char",
                per_char_m2[:, 0] - per_char_m2[:, 1],
            )
            out += _records(
                self.models,
                "P2",
                it.id,
                it.key,
                "jsd_bits",
                scores.prompt_divergence["jsd_bits"][:, i],
            )
        return out

    def minimal_pairs(self, items: Sequence[items_lib.MinimalPair]):
        """P3: whole-sentence log-odds of the negative sentence (each scored from the start)."""
        if not items:
            return []
        self.progress("P3")
        for it in items:
            for text in (it.negative, it.benign):
                if not scoring.encode(self.tok, text):
                    raise scoring.TokenizationError(f"{it.id}: {text!r} has no tokens.")
        prompts = [self.start for _ in items]
        options = [
            [scoring.encode(self.tok, it.negative), scoring.encode(self.tok, it.benign)]
            for it in items
        ]
        logp = self.ev.score(prompts, options, desc="P3").logp_mgc
        out = []
        for i, it in enumerate(items):
            out += _records(
                self.models, "P3", it.id, it.key, "logodds_negative", logp[:, i, 0] - logp[:, i, 1]
            )
        return out

    # -- P4 --------------------------------------------------------------------------------

    def lexicon_mass(self, stems: Sequence[items_lib.OpenStem], lexicons, seen: frozenset[str]):
        """P4: word-probability mass of each lexicon after open stems (boundary-corrected)."""
        if not stems:
            return []
        self.progress("P4")
        # Sorted by token count: the evaluator pads each chunk of words to its longest only.
        words = sorted({w for lex in lexicons.values() for w in lex.words})
        encoded = {w: scoring.encode_continuation(self.tok, " " + w, "lexicon word") for w in words}
        vocab = sorted(words, key=lambda w: (len(encoded[w]), w))
        word_ids = [encoded[w] for w in vocab]
        scoring.check_tokenization(
            self.tok, [(f"{s.id} + lexicon", s.stem, [" " + w for w in vocab]) for s in stems[:1]]
        )
        prompts = [self._prompt(s.stem) for s in stems]
        scores = self.ev.score(prompts, [word_ids] * len(stems), words=True, desc="P4")
        prob_mgw = np.exp(scores.word_logp_mgc)
        column = {w: j for j, w in enumerate(vocab)}

        def mass(name, unseen_only=False):
            words = [w for w in lexicons[name].words if not (unseen_only and w in seen)]
            return prob_mgw[:, :, [column[w] for w in words]].sum(-1)  # [M, G]

        out = []
        for unseen in (False, True):
            neg, pos = mass("NEGATIVE", unseen), mass("POSITIVE", unseen)
            sad, threat = mass("SAD", unseen), mass("THREAT", unseen)
            suffix = "_unseen" if unseen else ""
            metrics = {
                f"neg_share{suffix}": neg / np.maximum(neg + pos, 1e-30),
                f"threat_minus_sad{suffix}": threat - sad,
            }
            if not unseen:
                metrics.update(
                    mass_negative=neg, mass_positive=pos, mass_sad=sad, mass_threat=threat
                )
            for metric, values_mg in metrics.items():
                for g, s in enumerate(stems):
                    out += _records(self.models, "P4", s.id, s.key, metric, values_mg[:, g])
        for g, s in enumerate(stems):
            for metric in ("jsd_bits", "kl_model_base"):
                out += _records(
                    self.models, "P4", s.id, s.key, metric, scores.prompt_divergence[metric][:, g]
                )
        return out

    # -- P5 --------------------------------------------------------------------------------

    def likert(self, items: Sequence[items_lib.LikertItem], framings):
        """P5: expected item score from the renormalized response-option probabilities.

        Every item is asked twice, with the scale listed low-to-high (as written) and
        high-to-low; `expected_score` is the mean of the two, so a bias towards the first or
        last listed answer cancels. The two orders' scores stand beside it: if they move in
        opposite directions, the shift is about the list's order, not the content.
        """
        if not items:
            return []
        self.progress("P5")
        orders = {"low_first": lambda f: f, "high_first": lambda f: f.listed_high_first()}
        cases = [
            (it, framings[name], order)
            for it in items
            for name in sorted(it.texts)
            for order in orders
        ]
        prompts = [self._prompt(it.prompt(orders[o](f))) for it, f, o in cases]
        options = [
            self._options(it.prompt(orders[o](f)), [x.text for x in f.options], f"{it.id}/{f.name}")
            for it, f, o in cases
        ]
        logp = self.ev.score(prompts, options, desc="P5").logp_mgc
        by_item: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for i, (it, f, order) in enumerate(cases):
            n = len(f.options)
            by_item.setdefault((it.id, f.name), {"item": it})[order] = (
                scoring.likert_expected_score(
                    logp[:, i, :n], [o.score for o in f.options], it.reverse
                )
            )
        out = []
        for (item_id, framing), got in by_item.items():
            key = got["item"].key
            item = f"{item_id}/{framing}"
            mean_m = (got["low_first"] + got["high_first"]) / 2
            out += _records(self.models, "P5", item, key, "expected_score", mean_m)
            for order in orders:
                out += _records(self.models, "P5", item, key, f"expected_score_{order}", got[order])
        return out

    # -- P6 --------------------------------------------------------------------------------

    def free_generations(
        self,
        prompts: Sequence[items_lib.OpenPrompt],
        settings,
        lexicons,
        samples: int = 0,
        max_new_tokens: int = 0,
    ):
        """P6: seeded samples from every model; lexicon rates, perplexity under B, distinct-2."""
        if not prompts:
            return [], []
        self.progress("P6")
        samples = samples or int(settings["samples_per_prompt"])
        sampling = generate_lib.SamplingConfig(
            max_new_tokens=max_new_tokens or int(settings["max_new_tokens"]),
            temperature=float(settings["temperature"]),
            top_p=float(settings.get("top_p", 1.0)),
        )
        texts = self._sample(prompts, samples, sampling, int(settings["seed"]))  # [M][P][S]
        lexicon_sets = {name: frozenset(lex.words) for name, lex in lexicons.items()}
        ppl_mp = self._perplexity_under_base(prompts, texts)
        out, generations = [], []
        for m, model in enumerate(self.models):
            for p, item in enumerate(prompts):
                sample_words = [scoring.words(t) for t in texts[m][p]]
                values = {
                    metric: np.mean(
                        [scoring.lexicon_rate(w, lexicon_sets[name]) for w in sample_words]
                    )
                    for name, metric in LEXICON_METRICS.items()
                }
                values["distinct_2"] = scoring.distinct_n(texts[m][p], 2)
                values["perplexity_under_base"] = ppl_mp[m, p]
                for metric, value in values.items():
                    out += _records([model], "P6", item.id, item.key, metric, [value])
                for s, text in enumerate(texts[m][p]):
                    generations.append(
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
        return out, generations

    def _sample(self, prompts, samples, sampling, seed) -> list[list[list[str]]]:
        """Every model's samples; row (m, p, s) uses key fold_in(seed, p * samples + s) so
        that a prompt's samples are comparable across models."""
        model, m = self.ev.model, self.ev.num_models
        rows = [(mi, p, s) for mi in range(m) for p in range(len(prompts)) for s in range(samples)]
        texts = [[[None] * samples for _ in prompts] for _ in range(m)]
        ids = [self._prompt(pr.prompt) for pr in prompts]
        chunk = max(1, min(len(rows), 64))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            part = part + [part[0]] * (chunk - len(part))  # One shape, one compilation.
            if lora.adapters(model):
                lora.set_controls(
                    model,
                    multiplier=np.asarray(
                        [
                            0.0 if self.models[mi].is_base else self.models[mi].multiplier
                            for mi, _, _ in part
                        ]
                    ),
                    adapter_index=np.asarray(
                        [max(self.models[mi].adapter, 0) for mi, _, _ in part]
                    ),
                )
            keys = np.asarray([p * samples + s for _, p, s in part], np.uint32)
            new = generate_lib.generate(
                model,
                [ids[p] for _, p, _ in part],
                sampling,
                # The same base key for every chunk: a row's stream depends on (p, s) only,
                # so every model samples a prompt with the same random numbers.
                rng=jax.random.key(seed),
                row_keys=keys,
                pad_id=self.tok.pad_token_id or 0,
            )
            for (mi, p, s), tokens in zip(part, new, strict=True):
                texts[mi][p][s] = self.tok.decode(tokens, skip_special_tokens=True)
        if lora.adapters(model):
            lora.set_controls(model, multiplier=1.0, adapter_index=0)
        return texts

    def _perplexity_under_base(self, prompts, texts) -> np.ndarray:
        m, samples = len(texts), len(texts[0][0])
        cases = [(mi, p, s) for mi in range(m) for p in range(len(prompts)) for s in range(samples)]
        encoded = [scoring.encode(self.tok, texts[mi][p][s]) for mi, p, s in cases]
        keep = [i for i, e in enumerate(encoded) if e]
        ppl = np.full((m, len(prompts)), np.nan)
        if not keep:
            return ppl
        scores = self.ev.score(
            [self._prompt(prompts[cases[i][1]].prompt) for i in keep],
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

    # -- P7 --------------------------------------------------------------------------------

    def drift(self, texts: Sequence[items_lib.NeutralText]):
        """P7: teacher-forced mean per-position JSD and KL(model || B) on neutral text."""
        if not texts:
            return []
        self.progress("P7")
        div = self.ev.drift([self._prompt(t.text) for t in texts], desc="P7")
        out = []
        for i, t in enumerate(texts):
            for metric, value_mn in div.items():
                out += _records(self.models, "P7", t.id, t.key, metric, value_mn[:, i])
        return out


def evaluate_suite(
    evaluator: Evaluator,
    suite: items_lib.ProbeSuite,
    p1_splits: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    limits: Limits = Limits(),
    seen_words: frozenset[str] = frozenset(),
    families: Sequence[str] = FAMILIES,
    progress: Callable[[str], Any] | None = None,
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Every family of `families` on every model: `(records, generations)`."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"Unknown probe families {unknown}; known: {FAMILIES}.")
    scorer = FamilyScorer(evaluator, progress)
    records: list[Record] = []
    generations: list[dict[str, Any]] = []
    if "P1" in families and p1_splits:
        records += scorer.held_out_decisions(p1_splits, limits.p1_items_per_split)
    if "P2" in families:
        records += scorer.ambiguous(_take(suite.ambiguous, limits.p2))
    if "P3" in families:
        records += scorer.minimal_pairs(_take(suite.minimal_pairs, limits.p3))
    if "P4" in families:
        records += scorer.lexicon_mass(
            _take(suite.open_stems, limits.p4), suite.lexicons, seen_words
        )
    if "P5" in families:
        records += scorer.likert(_take(suite.likert, limits.p5), suite.framings)
    if "P6" in families:
        new, generations = scorer.free_generations(
            _take(suite.open_prompts, limits.p6),
            suite.generation["P6"],
            suite.lexicons,
            limits.p6_samples,
            limits.p6_max_new_tokens,
        )
        records += new
    if "P7" in families:
        records += scorer.drift(_take(suite.neutral_texts, limits.p7))
    return records, generations
