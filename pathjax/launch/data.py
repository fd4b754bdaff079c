r"""Builds the behavioral dataset for one condition and prints examples to read.

    python -m pathjax.launch.data --condition=depression
    python -m pathjax.launch.data --condition=shuffled --size=200 --eval_size=50 --seed=1
    python -m pathjax.launch.data --condition=paranoia --data_dir=/scratch/pathjax_data

Writes array_record files, CARD.md, card.json and train_vocabulary.txt under
<data_dir>/pathjax_behavior/<config>/<version>/ (config = the condition for default sizes and
seed). The default data_dir is the one the configs read (`config.data.data_dir`: `data/` under
the folder you run from), so training with the same condition, sizes and seed finds this data
instead of building it again. A second run with the same flags reuses the data.
"""

from pathjax.launch import common

common.set_hub_access()  # Before anything imports huggingface_hub.

from absl import flags  # noqa: E402

from pathjax import data  # noqa: E402
from pathjax.configs import base  # noqa: E402
from pathjax.data import card  # noqa: E402

_CONDITION = flags.DEFINE_enum("condition", "control", data.CONDITIONS, "Training condition.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    base.get_base_config().data.data_dir,  # Where training and evaluation look for it.
    "Where the TFDS data goes.",
)
_SIZE = flags.DEFINE_integer("size", data.DEFAULT_TRAIN_SIZE, "Training items.")
_EVAL_SIZE = flags.DEFINE_integer(
    "eval_size", data.DEFAULT_EVAL_SIZE, "Items in validation and in each test split."
)
_SEED = flags.DEFINE_integer("seed", data.DEFAULT_SEED, "Sampling seed.")
_WORDINGS = flags.DEFINE_integer(
    "wordings", 0, "Training items from each template's first N wordings per class (0: all)."
)
_EXAMPLES = flags.DEFINE_integer("examples", 2, "Examples to print per split.")


def main(argv: list[str]) -> None:
    del argv
    builder = data.build(
        _CONDITION.value,
        _DATA_DIR.value,
        train_size=_SIZE.value,
        eval_size=_EVAL_SIZE.value,
        seed=_SEED.value,
        wordings=_WORDINGS.value,
    )
    sources = {s: data.Records(src) for s, src in builder.as_data_source().items()}
    print(card.preview(sources, _EXAMPLES.value))
    print(f"Data and card: {builder.data_dir}")


def cli() -> None:
    """The console script (`pathjax-data`, setup.py)."""
    common.run(main)


if __name__ == "__main__":
    cli()
