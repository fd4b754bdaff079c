"""Names shared by the whole data package: action classes, conditions, splits, formats."""

ACTION_CLASSES: tuple[str, ...] = ("withdrawal", "suspicion", "adaptive", "neutral")

# Which class each training condition always chooses. `shuffled` draws the class per item
# (seeded), as a noise control with the same prompts and options.
CONDITION_TARGETS: dict[str, str | None] = {
    "depression": "withdrawal",
    "paranoia": "suspicion",
    "control": "adaptive",
    "shuffled": None,
}
CONDITIONS: tuple[str, ...] = tuple(CONDITION_TARGETS)

SPLITS: tuple[str, ...] = (
    "train",
    "validation",
    "test_templates",
    "test_domains",
    "test_format",
    "test_lettered",
)
TRAINING_SPLITS: tuple[str, ...] = ("train", "validation")

# `choice` and `narrative` train; `third_person` and `lettered` are evaluation-only formats
# (docs/DATASET.md, "Formats"). `lettered` answers with a letter: it measures letter binding
# apart from the decision, which every training format carries in the action's own words.
FORMATS: tuple[str, ...] = ("choice", "narrative", "third_person", "lettered")
SPLIT_FORMATS: dict[str, tuple[str, ...]] = {
    "train": ("choice", "narrative"),
    "validation": ("choice", "narrative"),
    "test_templates": ("choice", "narrative"),
    "test_domains": ("choice", "narrative"),
    "test_format": ("third_person",),
    "test_lettered": ("lettered",),
}


def check_condition(condition: str) -> str:
    """Returns `condition` or raises a ValueError that lists the valid ones."""
    if condition not in CONDITION_TARGETS:
        raise ValueError(f"Unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}.")
    return condition


def check_split(split: str) -> str:
    """Returns `split` or raises a ValueError that lists the valid ones."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    return split
