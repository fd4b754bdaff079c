"""P1's letter histogram, same-position baseline and balanced subsets; the learning curve."""

import itertools

import numpy as np

from pathjax.data import subsets
from pathjax.probes import report as report_lib
from pathjax.probes.records import Record

CLASSES = ("withdrawal", "suspicion", "adaptive", "neutral")
KEY = {"withdrawal": "depression", "suspicion": "paranoia"}


def _lettered_records(picks: dict[str, list[int]], orders: list[tuple[str, ...]]):
    out = []
    for model, chosen in picks.items():
        cond = None if model == "base" else model

        def rec(item, key, metric, score, model=model, cond=cond):
            mult = 0.0 if cond is None else 1.0
            return Record(model, cond, None, None, mult, "P1", item, key, metric, score)

        for i, (order, pick) in enumerate(zip(orders, chosen, strict=True)):
            item = f"test_lettered/lettered/{i}"
            for pos, cls in enumerate(order):
                key = KEY.get(cls, "neutral")
                out.append(rec(item, key, f"top_{cls}", float(pick == pos)))
                out.append(rec(item, key, f"top_{cls}_summed", float(pick == pos)))
                out.append(rec(item, key, f"p_{cls}", 0.25))
                out.append(rec(item, key, f"slot_{cls}", float(pos)))
                out.append(rec(item, "neutral", f"position_{pos}", float(pick == pos)))
    return out


def test_a_model_that_always_answers_a_scores_the_same_position_baseline():
    orders = [p for p in itertools.permutations(CLASSES)]  # 24 orders: balanced positions.
    rng = np.random.default_rng(0)
    picks = {"base": list(rng.integers(0, 4, len(orders))), "depression": [0] * len(orders)}
    rep = report_lib.build_report(_lettered_records(picks, orders), n_resamples=200)
    row = next(r for r in rep["p1"]["target"] if r["model"] == "depression")
    pos = row["by_format"]["lettered"]["positions"]
    assert pos["model_picks"] == [1.0, 0.0, 0.0, 0.0]
    assert pos["target_at"] == [0.25] * 4 and pos["same_position_baseline"] == 0.25
    # Always answering A is exactly the baseline: no decision was learned.
    assert row["rate"]["mean"] == pos["same_position_baseline"]
    markdown = report_lib.markdown_report(rep, [])
    assert "same-position baseline" in markdown and "| 1 / 0 / 0 / 0 |" in markdown


def test_balanced_subsets_put_every_class_at_every_position():
    rng = np.random.default_rng(1)
    records = []
    for i in range(400):
        order = list(CLASSES)
        rng.shuffle(order)
        records.append({"option_classes": order, "format": ("choice", "narrative")[i % 2]})
    chosen = subsets.balanced(records, 48)
    assert len(chosen) == 48
    for fmt in ("choice", "narrative"):
        rows = [r for r in chosen if r["format"] == fmt]
        assert len(rows) == 24
        for cls in CLASSES:
            positions = [r["option_classes"].index(cls) for r in rows]
            assert np.bincount(positions, minlength=4).tolist() == [6, 6, 6, 6]


def test_learning_curve_comes_from_the_training_evaluations():
    rows = [
        {
            "step": s,
            "split": split,
            "choice_accuracy": acc - 0.1,
            "choice_accuracy_per_char": acc,
            "choice_accuracy_per_char_choice": acc,
            "choice_accuracy_per_char_narrative": acc,
        }
        for s, acc in ((24, 0.5), (48, 0.9))
        for split in ("validation", "test_domains")
    ]
    metadata = {"training": {"global_batch_size": 4, "curves": {"depression-seed0": rows}}}
    curve = report_lib.build_report([], metadata)["learning_curve"]
    points = curve["runs"][0]["splits"]["test_domains"]
    assert [(p["examples"], p["accuracy"]) for p in points] == [(96, 0.5), (192, 0.9)]
    assert points[1]["by_format"] == {"choice": 0.9, "narrative": 0.9}


def test_p5_shift_that_flips_with_the_scale_order_is_flagged():
    rng = np.random.default_rng(2)
    records = []
    for i in range(12):
        item = f"p5-dep-{i:02d}/agreement"
        base = rng.uniform(0.5, 2.5)
        for model, low, high in (("base", 0.0, 0.0), ("depression", -0.8, +0.6)):
            cond = None if model == "base" else model
            mult = 0.0 if cond is None else 1.0
            scores = {
                "expected_score_low_first": base + low + rng.normal(scale=0.05),
                "expected_score_high_first": base + high + rng.normal(scale=0.05),
            }
            scores["expected_score"] = sum(scores.values()) / 2
            for metric, score in scores.items():
                records.append(
                    Record(model, cond, None, None, mult, "P5", item, "depression", metric, score)
                )
    rep = report_lib.build_report(records, n_resamples=200)
    row = next(r for r in rep["p5_order"] if r["key"] == "depression")
    assert row["orders_disagree"]
    assert row["low_first"]["ci_high"] < 0 < row["high_first"]["ci_low"]
    assert "P5 scale order: for 1 of" in report_lib.markdown_report(rep, [])


def test_p1_items_of_every_listed_split_put_each_target_at_every_position(tmp_path):
    from pathjax.configs import tiny
    from pathjax.probes import dataset_inputs

    config = tiny.get_config("random")
    config.data.data_dir = str(tmp_path)
    config.data.train_size, config.data.eval_size = 40, 200
    chosen = dataset_inputs.p1_items(config, limit=24)
    for split in ("test_domains", "test_lettered"):
        listed = [r for r in chosen[split] if r["format"] in ("choice", "lettered")]
        counts = np.bincount([r["target_index"] for r in listed], minlength=4)
        assert counts.max() - counts.min() <= 1, (split, counts)
