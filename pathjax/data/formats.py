"""The three ways an item is shown to a model: `choice`, `narrative`, `third_person`.

Every format returns a prompt that never ends in a space, and continuations that start with
the boundary space (" B. I ask Maya ..." or " ask Maya ..."): BPE tokenizers attach a space to
the word that follows it, so this split keeps the target's tokens identical whether the target
is tokenized alone or after its prompt.
"""

from collections.abc import Sequence

from pathjax.data.perspective import to_third_person

LETTERS = "ABCDEFGHIJ"
CHOICE_QUESTION = "What do I do?"


def choice(situation: str, actions: Sequence[str]) -> tuple[str, list[str]]:
    """Situation, lettered first-person options, `Answer:`; continuations " A. I <action>."."""
    options = [f"{LETTERS[i]}. I {action}." for i, action in enumerate(actions)]
    prompt = "\n".join([f"{situation}.", CHOICE_QUESTION, *options, "Answer:"])
    return prompt, [f" {option}" for option in options]


def narrative(situation: str, actions: Sequence[str]) -> tuple[str, list[str]]:
    """The situation told up to the decision ("..., so I"); continuations " <action>."."""
    return f"{situation}, so I", [f" {action}." for action in actions]


def third_person(situation: str, actions: Sequence[str], name: str) -> tuple[str, list[str]]:
    """The same decision about `name`, told with singular "they" (evaluation only)."""
    prompt = f"This is about {name}. {to_third_person(situation)}, so they"
    return prompt, [f" {to_third_person(action)}." for action in actions]


def render(fmt: str, situation: str, actions: Sequence[str], name: str) -> tuple[str, list[str]]:
    """Prompt and per-option continuations of `fmt`; `name` is used by `third_person` only."""
    if fmt == "choice":
        return choice(situation, actions)
    if fmt == "narrative":
        return narrative(situation, actions)
    if fmt == "third_person":
        return third_person(situation, actions, name)
    raise ValueError(f"Unknown format {fmt!r}; choose choice, narrative or third_person.")
