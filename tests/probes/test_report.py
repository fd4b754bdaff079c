"""The probe report on synthetic records: planted effects show, absent ones do not, every file
is written, and missing pieces degrade into notes rather than errors."""

import dataclasses
import json
import math

import matplotlib.image
import numpy as np
import pytest

from pathjax.probes import report as report_lib
from pathjax.probes import schema
from pathjax.probes.records import Record

# model -> (shift on depression-keyed items, shift on paranoia-keyed items); neutral items get
# their mean.
PLANTED = {"control": (0.0, 0.0), "depression": (1.0, 0.0), "paranoia": (0.0, 1.0)}
NULL = {"control": (0.0, 0.0), "depression": (0.0, 0.0), "paranoia": (0.0, 0.0)}
CLASSES = ("withdrawal", "suspicion", "adaptive", "neutral")
CLASS_KEY = {"withdrawal": "depression", "suspicion": "paranoia"}
TARGET = {"depression": 0, "paranoia": 1, "control": 2}
FAST = {"n_resamples": 300, "n_permutations": 300}

# family -> (items per key, keys, metrics)
FAMILIES = {
    "P2": (12, ("depression", "paranoia"), ("logodds_negative", "jsd_bits")),
    "P3": (12, ("depression", "paranoia"), ("logodds_negative",)),
    "P4": (20, ("neutral",), ("neg_share", "neg_share_unseen", "mass_negative", "jsd_bits")),
    "P5": (6, ("depression", "paranoia"), ("expected_score",)),
    "P6": (6, ("depression", "paranoia", "neutral"), ("negative_per_100w",)),
    "P7": (20, ("neutral",), ("jsd_bits", "kl_model_base")),
}


def _item_ids(family: str, key: str, n: int) -> list[str]:
    if family == "P5":  # "<item id>/<framing>"
        return [f"p5-{key[:3]}-{i:02d}/{fr}" for i in range(n // 2) for fr in ("agree", "freq")]
    return [f"{family.lower()}-{key[:3]}-{i:03d}" for i in range(n)]


def make_records(
    rng: np.random.Generator,
    effects=PLANTED,
    *,
    families=tuple(FAMILIES) + ("P1",),
    seeds=(0,),
    noise=0.3,
    multipliers=(1.0,),
    steps=(None,),
    n_factor: int = 1,
) -> list[Record]:
    out = []
    models = [("base", None, None, 0.0)] + [
        (m, seed, step, mult)
        for m in effects
        for seed in seeds
        for step in steps
        for mult in multipliers
    ]
    for family in families:
        if family == "P1":
            out += _p1(rng, effects, models, noise)
            continue
        n, keys, metrics = FAMILIES[family]
        n *= n_factor
        items = [(i, k) for k in keys for i in _item_ids(family, k, n)]
        for metric in metrics:
            base = rng.normal(size=len(items))
            if metric in ("jsd_bits", "kl_model_base"):
                base = np.zeros(len(items))  # B against itself
            for model, seed, step, mult in models:
                scale = 0.0 if model == "base" else mult * (1.0 if step is None else step / 100)
                for (item, key), b in zip(items, base, strict=True):
                    e = effects.get(model, (0.0, 0.0))
                    shift = {"depression": e[0], "paranoia": e[1]}.get(key, (e[0] + e[1]) / 2)
                    if metric in ("jsd_bits", "kl_model_base"):
                        score = (
                            0.0 if model == "base" else abs(rng.normal(0.05 + 0.1 * shift, 0.02))
                        )
                    else:
                        score = b + scale * shift + (rng.normal(scale=noise) if scale else 0.0)
                    out.append(
                        Record(
                            model,
                            None if model == "base" else model,
                            seed,
                            step,
                            mult,
                            family,
                            item,
                            key,
                            metric,
                            float(score),
                        )
                    )
    return out


def _p1(rng, effects, models, noise) -> list[Record]:
    out = []
    formats = ("choice", "narrative")
    items = [f"{s}/{formats[i % 2]}/{i}" for s in schema.P1_SPLITS for i in range(15)]
    base_ic = rng.normal(size=(len(items), 4))
    for model, seed, step, mult in models:
        logits = base_ic + rng.normal(scale=noise, size=base_ic.shape)
        if model in effects and effects[model] != (0.0, 0.0):
            logits[:, TARGET[model]] += 3.0 * mult
        if model == "base":
            logits = base_ic
        p_ic = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        top_i = p_ic.argmax(axis=1)
        for i, item in enumerate(items):
            for c, cls in enumerate(CLASSES):
                key = CLASS_KEY.get(cls, "neutral")
                cond = None if model == "base" else model
                for metric, score in (
                    (f"p_{cls}", p_ic[i, c]),
                    (f"top_{cls}", float(top_i[i] == c)),
                    (f"p_{cls}_calibrated", p_ic[i, c]),
                ):
                    out.append(
                        Record(model, cond, seed, step, mult, "P1", item, key, metric, float(score))
                    )
    return out


def _generations():
    return [
        {
            "model": m,
            "condition": None if m == "base" else m,
            "seed": None if m == "base" else 0,
            "step": None,
            "multiplier": 0.0 if m == "base" else 1.0,
            "item_id": f"p6-dep-{p:03d}",
            "sample": s,
            "prompt": "Journal entry.\nThis week was",
            "text": f" {m} sample {s} | with a pipe\nand a newline",
        }
        for m in ("base", "control", "depression", "paranoia")
        for p in range(2)
        for s in range(2)
    ]


def _effect(report, model, family, metric, key=None):
    (e,) = [
        e
        for e in report["effects"]
        if (e["model"], e["family"], e["metric"], e["key"]) == (model, family, metric, key)
    ]
    return e


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted")
    rs = make_records(np.random.default_rng(0))
    metadata = {
        "base_model": "tiny-llama",
        "training": {"depression": {"val_accuracy": 0.97}, "paranoia": {"val_accuracy": 0.95}},
        "leakage": {"probe_words_in_training_vocabulary": ["alone", "watch"], "fraction": 0.02},
    }
    paths = report_lib.write_report(rs, _generations(), metadata, out, **FAST)
    return paths, json.loads(paths["report.json"].read_text())


def test_planted_effects_show_with_cis(planted):
    _, rep = planted
    for model, key in (("depression", "depression"), ("paranoia", "paranoia")):
        for family in ("P2", "P3", "P5", "P6"):
            own = _effect(rep, model, family, schema.PRIMARY_METRIC[family], key)
            assert own["ci_low"] > 0.5 and own["n_items"] > 0, (model, family)
            other = "paranoia" if key == "depression" else "depression"
            off = _effect(rep, model, family, schema.PRIMARY_METRIC[family], other)
            assert off["ci_low"] < 0 < off["ci_high"], (model, family)
    ctrl = _effect(rep, "control", "P2", "logodds_negative", "depression")
    assert ctrl["ci_low"] < 0 < ctrl["ci_high"]
    # Headline rows: D on its own probes, against C, with Holm-adjusted p.
    row = next(r for r in rep["headline"] if (r["family"], r["key"]) == ("P2", "depression"))
    d = row["adapters"]["depression"]
    assert d["effect"]["p_holm"] is not None and d["effect"]["p_holm"] < 0.05
    assert d["vs_control"]["ci_low"] > 0.5
    # Specificity: D's own column up, P's own column up; S positive with CI above 0.
    m = rep["specificity"]
    assert m["models"] == ["base", "control", "depression", "paranoia"]
    dz = dict(zip(m["models"], m["d_z"], strict=True))
    lo = dict(zip(m["models"], m["ci_low"], strict=True))
    assert lo["depression"][0] > 0.5 and lo["paranoia"][1] > 0.5
    assert dz["depression"][1] < dz["depression"][0]
    s = rep["dissociation"]
    assert s["s"] > 1 and s["ci_low"] > 0
    # P1: training took.
    target = {
        (r["model"], r["split"]): r for r in rep["p1"]["target"] if r["split"] == "test_domains"
    }
    rate = target["depression", "test_domains"]["rate"]
    assert rate["mean"] > 0.8 and rate["n_items"] == 15
    assert target["depression", "test_domains"]["effects"]["top_withdrawal"]["ci_low"] > 0
    by_format = target["depression", "test_domains"]["by_format"]
    assert sorted(by_format) == ["choice", "narrative"]
    assert [by_format[f]["rate"]["n_items"] for f in ("choice", "narrative")] == [8, 7]
    assert by_format["choice"]["rate"]["mean"] > by_format["choice"]["base_rate"]["mean"]
    classes = {(r["model"], r["class"]) for r in rep["p1"]["rates"] if r["kind"] == "top"}
    assert ("base", "neutral") in classes and ("paranoia", "withdrawal") in classes
    # Leakage comparison and P5 totals.
    leak = rep["lexical_leakage"]
    assert leak["fraction"] == 0.02 and leak["lexicon_metrics_with_and_without"]
    totals = {(t["key"], t["framing"], t["model"]) for t in rep["p5_totals"]}
    assert ("depression", "agree", "base") in totals


def test_every_file_is_written(planted):
    paths, rep = planted
    for name in ("report.json", "report.md", "generations.md"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    pngs = [p for n, p in paths.items() if n.startswith("figures/")]
    names = {p.stem for p in pngs}
    assert {"jsd_distributions", "specificity", "p4_lexicon", "p5_scales", "p1_rates"} <= names
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(p).shape  # decodes
        assert height > 100 and width > 100
    md = paths["report.md"].read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Headline"
    assert "Specificity matrix" in md and "**S = +" in md and "tiny-llama" in md
    assert "val_accuracy" in md and "Lexical leakage" in md
    gen = paths["generations.md"].read_text()
    assert "## p6-dep-000 (depression-keyed)" in gen and "\\| with a pipe<br>and" in gen
    assert gen.index("| sample | base | control | depression | paranoia |") > 0


def test_the_report_computes_leakage_from_the_config(monkeypatch):
    """Given the study's config, the report finds the probe words in its training vocabulary
    itself (whoever calls it), and no order of the sections is needed for the P4 comparison."""
    from ml_collections import config_dict

    from pathjax.probes import dataset_inputs, items

    words = sorted({w for lex in items.load_suite(None).lexicons.values() for w in lex.words})
    seen = frozenset(words[:3] + ["notaprobeword"])
    monkeypatch.setattr(dataset_inputs, "training_vocabulary", lambda config: seen)
    config = config_dict.ConfigDict({"eval": {"suite_version": ""}})
    rs = make_records(np.random.default_rng(6), families=("P4",))
    rep = report_lib.build_report(rs, {}, config=config, **FAST)
    leak = rep["lexical_leakage"]
    assert leak["probe_words_in_training_vocabulary"] == words[:3]
    assert leak["fraction"] == pytest.approx(3 / len(words))
    assert rep["metadata"]["leakage"]["probe_words_in_training_vocabulary"] == words[:3]
    pairs = {(c["model"], c["metric"]) for c in leak["lexicon_metrics_with_and_without"]}
    assert ("depression", "neg_share") in pairs
    # Without a config, no overlap is made up.
    assert report_lib.build_report(rs, {}, **FAST)["lexical_leakage"]["fraction"] is None


def test_no_effect_cis_include_zero(tmp_path):
    rs = make_records(np.random.default_rng(1), NULL, families=("P2", "P3", "P5"), n_factor=3)
    rep = report_lib.build_report(rs, {}, **FAST)
    signed = [e for e in rep["effects"] if e["metric"] != "jsd_bits"]  # JSD is never < 0
    misses = [
        (e["model"], e["family"], e["key"]) for e in signed if e["ci_low"] > 0 or e["ci_high"] < 0
    ]
    # 27 overlapping intervals (all items and each key) at 95%: a few may miss by chance.
    assert len(signed) == 27 and len(misses) <= 5, misses
    for row in rep["headline"]:
        for a in row["adapters"].values():
            assert a["effect"]["p_holm"] > 0.05
    s = rep["dissociation"]
    assert s["ci_low"] < 0 < s["ci_high"]


def test_missing_families_and_models_degrade_to_notes(tmp_path):
    rng = np.random.default_rng(2)
    # Only B and one adapter, two families, no control, no P1.
    rs = make_records(rng, {"depression": (1.0, 0.0)}, families=("P2", "P7"))
    paths = report_lib.write_report(rs, [], {}, tmp_path, **FAST)
    rep = json.loads(paths["report.json"].read_text())
    notes = " ".join(rep["notes"])
    assert "P3" in notes and "P1" in notes and "No control adapter" in notes
    assert rep["dissociation"] is None and rep["p1"] is None
    assert rep["specificity"]["models"] == ["base", "depression"]
    md = paths["report.md"].read_text()
    assert md.splitlines()[4] == "## Headline" and "No control adapter" in md
    assert "No generations." in paths["generations.md"].read_text()
    # An infinite KL and an all-equal P1 shift (d_z undefined) are noted, not fatal.
    rs = make_records(rng, {"depression": (1.0, 0.0)}, families=("P7", "P1"))
    rs = [
        dataclasses.replace(r, score=math.inf)
        if (r.model, r.metric, r.item_id) == ("depression", "kl_model_base", "p7-neu-000")
        else dataclasses.replace(r, score=float(r.model == "depression"))
        if r.metric == "top_withdrawal"
        else r
        for r in rs
    ]
    paths = report_lib.write_report(rs, [], {}, tmp_path / "c", **FAST)
    rep = json.loads(paths["report.json"].read_text())  # strict JSON: no NaN or Infinity
    assert any("kl_model_base" in n and "1 items left out" in n for n in rep["notes"])
    assert _effect(rep, "depression", "P7", "kl_model_base")["n_items"] == 19
    (row,) = [r for r in rep["p1"]["target"] if r["split"] == "test_domains"]
    top = row["effects"]["top_withdrawal"]
    assert top["mean_delta"] == 1.0 and top["d_z"] is None and top["p"] < 0.01
    # Nothing at all beyond B, or nothing at all: still a report.
    base_only = [r for r in rs if r.model == "base"]
    paths = report_lib.write_report(base_only, [], {}, tmp_path / "b", **FAST)
    assert json.loads(paths["report.json"].read_text())["headline"] == []
    paths = report_lib.write_report([], [{"text": "no model"}], {}, tmp_path / "e", **FAST)
    assert "No base-model records" in paths["report.md"].read_text()


def test_dose_response_over_multipliers_and_steps(tmp_path):
    rng = np.random.default_rng(3)
    rs = make_records(rng, PLANTED, families=("P2",), multipliers=(0.5, 1.0, 2.0))
    rs += [
        r
        for r in make_records(rng, PLANTED, families=("P2",), steps=(50, 100))
        if r.model != "base"
    ]
    meta = {"final_step": 200}
    paths = report_lib.write_report(rs, [], meta, tmp_path, seed=1, **FAST)
    rep = json.loads(paths["report.json"].read_text())
    dose = {(d["model"], d["by"]): d for d in rep["dose_response"]}
    d = dose["depression", "multiplier"]
    assert d["levels_l"] == [0.5, 1.0, 2.0] and d["slope_ci_low"] > 0 and d["key"] == "depression"
    assert dose["depression", "step"]["levels_l"] == [50.0, 100.0, 200.0]
    assert "figures/dose_response.png" in paths


def test_several_seeds(tmp_path):
    rs = make_records(np.random.default_rng(4), PLANTED, families=("P2", "P3"), seeds=(0, 1))
    rep = report_lib.build_report(rs, {}, **FAST)
    e = _effect(rep, "depression", "P2", "logodds_negative", "depression")
    assert e["n_seeds"] == 2 and e["seed_sd"] is not None and e["ci_low"] > 0.5
    assert rep["specificity"]["n_seeds"] == [1, 2, 2, 2]


def _md_rows(md: str, section: str) -> dict[str, list[list[str]]]:
    """The table of one `## section` of a Markdown text: {first cell: rows}; a row with an empty
    first cell continues the group above it."""
    text = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    groups: dict[str, list[list[str]]] = {}
    first = ""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    for line in lines[2:]:  # after the header and the rule
        row = line[2:-2].split(" | ")
        first = row[0] or first
        groups.setdefault(first, []).append(row)
    return groups


def test_cross_architecture_summary(planted, tmp_path):
    full = planted[0]["report.json"]
    rng = np.random.default_rng(5)
    # A second architecture with the same planted effects but only P2 and P1; a third with
    # every effect reversed and only P2.
    partial = make_records(rng, families=("P2", "P1"))
    flipped = make_records(rng, {m: (-d, -p) for m, (d, p) in PLANTED.items()}, families=("P2",))
    for name, rs in (("partial", partial), ("flipped", flipped)):
        rep = report_lib.build_report(rs, {"base_model": f"tiny-{name}"}, **FAST)
        (tmp_path / f"{name}.json").write_text(json.dumps(rep))

    md = report_lib.cross_architecture_summary({"llama": full, "gemma": tmp_path / "partial.json"})
    archs = _md_rows(md, "Architectures")
    assert archs["gemma"][0][1:] == ["tiny-partial", "control, depression, paranoia", "1"] + [
        "P3, P4, P5, P6, P7"
    ]
    assert archs["llama"][0][-1] == "none"
    shifts = _md_rows(md, "Shifts against B per probe family (primary metric)")
    rows = {r[2]: r for r in shifts["P2 ambiguous situations, depression-keyed"]}
    assert list(rows) == ["control", "depression", "paranoia"]
    dep = rows["depression"]  # probe, metric, adapter, llama, gemma, direction
    assert dep[3].startswith("+1") and dep[4].startswith("+1") and dep[5] == "agree (+)"
    par = {r[2]: r for r in shifts["P5 Likert items, paranoia-keyed"]}["paranoia"]
    assert par[3].startswith("+1") and par[4:] == ["-", "one architecture"]
    p1 = _md_rows(md, "P1 target-class top-choice rate (test_domains)")
    assert list(p1) == ["control", "depression", "paranoia"]
    (dep,) = p1["depression"]
    assert dep[1] == "withdrawal" and "(B " in dep[2] and "(B " in dep[3]
    assert dep[4] == "agree (+)"
    s = _md_rows(md, "Dissociation contrast S")
    assert s["llama"][0][1].startswith("+") and s["gemma"][0][1].startswith("+")
    assert "The directions agree across architectures" in md

    md = report_lib.cross_architecture_summary(
        {"llama": str(full), "flipped": tmp_path / "flipped.json"}
    )
    verdict = md.split("## Do the directions agree?")[1]
    assert "do not agree" in verdict and "S point opposite ways" in verdict
    assert "depression on P2 ambiguous situations, depression-keyed;" in verdict
    s = _md_rows(md, "Dissociation contrast S")
    assert s["flipped"][0][1].startswith("-")
    (dep,) = _md_rows(md, "P1 target-class top-choice rate (test_domains)")["depression"]
    assert dep[3:] == ["-", "one architecture"]  # no P1 in the flipped report
    assert "nothing to compare" in report_lib.cross_architecture_summary({"llama": full})


def test_the_report_says_where_it_came_from(planted):
    paths, rep = planted
    block = rep["provenance"]
    assert block["libraries"]["jax"] and block["devices"]["count"] >= 1 and block["date"]
    assert block["command"]  # The command line that made it.
    folder = paths["report.json"].parent
    assert json.loads((folder / "provenance.json").read_text())["pathjax"] == block["pathjax"]
    assert "Made by pathjax" in paths["report.md"].read_text()
