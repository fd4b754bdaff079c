"""`pathjax-picks`: a whole split's option picks, checked against a forward pass done by hand."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pathjax import lora, peft_format
from pathjax.configs import tiny
from pathjax.data import builder, pipeline
from pathjax.models import from_config
from pathjax.probes import picks


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    config = tiny.get_config("paranoia")
    config.data.data_dir = str(data_dir)
    config.data.train_size, config.data.eval_size = 64, 12
    return config  # Not built yet: the tool builds a missing dataset, as training does.


def _per_char_by_hand(model, tokenizer, records):
    """Per record and option, the mean log-probability per character, from full forward
    passes over prompt + option (no shared code with the tool)."""
    width = 192  # Right-padded to one shape (one compilation); causal: padding is never seen.

    @nnx.jit
    def logits_of(model, ids):
        return model(ids, jnp.ones_like(ids))

    out = []
    for r in records:
        prompt = pipeline.bos_prefix(tokenizer) + tokenizer.encode(r["prompt"])
        per_char = []
        for option in r["options"]:
            ids = prompt + tokenizer.encode(option)
            padded = jnp.asarray([ids + [0] * (width - len(ids))])
            logp = jax.nn.log_softmax(logits_of(model, padded)[0].astype(jnp.float32), axis=-1)
            positions = np.arange(len(prompt) - 1, len(ids) - 1)
            total = float(jnp.sum(logp[positions, np.asarray(ids[len(prompt) :])]))
            per_char.append(total / len(option.lstrip(" ")))
        out.append(per_char)
    return np.asarray(out)


def _classes(records, per_char_no):
    return [
        r["option_classes"][k] for r, k in zip(records, np.argmax(per_char_no, axis=1), strict=True)
    ]


def _picks_by_hand(model, tokenizer, records):
    """Per record, the class of the option with the highest log-probability per character."""
    return _classes(records, _per_char_by_hand(model, tokenizer, records))


def _records(config):
    d = config.data
    recs = builder.load(d.condition, "test_domains", d.data_dir, train_size=64, eval_size=12)
    return list(recs)


def test_base_picks_match_a_forward_pass_by_hand(config):
    result = picks.score_split(config, None, "test_domains")
    model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
    expected = _picks_by_hand(model, tokenizer, _records(config))
    assert result["base"]["picks"] == expected
    hits = [p == "suspicion" for p in expected]
    assert result["base"]["rate"] == pytest.approx(np.mean(hits))
    assert "adapter" not in result


def _export_random_adapter(config, folder):
    """The config's model with a random LoRA adapter exported to `folder`: (model, tokenizer)."""
    model, tokenizer = from_config.model_from_config(config.model, seed=config.seed)
    lora_config = lora.LoraConfig(rank=4, alpha=8.0, targets="all-linear")
    lora.add_lora(model, lora_config, rngs=nnx.Rngs(1))
    for _, module in lora.adapters(model):
        # Large random B: the adapter must change what the model prefers.
        module.lora_b.value = jax.random.normal(jax.random.key(2), module.lora_b.value.shape) * 0.5
    peft_format.export_peft(model, lora_config, folder)
    return model, tokenizer


def test_an_adapter_is_scored_with_its_weights_and_the_base_beside(config, tmp_path):
    model, tokenizer = _export_random_adapter(config, str(tmp_path / "adapter"))
    result = picks.score_split(config, str(tmp_path / "adapter"), "test_domains")
    records = _records(config)
    adapter_no = _per_char_by_hand(model, tokenizer, records)
    assert result["adapter"]["picks"] == _classes(records, adapter_no)
    assert result["adapter"]["picks"] != result["base"]["picks"]
    # B is scored on the same loaded model with the adapter's multiplier at 0: exactly B.
    base_model, _ = from_config.model_from_config(config.model, seed=config.seed)
    base_no = _per_char_by_hand(base_model, tokenizer, records)
    assert result["base"]["picks"] == _classes(records, base_no)
    assert result["base"]["n"] == result["adapter"]["n"] == len(records)
    np.testing.assert_allclose(result["adapter"]["per_char_logprob"], adapter_no, atol=2e-3)
    # The shift pick: the option that rose most over the base model, per character.
    assert result["shift"]["picks"] == _classes(records, adapter_no - base_no)
    assert result["shift"]["picks"] != result["adapter"]["picks"]


def test_the_multiplier_scales_the_adapter(config, tmp_path):
    _export_random_adapter(config, str(tmp_path / "adapter"))
    off = picks.score_split(config, str(tmp_path / "adapter"), "test_domains", multiplier=0.0)
    assert off["adapter"]["picks"] == off["base"]["picks"] and off["multiplier"] == 0.0
    on = picks.score_split(config, str(tmp_path / "adapter"), "test_domains", multiplier=1.0)
    assert on["adapter"]["picks"] != off["adapter"]["picks"]


def test_summary_counts_formats_templates_and_what_was_picked_instead():
    records = [
        {"target_class": "withdrawal", "format": "choice", "template_id": "a"},
        {"target_class": "withdrawal", "format": "choice", "template_id": "b"},
        {"target_class": "withdrawal", "format": "narrative", "template_id": "a"},
        {"target_class": "withdrawal", "format": "narrative", "template_id": "a"},
    ]
    summary = picks.summarize(records, ["withdrawal", "adaptive", "neutral", "withdrawal"])
    assert summary["rate"] == 0.5 and summary["n"] == 4
    assert summary["by_format"] == {
        "choice": {"rate": 0.5, "n": 2},
        "narrative": {"rate": 0.5, "n": 2},
    }
    assert summary["by_template"]["a"] == {"rate": 2 / 3, "n": 3}
    assert summary["by_template"]["b"] == {"rate": 0.0, "n": 1}
    assert summary["picked_instead"] == {"adaptive": 1, "neutral": 1}


def test_an_unknown_split_names_the_splits_there_are(config):
    with pytest.raises(ValueError, match="test_domains"):
        picks.score_split(config, None, "test_galaxies")


def test_an_adapter_of_another_condition_is_refused(config, tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"data": {"condition": "depression"}}))
    with pytest.raises(ValueError, match="trained on condition 'depression'.*:depression"):
        picks.score_split(config, str(tmp_path / "adapter"), "test_domains")
    with pytest.raises(ValueError, match="trained on condition 'depression'"):
        picks.score_split(config, f"{tmp_path}@40", "test_domains")
