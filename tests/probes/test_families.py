"""The family registry: every family module keeps the contract, and its records say only
metrics it declares (docs/PROBES.md, "Adding a family")."""

import pytest

from pathjax.configs import tiny
from pathjax.models import from_config
from pathjax.probes import evaluator, families, items, schema
from pathjax.probes.families import base


def test_every_family_module_keeps_the_contract():
    for family_id in schema.FAMILIES:
        module = families.family(family_id)
        assert module.ID == family_id
        assert module.METRICS and len(set(module.METRICS)) == len(module.METRICS)
        assert callable(module.select) and callable(module.score)
        if family_id in schema.PRIMARY_METRIC:
            assert schema.PRIMARY_METRIC[family_id] in module.METRICS
    for condition, cls in schema.TARGET_CLASS.items():
        assert f"top_{cls}" in families.family("P1").METRICS, condition


def test_an_unknown_family_is_refused_by_name():
    with pytest.raises(ValueError, match="P9"):
        families.family("P9")
    with pytest.raises(ValueError, match="P9"):
        families.evaluate_suite(None, None, families=["P9"])


def test_every_family_scores_every_model_with_declared_metrics_only():
    config = tiny.get_config("random")
    model, tokenizer = from_config.model_from_config(config.model)
    models = [evaluator.ScoredModel(schema.BASE_MODEL)]
    ev = evaluator.Evaluator(model, tokenizer, [], models, add_bos=False, max_logits=2**18)
    suite = items.load_suite()
    row = {
        "prompt": "Your neighbour waves from across the street.\nWhat do you do?",
        "options": [" I stay in.", " I watch them.", " I wave back.", " I keep walking."],
        "option_classes": list(schema.ACTION_CLASSES),
        "format": "narrative",
    }
    inputs = base.SuiteInputs(suite, {"test_domains": [row]}, frozenset({"sad"}))
    limits = base.Limits(2, 2, 2, 2, 2, 1, 1, p6_samples=1, p6_max_new_tokens=3)
    records, generations = families.evaluate_suite(ev, inputs, limits=limits)
    for family_id in schema.FAMILIES:
        metrics = {r.metric for r in records if r.family == family_id}
        assert metrics, family_id
        assert metrics <= set(families.family(family_id).METRICS), family_id
    assert len(generations) == 1 and generations[0]["model"] == schema.BASE_MODEL
