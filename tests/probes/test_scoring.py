"""String-level scoring: Likert scores, option variants, word boundaries, tokenization checks."""

import dataclasses

import numpy as np
import pytest

from pathjax.data.words import words
from pathjax.models import tokenizers
from pathjax.probes import items, scoring
from pathjax.train import options


@pytest.fixture(scope="module", params=["smollm2-135m", "gpt2"])
def tokenizer(request):
    return tokenizers.load_tokenizer(request.param)


def test_likert_expected_score_recovers_constructed_probabilities():
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])
    logp = np.log(probs) - 3.0  # Unnormalized: the score renormalizes over the options.
    scores = [0, 1, 2, 3]
    expected = scoring.likert_expected_score(logp, scores, reverse=False)
    np.testing.assert_allclose(expected, [2.0, 0.6])
    reversed_ = scoring.likert_expected_score(logp, scores, reverse=np.array([True, False]))
    np.testing.assert_allclose(reversed_, [3 - 2.0, 0.6])


def test_suite_reverse_keying_matches_the_scorer():
    suite = items.load_suite()
    item = next(i for i in suite.likert if i.reverse)
    framing = suite.framings[sorted(item.texts)[0]]
    logp = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    via_item = scoring.likert_expected_score(logp, item.keyed_scores(framing), reverse=False)
    via_flag = scoring.likert_expected_score(logp, [o.score for o in framing.options], reverse=True)
    np.testing.assert_allclose(via_item, via_flag)


def test_option_variants():
    logp = np.array([[-2.0, -4.0]])
    np.testing.assert_allclose(options.renormalize(logp).sum(), 1.0)
    np.testing.assert_allclose(options.per_char(logp, [[" ab", " abcd"]]), [[-1.0, -1.0]])
    np.testing.assert_allclose(options.calibrated(logp, np.array([[-1.0, -5.0]])), [[-1.0, 1.0]])


def test_boundary_mask_on_real_tokenizers(tokenizer):
    mask = scoring.boundary_mask(tokenizer, len(tokenizer))

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    assert mask[ids(" sad")[0]]
    assert mask[ids(".")[0]] and mask[ids(",")[0]] and mask[ids("\n")[0]]
    assert mask[tokenizer.eos_token_id]
    # A word's inner pieces continue it: "sadness" split after " sad..." is not a boundary.
    inner = ids(" unhappinesslessly")[1:]
    assert inner and not mask[inner].any()


def test_every_probe_string_tokenizes_as_scored(tokenizer):
    """Every option, continuation and lexicon word of the suite, for each tokenizer."""
    suite = items.load_suite()
    cases = [(i.id, i.stem, [i.negative, i.benign]) for i in suite.ambiguous]
    words = sorted({w for lex in suite.lexicons.values() for w in lex.words})
    cases += [(s.id, s.stem, [" " + w for w in words]) for s in suite.open_stems[:3]]
    for item in suite.likert:
        for name in item.texts:
            framing = suite.framings[name]
            cases.append((item.id, item.prompt(framing), [o.text for o in framing.options]))
    scoring.check_tokenization(tokenizer, cases)


def test_tokenization_problems_are_named(tokenizer):
    # "Answer: " + "A" would be scored on tokens the model never sees together.
    with pytest.raises(scoring.TokenizationError, match="bad-item"):
        scoring.check_tokenization(tokenizer, [("bad-item", "The word is hap", ["py days"])])
    with pytest.raises(scoring.TokenizationError, match="exactly one space"):
        scoring.encode_continuation(tokenizer, "no space")


def test_words_rates_and_distinct_n():
    text = "I don't know. I don't care; sad, sad days!"
    w = words(text)
    assert w == ["i", "don't", "know", "i", "don't", "care", "sad", "sad", "days"]
    assert words("Rock'n'roll, 42 times") == ["rock'n'roll", "times"]
    assert scoring.lexicon_rate(w, {"sad"}) == pytest.approx(100 * 2 / 9)
    assert scoring.lexicon_rate([], {"sad"}) == 0.0
    assert scoring.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert scoring.distinct_n(["a b c"], 2) == 1.0


def test_item_limits_keep_every_key():
    from pathjax.probes.families import base

    suite = items.load_suite()
    chosen = base.take(suite.ambiguous, 10)
    keys = [i.key for i in chosen]
    assert len(chosen) == 10 and keys.count("depression") == keys.count("paranoia") == 5
    assert base.take(suite.ambiguous, 0) == suite.ambiguous


def test_every_framing_renders_with_its_scale_high_first():
    suite = items.load_suite()
    for framing in suite.framings.values():
        labels = [o.text.strip() for o in framing.options]
        low_first = framing.render("X")
        high_first = framing.listed_high_first().render("X")
        assert ", ".join(labels) in low_first and ", ".join(reversed(labels)) in high_first
        assert high_first.replace(", ".join(reversed(labels)), ", ".join(labels)) == low_first
        # The options scored are the same; only the listing in the prompt changes.
        assert framing.listed_high_first().options == framing.options


def test_a_framing_whose_template_does_not_list_its_options_is_refused():
    framing = items.load_suite().framings["agreement"]
    broken = dataclasses.replace(framing, template="Statement: {text}\nMy response:")
    with pytest.raises(ValueError, match="must list the options"):
        broken.listed_high_first()
