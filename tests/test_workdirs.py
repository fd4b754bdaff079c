"""Workdirs through `etils.epath` (pathjax/storage.py): paths given as str or `epath.Path`
work alike, bucket paths keep their scheme, and a workdir that cannot be written is refused
at the start of training and of evaluation, naming the fix."""

import json

import numpy as np
import pytest
from etils import epath
from flax import nnx

from pathjax import lora, peft_format, provenance, storage
from pathjax.configs import tiny
from pathjax.models import presets, registry
from pathjax.probes import records as records_lib
from pathjax.probes import report as report_lib
from pathjax.probes import run as run_lib
from pathjax.train import export, loop, metrics
from tests.probes.test_report import FAST, make_records

AS_STR_AND_EPATH = pytest.mark.parametrize("kind", [str, epath.Path], ids=["str", "epath"])


def test_bucket_paths_keep_their_scheme():
    assert storage.is_remote("gs://bucket/run") and not storage.is_remote("/tmp/run")
    assert storage.absolute("gs://bucket/run") == "gs://bucket/run"
    assert storage.join_normalized("gs://bucket/a/b", "../stacked") == "gs://bucket/a/stacked"
    assert storage.join_normalized("/runs/a/b", "../stacked") == "/runs/a/stacked"
    assert storage.relative("gs://bucket/a/stacked", "gs://bucket/a/b") == "../stacked"
    assert storage.relative("/runs/a/stacked", "/runs/a/b") == "../stacked"
    with pytest.raises(ValueError, match="different storages"):
        storage.relative("gs://bucket/a", "/runs/a")


@AS_STR_AND_EPATH
def test_atomic_write_replaces_and_leaves_no_tmp(tmp_path, kind):
    path = kind(tmp_path / "value.json")
    storage.write_text_atomic(path, "old")
    storage.write_text_atomic(path, "new")
    assert (tmp_path / "value.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["value.json"]


@AS_STR_AND_EPATH
def test_a_writable_folder_is_created_and_left_clean(tmp_path, kind):
    storage.check_writable(kind(tmp_path / "new" / "run"))
    assert list((tmp_path / "new" / "run").iterdir()) == []


def _unwritable(tmp_path):
    """A folder below a plain file: no one can create it, root included (chmod is not enough
    where tests run as root)."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "run"


def test_an_unwritable_folder_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(storage.WorkdirNotWritableError, match=r"not writable.*--workdir"):
        storage.check_writable(str(_unwritable(tmp_path)))


def test_training_refuses_an_unwritable_workdir_before_building_anything(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("The model was built before the workdir was checked.")

    monkeypatch.setattr(loop, "_build_model", never)
    config = tiny.get_config("paranoia,random")
    config.data.data_dir = str(tmp_path / "data")
    with pytest.raises(storage.WorkdirNotWritableError, match="--workdir"):
        loop.train(config, str(_unwritable(tmp_path)))


def test_evaluation_refuses_an_unwritable_workdir_before_scoring(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("The model was built before the workdir was checked.")

    monkeypatch.setattr(run_lib.from_config, "model_from_config", never)
    config = tiny.get_config("paranoia,random")
    with pytest.raises(storage.WorkdirNotWritableError, match="Evaluation workdir"):
        run_lib.score_models(config, [], str(_unwritable(tmp_path)), families=["P7"])


@AS_STR_AND_EPATH
def test_metrics_resume_and_read_back(tmp_path, kind):
    workdir = kind(tmp_path / "run")
    writer = metrics.MetricsWriter(workdir, tensorboard=False)
    for step in (1, 2, 3):
        writer.write(step, "train", {"loss": np.float32(step)})
    writer.close()
    resumed = metrics.MetricsWriter(workdir, tensorboard=False, resume_step=2)
    resumed.write(3, "train", {"loss": 30.0})
    resumed.close()
    assert [(r["step"], r["loss"]) for r in metrics.read_metrics(workdir)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 30.0),
    ]


def _tiny_llama_with_adapter():
    model = registry.init_model(presets.preset_config("tiny-llama"), seed=0, dtype=np.float32)
    config = lora.LoraConfig(rank=4, alpha=8.0)
    lora.add_lora(model, config, rngs=nnx.Rngs(0))
    return model, config


@AS_STR_AND_EPATH
def test_peft_export_and_merged_folder_round_trip(tmp_path, kind):
    model, config = _tiny_llama_with_adapter()
    folder = kind(tmp_path / "adapter")
    peft_format.export_peft(model, config, folder, base_model="smollm2-135m")
    read_config, _ = peft_format.read_peft_config(folder)
    tensors = peft_format.read_peft_tensors(folder, registry.family_of(model.config))
    assert read_config.rank == 4 and len(tensors) == len(lora.adapters(model))
    (path, module), *_ = lora.adapters(model)
    np.testing.assert_array_equal(tensors[path]["A"], np.asarray(module.lora_a[...]))
    assert (tmp_path / "adapter" / "README.md").read_text().startswith("---")

    names = export.write_hf_folder(model, kind(tmp_path / "merged"), max_shard_size=20_000)
    assert len(names) > 1  # Sharded, with its index.
    index = json.loads((tmp_path / "merged" / export.INDEX_FILE).read_text())
    assert set(index["weight_map"].values()) == set(names)


@AS_STR_AND_EPATH
def test_records_report_and_provenance(tmp_path, kind):
    rs = make_records(np.random.default_rng(0), families=("P2", "P7"))
    records_lib.write_jsonl(rs, kind(tmp_path / "r.jsonl"))
    assert records_lib.read_jsonl(kind(tmp_path / "r.jsonl")) == rs
    paths = report_lib.write_report(rs, [], {}, kind(tmp_path / "report"), **FAST)
    assert json.loads(paths["report.json"].read_text())["figures"]
    for name in ("report.md", "generations.md", provenance.PROVENANCE_FILE):
        assert (tmp_path / "report" / name).is_file(), name
    pngs = list((tmp_path / "report" / "figures").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
