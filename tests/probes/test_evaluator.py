"""The evaluator's engine: base + K stacked adapters in one pass equal K + 1 separate passes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pathjax import lora
from pathjax.models import presets, registry
from pathjax.probes import divergence, evaluator, scoring

VOCAB = 128


def _base(dtype=jnp.float32):
    return registry.init_model(presets.preset_config("tiny-llama"), seed=3, dtype=dtype)


def _adapter(seed: int, rank: int, alpha: float, targets="all-linear") -> evaluator.AdapterWeights:
    model = _base()
    lora.add_lora(
        model, lora.LoraConfig(rank=rank, alpha=alpha, targets=targets), rngs=nnx.Rngs(seed)
    )
    for _, a in lora.adapters(model):
        a.lora_b[...] = 0.3 * jax.random.normal(
            jax.random.key(seed * 100 + a.index), a.lora_b.shape
        )
    return evaluator.weights_from_model(model, f"adapter{seed}")


def _reference_model(weights: evaluator.AdapterWeights | None, multiplier: float):
    """One model with one (unstacked) adapter: what the stacked pass must reproduce."""
    model = _base()
    if weights is None:
        return model
    first = next(iter(weights.weights.values()))
    rank = first["A"].shape[1]
    exact = "(" + "|".join(p.replace(".", r"\.") for p in weights.weights) + ")"
    lora.add_lora(
        model,
        lora.LoraConfig(rank=rank, alpha=rank * weights.scale, targets=exact),
        rngs=nnx.Rngs(0),
    )
    for path, m in lora.adapters(model):
        m.lora_a[...] = weights.weights[path]["A"]
        m.lora_b[...] = weights.weights[path]["B"]
    lora.set_controls(model, multiplier=multiplier)
    return model


class _Tokenizer:
    """Token i is "w<i>" starting a word for even i, "x<i>" continuing one for odd i."""

    bos_token_id = 1
    eos_token_id = 2
    all_special_ids = [0, 1, 2]

    def __len__(self):
        return VOCAB

    def convert_ids_to_tokens(self, ids):
        return [("Ġw" if i % 2 == 0 else "x") + str(i) for i in ids]

    def batch_decode(self, rows, **_):
        return [(" w" if r[0] % 2 == 0 else "x") + str(r[0]) for r in rows]


@pytest.fixture(scope="module")
def setup():
    a0, a1 = _adapter(1, rank=4, alpha=8.0), _adapter(2, rank=2, alpha=2.0)
    models = [
        evaluator.ScoredModel("base"),
        evaluator.ScoredModel("a0", "depression", multiplier=1.0, adapter=0),
        evaluator.ScoredModel("a1", "paranoia", multiplier=1.0, adapter=1),
        evaluator.ScoredModel("a0-half", "depression", multiplier=0.5, adapter=0),
    ]
    ev = evaluator.Evaluator(
        _base(), _Tokenizer(), [a0, a1], models, add_bos=True, max_logits=2**16, vocab_chunk=32
    )
    refs = [
        _reference_model(None, 0.0),
        _reference_model(a0, 1.0),
        _reference_model(a1, 1.0),
        _reference_model(a0, 0.5),
    ]
    return ev, refs


def _logp(model, ids):
    logits = model(jnp.asarray([ids]))[0]
    return np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1))


def random_inputs(sequence_lengths=(7, 12, 4, 9)):
    """Prompts of different lengths with 1-4 continuations each, and whole sequences (for the
    drift pass): the shapes the evaluator's padding and grouping must get right. Shared by the
    evaluator tests (one pass, mesh, scanned layers)."""
    rng = np.random.default_rng(0)
    prompts = [[1, *rng.integers(3, VOCAB, n).tolist()] for n in (5, 11, 3)]
    conts = [
        [rng.integers(3, VOCAB, k).tolist() for k in (1, 3, 2)],
        [rng.integers(3, VOCAB, k).tolist() for k in (4,)],
        [rng.integers(3, VOCAB, k).tolist() for k in (2, 2, 5, 1)],
    ]
    sequences = [[1, *rng.integers(3, VOCAB, n).tolist()] for n in sequence_lengths]
    return prompts, conts, sequences


def test_one_pass_equals_separate_passes(setup):
    ev, refs = setup
    prompts, conts, _ = random_inputs()
    out = ev.score(prompts, conts, words=True)
    boundary = scoring.boundary_mask(_Tokenizer(), VOCAB)
    assert boundary[4] and not boundary[5] and boundary[2]
    for m, ref in enumerate(refs):
        for g, (prompt, options) in enumerate(zip(prompts, conts, strict=True)):
            for c, cont in enumerate(options):
                logp = _logp(ref, prompt + cont)
                p = len(prompt)
                want = sum(logp[p - 1 + i, t] for i, t in enumerate(cont))
                np.testing.assert_allclose(out.logp_mgc[m, g, c], want, rtol=1e-4, atol=1e-4)
                bnd = np.log(np.exp(logp[p - 1 + len(cont)])[boundary].sum())
                np.testing.assert_allclose(out.word_logp_mgc[m, g, c], want + bnd, atol=1e-4)
            assert np.all(np.isnan(out.logp_mgc[m, g, len(options) :]))
            # Divergence at the prompt's last position, against the base model.
            got = out.prompt_divergence["jsd_bits"][m, g]
            want = divergence.js_divergence(
                jnp.asarray(_logp(ref, prompt)[-1]), jnp.asarray(_logp(refs[0], prompt)[-1])
            )
            np.testing.assert_allclose(got, want, atol=1e-5)
    # The boundary factor is a probability < 1: the naive score overcounts every word.
    assert np.all(
        out.word_logp_mgc[~np.isnan(out.logp_mgc)] < out.logp_mgc[~np.isnan(out.logp_mgc)]
    )
    assert np.all(out.prompt_divergence["jsd_bits"][0] == 0)
    assert np.all(out.prompt_divergence["jsd_bits"][1:] > 0)


def test_drift_equals_separate_passes(setup):
    ev, refs = setup
    rng = np.random.default_rng(1)
    seqs = [[1, *rng.integers(3, VOCAB, n).tolist()] for n in (7, 12, 4, 9, 20)]
    out = ev.drift(seqs)
    for m, ref in enumerate(refs):
        for i, s in enumerate(seqs):
            lp, lq = jnp.asarray(_logp(ref, s)), jnp.asarray(_logp(refs[0], s))
            want = float(jnp.mean(divergence.js_divergence(lp, lq)))
            np.testing.assert_allclose(out["jsd_bits"][m, i], want, atol=1e-5)
            kl = float(jnp.mean(divergence.kl_divergence(lp, lq, base=np.e)))
            np.testing.assert_allclose(out["kl_model_base"][m, i], kl, rtol=1e-4, atol=1e-6)


def test_adapter_for_another_model_is_refused():
    a = _adapter(1, rank=4, alpha=8.0)
    bad = evaluator.AdapterWeights(
        {p: {"A": np.zeros((w["A"].shape[0] + 1, 4)), "B": w["B"]} for p, w in a.weights.items()},
        1.0,
        "bad-adapter",
    )
    models = [evaluator.ScoredModel("base"), evaluator.ScoredModel("x", multiplier=1.0, adapter=0)]
    with pytest.raises(evaluator.AdapterMismatchError, match="another size"):
        evaluator.Evaluator(_base(), _Tokenizer(), [bad], models, add_bos=True)
    renamed = evaluator.AdapterWeights(
        {"layers.9.mlp.up_proj": next(iter(a.weights.values()))}, 1.0, "alien"
    )
    with pytest.raises(evaluator.AdapterMismatchError, match="another base model"):
        evaluator.Evaluator(_base(), _Tokenizer(), [renamed], models, add_bos=True)


def test_tokenizer_of_another_model_is_refused():
    class Big(_Tokenizer):
        def __len__(self):
            return VOCAB * 2

    models = [evaluator.ScoredModel("base")]
    with pytest.raises(ValueError, match="belongs to this checkpoint"):
        evaluator.Evaluator(_base(), Big(), [], models, add_bos=True)


def test_adapter_sources_parse_and_fail_clearly(tmp_path):
    from pathjax.probes import run

    s = run.AdapterSource.parse("depression=runs/d@40")
    assert (s.name, s.path, s.condition, s.step) == ("depression", "runs/d", "depression", 40)
    assert run.AdapterSource.parse("mine=x").condition is None
    with pytest.raises(ValueError, match="name=PATH"):
        run.AdapterSource.parse("runs/d")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run.load_weights(run.AdapterSource("d", str(tmp_path / "missing")), _base())
    with pytest.raises(ValueError, match="neither a PEFT folder"):
        run.load_weights(run.AdapterSource("d", str(tmp_path)), _base())


def test_records_fingerprint_reads_adapter_paths_relative_to_the_output(tmp_path, monkeypatch):
    """The same study under an absolute or a relative --workdir finds the same records."""
    from pathjax.probes import run

    monkeypatch.chdir(tmp_path)
    relative = run._relative_to("runs/study/depression", "runs/study/eval")
    absolute = run._relative_to(
        str(tmp_path / "runs/study/depression"), str(tmp_path / "runs/study/eval")
    )
    assert relative == absolute == "../depression"


def test_records_fingerprint_changes_when_the_adapter_is_retrained(tmp_path):
    """A retrain into the same folder must not reuse the old adapter's records."""
    from pathjax.probes import run

    folder = tmp_path / "depression" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights one")
    source = run.AdapterSource("depression", str(tmp_path / "depression"))
    before = run.adapter_digest(source)
    assert run.adapter_digest(source) == before  # Stable while nothing changes.
    (folder / "adapter_model.safetensors").write_bytes(b"weights two")
    assert run.adapter_digest(source) != before


def test_records_fingerprint_reads_a_checkpoint_step_folder(tmp_path):
    """A dose-response source is a checkpoint step: every file under it counts."""
    from pathjax.probes import run

    step = tmp_path / "run" / "checkpoints" / "2" / "state"
    step.mkdir(parents=True)
    (step / "shard").write_bytes(b"one")
    source = run.AdapterSource("depression", str(tmp_path / "run"), step=2)
    before = run.adapter_digest(source)
    (step / "shard").write_bytes(b"two")
    assert run.adapter_digest(source) != before
