"""Probe-evaluator throughput: the stacked `Evaluator` against a plain transformers + PEFT loop.

The workload is the probe suite's own text: `num_prompts` P2 items (a stem and its two
continuations, negative and benign) are scored, and `num_prompts` P7 neutral texts are run
teacher-forced for drift. Four models are scored: the base model and three LoRA adapters
(rank 8 by default, PEFT's default targets for Llama, q_proj and v_proj; random nonzero B, so
every adapter moves the distributions). By default the weights are the real embedded checkpoint
(`pathjax.load_model("smollm2-135m")`); `random_weights=True` initializes the preset's
architecture instead (tests). Both sides read the same weights: the base model is exported to
an HF folder (`export_hf`) and each adapter to a PEFT folder (`export_peft`); pathjax loads them
with `load_hf_folder` + `evaluator.weights_from_peft`, transformers with `from_pretrained` +
`peft.PeftModel` / `load_adapter`, the base model under `disable_adapter()`.

Two parts are timed separately:
  score: summed log-probability of every continuation under every model, plus the JSD and
    KL(model || base) of the next-token distribution at the end of each stem (what P2 reads).
    pathjax: `Evaluator.score`, one prefill of the stem per model into a KV cache, then the
    continuations from the cache, the four models stacked in one jitted pass per batch.
    transformers: for each model in turn, batched forward passes over stem + continuation
    (one row per continuation, right-padded), fp32 log-softmax, summed continuation log-probs.
  drift: per-position full-vocabulary JSD (bits) and KL(model || base) (nats) of each adapter
    against the base model, averaged over each text's positions (what P7 reads).
    pathjax: `Evaluator.drift`. transformers: per batch, the base model's log-probs, then each
    adapter's, and the divergences in torch, fp32.

Batch: `batch` prompts (score) or texts (drift) per forward pass on both sides. The evaluator's
pass holds `batch` rows per model, all four models at once; the transformers loop runs each
model on its own (`2 * batch` rows per pass in score: one per continuation).

Positions, the unit of positions/s, are scored token positions summed over the four models:
  score: continuation tokens (each token whose log-probability enters a sum), per model;
  drift: text tokens (each position whose next-token distribution enters the mean), per model.
Both sides score the same positions, so the positions/s ratio equals the prompts/s ratio
(the padding each side adds is its own cost and is not counted).

Before anything is timed, the outputs of each side's first call are compared (for pathjax that
call includes compilation: `first_call_s`, and `compile_s` = first call - median): the summed
log-probs and divergences must agree within `TOLERANCES` of the precision, or `run` raises
`DisagreementError` (a speed comparison of two computations that differ would mean nothing).
Times are medians of `repeats` calls after that, the two sides interleaved call by call so that
load from other processes hits both alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pathjax import lora, peft_format
from pathjax.bench import forward
from pathjax.data import pipeline
from pathjax.models import checkpoints, embedded, presets, registry, tokenizers
from pathjax.probes import evaluator as evaluator_lib
from pathjax.probes import items as items_lib
from pathjax.probes import scoring

PATHJAX = "pathjax"
REFERENCE = "transformers+peft"
PARTS = ("score", "drift")
NUM_ADAPTERS = 3
# Max |pathjax - transformers| over every model and item. float32: the two sides run the same
# math in another order (SmolLM2-135M, 32 items: logp 9e-5, divergences 2e-6 at most). bfloat16:
# each side rounds activations at other points (and PEFT keeps its adapters float32 where pathjax
# casts them to the compute dtype): on SmolLM2-135M each side's summed logp lies up to ~0.3 nats
# from the float32 value and the sides up to 0.45 apart, so only a loose check is possible.
TOLERANCES = {
    "float32": {"logp": 1e-3, "jsd_bits": 1e-4, "kl_model_base": 1e-4},
    "bfloat16": {"logp": 1.0, "jsd_bits": 0.03, "kl_model_base": 0.1},
}


class DisagreementError(AssertionError):
    """The two sides computed different scores: their timings would not be comparable."""


@dataclasses.dataclass
class Workload:
    """Token ids, BOS included where the tokenizer adds one (as `FamilyScorer` builds them)."""

    prompts: list[list[int]]  # P2 stems.
    continuations: list[list[list[int]]]  # [negative, benign] per stem.
    texts: list[list[int]]  # P7 neutral texts.

    def positions(self, part: str, num_models: int) -> int:
        if part == "score":
            return num_models * sum(len(t) for c in self.continuations for t in c)
        return num_models * sum(len(t) for t in self.texts)

    def items(self, part: str) -> int:
        return len(self.prompts) if part == "score" else len(self.texts)

    def describe(self) -> dict[str, Any]:
        conts = [len(t) for c in self.continuations for t in c]
        return {
            "prompts": len(self.prompts),
            "continuations_per_prompt": len(self.continuations[0]),
            "mean_prompt_tokens": float(np.mean([len(p) for p in self.prompts])),
            "mean_continuation_tokens": float(np.mean(conts)),
            "texts": len(self.texts),
            "mean_text_tokens": float(np.mean([len(t) for t in self.texts])),
        }


def make_workload(tokenizer, num_prompts: int, add_bos: bool) -> Workload:
    """The first `num_prompts` P2 items and P7 texts of the packaged probe suite."""
    suite = items_lib.load_suite()
    if num_prompts > min(len(suite.ambiguous), len(suite.neutral_texts)):
        raise ValueError(
            f"num_prompts={num_prompts}: the suite has {len(suite.ambiguous)} P2 items and "
            f"{len(suite.neutral_texts)} P7 texts."
        )
    bos = [tokenizer.bos_token_id] if add_bos else []
    chosen = suite.ambiguous[:num_prompts]
    prompts = [bos + scoring.encode(tokenizer, it.stem) for it in chosen]
    continuations = [
        [scoring.encode_continuation(tokenizer, o) for o in (it.negative, it.benign)]
        for it in chosen
    ]
    texts = [bos + scoring.encode(tokenizer, t.text) for t in suite.neutral_texts[:num_prompts]]
    return Workload(prompts, continuations, texts)


# ---------------------------------------------------------------------------------------------
# Weights: one HF folder and three PEFT folders that both sides read.


def export_weights(
    model: nnx.Module,
    folder: str,
    lora_config: lora.LoraConfig,
    b_std: float,
    seed: int = 0,
) -> tuple[str, list[str]]:
    """Writes `folder/base` (HF) and `folder/adapter<k>` (PEFT); returns their paths.

    A stays at its PEFT-style random init; B is `N(0, b_std)`, nonzero so each adapter matters.
    """
    base = checkpoints.export_hf(model, os.path.join(folder, "base"))
    carrier = checkpoints.load_hf_folder(base)  # A copy to hang the adapters on.
    lora.add_lora(carrier, lora_config, rngs=nnx.Rngs(seed))
    paths = []
    for k in range(NUM_ADAPTERS):
        key = jax.random.key(seed * 1000 + k)
        for _, adapter in lora.adapters(carrier):
            key_a, key_b, key = jax.random.split(key, 3)
            bound = 1.0 / math.sqrt(adapter.lora_a.shape[0])
            adapter.lora_a[...] = jax.random.uniform(
                key_a, adapter.lora_a.shape, jnp.float32, -bound, bound
            )
            adapter.lora_b[...] = b_std * jax.random.normal(key_b, adapter.lora_b.shape)
        paths.append(
            peft_format.export_peft(carrier, lora_config, os.path.join(folder, f"adapter{k}"))
        )
    return base, paths


def adapter_names() -> list[str]:
    return [f"adapter{k}" for k in range(NUM_ADAPTERS)]


# ---------------------------------------------------------------------------------------------
# pathjax: the stacked evaluator.


class PathjaxSide:
    def __init__(self, base: str, peft_folders: Sequence[str], tokenizer, dtype: str, add_bos):
        model = checkpoints.load_hf_folder(base, dtype=jnp.dtype(dtype))
        weights = [evaluator_lib.weights_from_peft(f, model) for f in peft_folders]
        models = [evaluator_lib.ScoredModel(evaluator_lib.BASE)] + [
            evaluator_lib.ScoredModel(name, multiplier=1.0, adapter=k)
            for k, name in enumerate(adapter_names())
        ]
        self.ev = evaluator_lib.Evaluator(model, tokenizer, weights, models, add_bos=add_bos)
        self.vocab_size = model.config.vocab_size

    def _budget(self, rows_per_model: int, width: int) -> int:
        # The evaluator sizes its batches from a logits budget; this one gives `rows_per_model`.
        return rows_per_model * self.ev.num_models * width * self.vocab_size

    def score(self, work: Workload, batch: int) -> dict[str, np.ndarray]:
        most = max(len(c) for c in work.continuations)
        longest = max(len(t) for c in work.continuations for t in c)
        # The evaluator's sizing: rows = budget // (M * width * V), then `rows // most` prompts
        # per group (at most 16). tests/bench checks that the groups come out `batch` wide.
        width = evaluator_lib._continuation_bucket(longest)
        self.ev.max_logits = self._budget(batch * most, width)
        out = self.ev.score(work.prompts, work.continuations)
        return {
            "logp": out.logp_mgc,
            "prompt_jsd_bits": out.prompt_divergence["jsd_bits"],
            "prompt_kl_model_base": out.prompt_divergence["kl_model_base"],
        }

    def drift(self, work: Workload, batch: int) -> dict[str, np.ndarray]:
        width = evaluator_lib._bucket(max(len(t) for t in work.texts))
        self.ev.max_logits = self._budget(batch, width)
        out = self.ev.drift(work.texts)
        return {"drift_jsd_bits": out["jsd_bits"], "drift_kl_model_base": out["kl_model_base"]}


# ---------------------------------------------------------------------------------------------
# transformers + PEFT: the plain loop, one model at a time.


def _divergences_torch(logp_model, logp_base):
    """Full-vocabulary JSD (bits) and KL(model || base) (nats) over the last axis, fp32."""
    import torch

    p, q = logp_model.exp(), logp_base.exp()
    logm = torch.logaddexp(logp_model, logp_base) - math.log(2.0)
    jsd = 0.5 * (p * (logp_model - logm)).sum(-1) + 0.5 * (q * (logp_base - logm)).sum(-1)
    kl = (p * (logp_model - logp_base)).sum(-1)
    return jsd / math.log(2.0), kl


def _right_padded(rows: Sequence[Sequence[int]]):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


class ReferenceSide:
    def __init__(self, base: str, peft_folders: Sequence[str], dtype: str, threads: int):
        import peft
        import torch
        import transformers

        torch.set_num_threads(threads)
        model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
        names = adapter_names()
        model = peft.PeftModel.from_pretrained(model, peft_folders[0], adapter_name=names[0])
        for name, folder in zip(names[1:], peft_folders[1:], strict=True):
            model.load_adapter(folder, adapter_name=name)
        model.eval()
        self.model, self.names = model, names
        self.precision = {
            "base": str(model.get_base_model().model.embed_tokens.weight.dtype),
            "adapters": str(next(p for n, p in model.named_parameters() if "lora_" in n).dtype),
        }

    @property
    def num_models(self) -> int:
        return 1 + len(self.names)

    def _as_model(self, m: int):
        """Model m: 0 is the base model (adapters disabled), k > 0 is adapter k - 1."""
        if m == 0:
            return self.model.disable_adapter()
        self.model.set_adapter(self.names[m - 1])
        return contextlib.nullcontext()

    def _log_probs(self, rows):
        import torch

        ids, mask = _right_padded(rows)
        logits = self.model(input_ids=ids, attention_mask=mask).logits
        return torch.log_softmax(logits.float(), dim=-1), mask

    def score(self, work: Workload, batch: int) -> dict[str, np.ndarray]:
        import torch

        n, m_all = len(work.prompts), self.num_models
        most = max(len(c) for c in work.continuations)
        logp = np.full((m_all, n, most), np.nan)
        jsd, kl = np.zeros((m_all, n)), np.zeros((m_all, n))
        base_last = {}  # Prompt index -> the base model's log-probs after the stem.
        with torch.inference_mode():
            for m in range(m_all):
                with self._as_model(m):
                    for start in range(0, n, batch):
                        pairs = [
                            (i, c)
                            for i in range(start, min(n, start + batch))
                            for c in range(len(work.continuations[i]))
                        ]
                        rows = [work.prompts[i] + work.continuations[i][c] for i, c in pairs]
                        logp_blv, _ = self._log_probs(rows)
                        for r, (i, c) in enumerate(pairs):
                            p, cont = len(work.prompts[i]), work.continuations[i][c]
                            target = torch.tensor(cont)[:, None]
                            token_l = logp_blv[r, p - 1 : p - 1 + len(cont)].gather(-1, target)
                            logp[m, i, c] = float(token_l.sum())
                            if c:
                                continue
                            last_v = logp_blv[r, p - 1]
                            if m == 0:
                                base_last[i] = last_v.clone()
                            j, k = _divergences_torch(last_v, base_last[i])
                            jsd[m, i], kl[m, i] = float(j), float(k)
        return {"logp": logp, "prompt_jsd_bits": jsd, "prompt_kl_model_base": kl}

    def drift(self, work: Workload, batch: int) -> dict[str, np.ndarray]:
        import torch

        n, m_all = len(work.texts), self.num_models
        jsd, kl = np.zeros((m_all, n)), np.zeros((m_all, n))
        with torch.inference_mode():
            for start in range(0, n, batch):
                rows = work.texts[start : start + batch]
                with self._as_model(0):
                    base_blv, mask = self._log_probs(rows)
                weight = mask.float()
                for m in range(m_all):
                    if m:
                        with self._as_model(m):
                            logp_blv, _ = self._log_probs(rows)
                    else:
                        logp_blv = base_blv
                    j, k = _divergences_torch(logp_blv, base_blv)
                    count = weight.sum(-1)
                    jsd[m, start : start + len(rows)] = ((j * weight).sum(-1) / count).numpy()
                    kl[m, start : start + len(rows)] = ((k * weight).sum(-1) / count).numpy()
        return {"drift_jsd_bits": jsd, "drift_kl_model_base": kl}


# ---------------------------------------------------------------------------------------------
# Agreement, timing, report.


def compare(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, float]:
    """Max |difference| per output (NaN padding must coincide)."""
    out = {}
    for name, value in ours.items():
        other = theirs[name]
        if not np.array_equal(np.isnan(value), np.isnan(other)):
            out[name] = float("inf")
        else:
            out[name] = float(np.nanmax(np.abs(value - other)))
    return out


def _tolerance(name: str, dtype: str) -> float:
    table = TOLERANCES[dtype]
    return table["logp"] if name == "logp" else table[name.split("_", 1)[1]]


@dataclasses.dataclass
class EvalMeasurement:
    side: str
    dtype: str
    part: str  # "score" or "drift".
    batch: int  # Prompts (texts) per pass.
    prompts: int  # Prompts (score) or texts (drift) per call.
    positions: int  # Scored positions per call, summed over the models (module docstring).
    first_call_s: float  # pathjax: includes compilation.
    compile_s: float | None  # pathjax: first call minus the median (None for transformers).
    median_s: float
    min_s: float
    prompts_per_s: float
    positions_per_s: float


def _measurement(side, dtype, part, batch, work, num_models, first, times) -> EvalMeasurement:
    median = statistics.median(times)
    return EvalMeasurement(
        side=side,
        dtype=dtype,
        part=part,
        batch=batch,
        prompts=work.items(part),
        positions=work.positions(part, num_models),
        first_call_s=first,
        compile_s=max(first - median, 0.0) if side == PATHJAX else None,
        median_s=median,
        min_s=min(times),
        prompts_per_s=work.items(part) / median,
        positions_per_s=work.positions(part, num_models) / median,
    )


def _timed(fn) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _load(preset: str, random_weights: bool, tokenizer_source: str, seed: int):
    """`(model, tokenizer, origin)`: the embedded checkpoint or a random preset model."""
    if random_weights:
        config = presets.preset_config(preset)
        model = registry.init_model(config, seed=seed)
        tokenizer = tokenizers.load_tokenizer(tokenizer_source)
        tokenizers.check_fits(tokenizer, config.vocab_size, origin=f"preset {preset}")
        return model, tokenizer, f"preset {preset}, random weights (seed {seed})"
    if not embedded.is_embedded(preset):
        raise ValueError(
            f"{preset!r} has no embedded checkpoint ({', '.join(sorted(embedded.EMBEDDED))}); "
            "use random_weights=True for a preset architecture."
        )
    from pathjax.models import load_model

    model, tokenizer = load_model(preset)
    return model, tokenizer, f"embedded {preset} ({embedded.embedded_path(preset)})"


def run(
    preset: str = "smollm2-135m",
    num_prompts: int = 32,
    batch: int = 8,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    rank: int = 8,
    targets: str | tuple[str, ...] = "default",
    b_std: float = 0.05,
    repeats: int = 3,
    random_weights: bool = False,
    tokenizer: str = "smollm2-135m",
    with_reference: bool = True,
    torch_threads: int = 0,
    seed: int = 0,
    work_dir: str | None = None,
) -> dict:
    """Measures both sides in each precision; the report is JSON-ready.

    `preset` names the architecture: its embedded checkpoint, or random weights with
    `random_weights=True` (and `tokenizer` for the text). `with_reference=False` times pathjax
    alone (no agreement check then). `torch_threads`: torch's intra-op threads (0: one per
    CPU, as the other benchmarks). On a machine that other processes load, torch's OpenMP pool
    can run several times slower with every CPU than with one: pick the faster.
    """
    torch_threads = torch_threads or os.cpu_count() or 1
    if batch > 16:
        raise ValueError("batch > 16: the evaluator scores at most 16 prompts per pass.")
    load_start = os.getloadavg()
    model, tok, origin = _load(preset, random_weights, tokenizer, seed)
    add_bos = pipeline.adds_bos(tok)
    work = make_workload(tok, num_prompts, add_bos)
    lora_config = lora.LoraConfig(rank=rank, alpha=2.0 * rank, targets=targets)
    num_models = 1 + NUM_ADAPTERS
    results, agreement, precision, adapter_effect = [], {}, {}, {}
    with contextlib.ExitStack() as stack:
        folder = work_dir or stack.enter_context(tempfile.TemporaryDirectory())
        base, peft_folders = export_weights(model, folder, lora_config, b_std, seed)
        del model
        for dtype in dtypes:
            ours = PathjaxSide(base, peft_folders, tok, dtype, add_bos)
            sides = {PATHJAX: ours}
            if with_reference:
                sides[REFERENCE] = ReferenceSide(base, peft_folders, dtype, torch_threads)
                precision[dtype] = sides[REFERENCE].precision
            # First calls: compilation (pathjax) and warm-up, and the outputs to compare.
            first, outputs = {}, {}
            for name, side in sides.items():
                outputs[name] = {}
                for part in PARTS:
                    value, first[name, part] = _timed(
                        lambda s=side, p=part: getattr(s, p)(work, batch)
                    )
                    outputs[name].update(value)
            drift_jsd = outputs[PATHJAX]["drift_jsd_bits"]
            adapter_effect[dtype] = {
                "mean_drift_jsd_bits": [float(v) for v in drift_jsd[1:].mean(-1)],
            }
            if with_reference:
                diffs = compare(outputs[PATHJAX], outputs[REFERENCE])
                tol = {name: _tolerance(name, dtype) for name in diffs}
                ok = all(diffs[name] <= tol[name] for name in diffs)
                agreement[dtype] = {"max_abs_diff": diffs, "tolerance": tol, "ok": ok}
                if not ok:
                    raise DisagreementError(
                        f"{dtype}: pathjax and {REFERENCE} disagree: {agreement[dtype]}"
                    )
            times = {(name, part): [] for name in sides for part in PARTS}
            for _ in range(repeats):
                for part in PARTS:
                    for name, side in sides.items():
                        _, elapsed = _timed(lambda s=side, p=part: getattr(s, p)(work, batch))
                        times[name, part].append(elapsed)
            for (name, part), values in times.items():
                results.append(
                    _measurement(
                        name, dtype, part, batch, work, num_models, first[name, part], values
                    )
                )
            del sides, ours
            jax.clear_caches()

    def find(side, dtype, part):
        return next((r for r in results if (r.side, r.dtype, r.part) == (side, dtype, part)), None)

    ratios = {}
    for dtype in dtypes:
        for part in PARTS:
            a, b = find(PATHJAX, dtype, part), find(REFERENCE, dtype, part)
            if a and b:
                ratios.setdefault(dtype, {})[part] = a.prompts_per_s / b.prompts_per_s
        a = [find(PATHJAX, dtype, p) for p in PARTS]
        b = [find(REFERENCE, dtype, p) for p in PARTS]
        if all(a) and all(b):
            ratios[dtype]["total"] = sum(r.median_s for r in b) / sum(r.median_s for r in a)

    machine = forward.machine_info()
    machine["load_average_start"] = list(load_start)
    machine["load_average_end"] = list(os.getloadavg())
    return {
        "workload": "evaluate",
        "preset": preset,
        "weights": origin,
        "models": [evaluator_lib.BASE, *adapter_names()],
        "lora": {**dataclasses.asdict(lora_config), "b_std": b_std},
        "batch": batch,
        "repeats": repeats,
        "data": work.describe(),
        "positions": {part: work.positions(part, num_models) for part in PARTS},
        "results": [dataclasses.asdict(r) for r in results],
        "speedup_vs_reference": ratios,
        "agreement": agreement,
        "adapter_effect": adapter_effect,
        "reference_precision": precision,
        "torch_threads": torch_threads,
        "machine": machine,
    }


def format_table(report: dict) -> str:
    data, lora_config = report["data"], report["lora"]
    lines = [
        f"Probe evaluator, {report['weights']}: base + {len(report['models']) - 1} adapters "
        f"(rank {lora_config['rank']}, targets {lora_config['targets']!r}), "
        f"{data['prompts']} P2 stems x {data['continuations_per_prompt']} continuations "
        f"(mean {data['mean_prompt_tokens']:.1f} + {data['mean_continuation_tokens']:.1f} "
        f"tokens), {data['texts']} P7 texts (mean {data['mean_text_tokens']:.1f} tokens), "
        f"batch {report['batch']}",
        "| side | dtype | part | prompts | positions | first call s | compile s | median s "
        "| prompts/s | positions/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        lines.append(
            f"| {r['side']} | {r['dtype']} | {r['part']} | {r['prompts']} | {r['positions']} "
            f"| {r['first_call_s']:.2f} | {compile_s} | {r['median_s']:.3f} "
            f"| {r['prompts_per_s']:.1f} | {r['positions_per_s']:.0f} |"
        )
    for dtype, parts in report["speedup_vs_reference"].items():
        text = ", ".join(f"{part} {ratio:.2f}x" for part, ratio in parts.items())
        lines.append(f"pathjax / {REFERENCE} ({dtype}): {text}")
    for dtype, check in report["agreement"].items():
        diffs = ", ".join(
            f"{name} {value:.1e} (tol {check['tolerance'][name]:.0e})"
            for name, value in check["max_abs_diff"].items()
        )
        lines.append(
            f"agreement ({dtype}): {'ok' if check['ok'] else 'FAILED'}; max |diff| {diffs}"
        )
    for dtype, effect in report["adapter_effect"].items():
        means = ", ".join(f"{v:.4f}" for v in effect["mean_drift_jsd_bits"])
        lines.append(f"adapters' mean drift JSD vs base ({dtype}): {means} bits")
    for dtype, p in report["reference_precision"].items():
        lines.append(
            f"{REFERENCE} {dtype}: base weights {p['base']}, adapters {p['adapters']}, "
            f"{report['torch_threads']} torch threads"
        )
    machine = report["machine"]
    start, end = (
        " ".join(f"{v:.2f}" for v in machine[f"load_average_{when}"]) for when in ("start", "end")
    )
    lines.append(
        f"load average (1/5/15 min): start {start}, end {end}, on {machine['cpu_count']} CPUs"
    )
    return "\n".join(lines)
