"""Validation choice scoring: whole options, per format, and the label of choice items."""

import numpy as np
from flax import nnx

from pathjax.models import presets, registry
from pathjax.models.tokenizers import load_tokenizer
from pathjax.train import choice_eval

CHOICE = {
    "format": "choice",
    "prompt": "What do I do?\nA. I stay home.\nB. I call a friend.\nAnswer:",
    "options": [" A. I stay home.", " B. I call a friend."],
    "target_index": 0,
}
NARRATIVE = {
    "format": "narrative",
    "prompt": "The party was loud, so I",
    "options": [" left early.", " danced all night long."],
    "target_index": 1,
}


def _model():
    model = registry.init_model(presets.preset_config("tiny-smollm2"), seed=3)
    graphdef, state = nnx.split(model)
    return graphdef, (state,)


def test_label_scores_equal_a_pass_over_the_labels_alone():
    tokenizer = load_tokenizer("smollm2-135m")
    graphdef, state = _model()
    records = [CHOICE, NARRATIVE]
    scores = choice_eval.option_scores(graphdef, state, records, tokenizer, batch_size=4)
    labels_only = dict(CHOICE, options=[" A.", " B."])
    alone = choice_eval.option_scores(graphdef, state, [labels_only], tokenizer, batch_size=4)
    np.testing.assert_allclose(scores.label_no[0], alone.summed_no[0], rtol=1e-5, atol=1e-5)
    assert np.isnan(scores.label_no[1]).all()  # Narrative options have no label.
    assert (scores.summed_no[0] < scores.label_no[0]).all()  # The copied text costs too.
    encoded = tokenizer(NARRATIVE["options"], add_special_tokens=False)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    assert scores.tokens_no.tolist()[1] == lengths


def test_metrics_split_by_format_and_name_the_label_accuracy():
    summed = np.array([[-1.0, -5.0], [-9.0, -2.0], [-3.0, -1.0]])
    label = np.array([[-2.0, -1.0], [np.nan, np.nan], [-0.5, -4.0]])
    scores = choice_eval.OptionScores(summed, np.ones_like(summed), label)
    metrics = choice_eval.choice_metrics(
        scores, np.array([0, 1, 0]), ["choice", "narrative", "choice"]
    )
    assert metrics["choice_accuracy"] == 2 / 3
    assert metrics["choice_accuracy_choice"] == 0.5
    assert metrics["choice_accuracy_narrative"] == 1.0
    assert metrics["label_accuracy"] == 0.5  # Item 0 names B, item 2 names A.
