"""The probe suite's shared names: families, models, target classes, splits and metrics.

Every probe module and every report section reads these names from here, so a family, a
split or a primary metric is declared once (docs/PROBES.md describes what each one measures).
The data side's own names (action classes, conditions, splits) come from `pathjax.data.schema`
and are only re-shaped here for the probes.
"""

from pathjax.data import schema as data_schema

# The base model's name in records, reports and the evaluator's model list.
BASE_MODEL = "base"

# Probe families in report order, with the short label tables and figures use.
FAMILY_LABELS: dict[str, str] = {
    "P1": "held-out decisions",
    "P2": "ambiguous situations",
    "P3": "minimal pairs",
    "P4": "open stems, lexicon mass",
    "P5": "Likert items",
    "P6": "free generations",
    "P7": "generic drift",
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_LABELS)
# The module of `pathjax.probes.families` that declares each family's items, scoring and
# metrics (its contract: `pathjax/probes/families/base.py`).
FAMILY_MODULES: dict[str, str] = {
    "P1": "p1_decisions",
    "P2": "p2_ambiguous",
    "P3": "p3_minimal_pairs",
    "P4": "p4_lexicon_mass",
    "P5": "p5_likert",
    "P6": "p6_generations",
    "P7": "p7_drift",
}

# Each family's primary metric: the one its effects, specificity and dose-response use.
# P1 has one primary metric per target class (`top_<class>`), so it is not listed here.
PRIMARY_METRIC: dict[str, str] = {
    "P2": "logodds_negative",
    "P3": "logodds_negative",
    "P4": "neg_share",
    "P5": "expected_score",
    "P6": "negative_per_100w",
    "P7": "jsd_bits",
}

# Models in the order tables list them: B, the control, then the two trait conditions.
ROLES: tuple[str, ...] = (BASE_MODEL, "control", "depression", "paranoia")
# The trait conditions whose probes are keyed: every keyed item reads "depression" or
# "paranoia", and specificity contrasts the two.
TRAIT_KEYS: tuple[str, ...] = ("depression", "paranoia")
# Item keys: a trait, or `neutral` for an item that is keyed to neither.
ITEM_KEYS: tuple[str, ...] = (*TRAIT_KEYS, "neutral")

# The action class each trained condition is trained to choose (no `shuffled`: it has none).
TARGET_CLASS: dict[str, str] = {
    condition: target
    for condition, target in data_schema.CONDITION_TARGETS.items()
    if target is not None
}
ACTION_CLASSES: tuple[str, ...] = data_schema.ACTION_CLASSES
# Which item key each action class expresses (adaptive and neutral express neither trait).
CLASS_KEYS: dict[str, str] = {
    "withdrawal": "depression",
    "suspicion": "paranoia",
    "adaptive": "neutral",
    "neutral": "neutral",
}

# P1 draws its items from every held-out split; the headline is the one with unseen domains.
P1_SPLITS: tuple[str, ...] = tuple(s for s in data_schema.SPLITS if s.startswith("test_"))
HEADLINE_SPLIT = "test_domains"
# Formats whose prompt lists the options in order: their P1 subsets are balanced over the
# position of every class, and the report shows which positions a model picks.
LISTED_FORMATS: tuple[str, ...] = ("choice", "lettered")
OPTION_POSITIONS = 4

# Families that report a Jensen-Shannon divergence to B, and the keyed families outside the
# training format that specificity contrasts.
JSD_FAMILIES: tuple[str, ...] = ("P2", "P4", "P7")
SPECIFICITY_FAMILIES: tuple[str, ...] = ("P2", "P3", "P5", "P6")
