"""How launchers spell an adapter: PATH or PATH@STEP, with `@` allowed inside paths."""

import pytest

from pathjax import adapters
from pathjax.probes import run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runs/d", ("runs/d", None)),
        ("runs/d@40", ("runs/d", 40)),
        ("runs/a@b/run@40", ("runs/a@b/run", 40)),  # The last `@` splits.
        ("runs/user@host/run", ("runs/user@host/run", None)),  # No step follows: one path.
        ("runs/d@latest", ("runs/d@latest", None)),  # Only a step number splits.
        ("runs/d@", ("runs/d@", None)),
        ("@40", ("@40", None)),  # No path before it.
    ],
)
def test_split_step(text, expected):
    assert adapters.split_step(text) == expected


def test_a_path_that_exists_wins_over_a_step(tmp_path):
    folder = tmp_path / "run@40"
    folder.mkdir()
    assert adapters.split_step(str(folder)) == (str(folder), None)
    assert adapters.split_step(f"{folder}@7") == (str(folder), 7)


def test_evaluate_reads_the_same_spelling():
    source = run.AdapterSource.parse("depression=runs/user@host/run@40")
    assert (source.path, source.step, source.condition) == ("runs/user@host/run", 40, "depression")
    assert run.AdapterSource.parse("mine=runs/user@host/run").step is None


def test_peft_folder(tmp_path):
    assert adapters.peft_folder(str(tmp_path)) is None
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert adapters.peft_folder(str(tmp_path)) == str(tmp_path / "adapter")
    assert adapters.peft_folder(str(tmp_path / "adapter")) == str(tmp_path / "adapter")
