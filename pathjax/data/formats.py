"""The ways an item is shown to a model: `choice`, `narrative`, `third_person`, `lettered`.

Every format returns a prompt that never ends in a space, and continuations that start with
the boundary space (" I ask Maya ..." or " ask Maya ..."): BPE tokenizers attach a space to
the word that follows it, so this split keeps the target's tokens identical whether the target
is tokenized alone or after its prompt.

The training formats answer with the chosen action's own words, so the decision is the content
of the answer. Version 1's `choice` answered with a letter and then copied that option: a small
model never bound the letter (its validation accuracy stayed at what always answering one
letter scores) and the copy carried no decision. Letter binding is now measured on its own, by
the evaluation-only `lettered` format.
"""

from collections.abc import Sequence

from pathjax.data.perspective import to_third_person

LETTERS = "ABCDEFGHIJ"
CHOICE_QUESTION = "What do I do?"


def _listed(situation: str, options: Sequence[str]) -> str:
    return "\n".join([f"{situation}.", CHOICE_QUESTION, *options, "Answer:"])


def choice(situation: str, actions: Sequence[str]) -> tuple[str, list[str]]:
    """Situation, the options as a dashed list, `Answer:`; continuations " I <action>."."""
    prompt = _listed(situation, [f"- I {action}." for action in actions])
    return prompt, [f" I {action}." for action in actions]


def lettered(situation: str, actions: Sequence[str]) -> tuple[str, list[str]]:
    """Situation, lettered options, `Answer:`; continuations are the letters " A" .. " D"
    (evaluation only: which letter a model names, apart from what it would do)."""
    prompt = _listed(situation, [f"{LETTERS[i]}. I {a}." for i, a in enumerate(actions)])
    return prompt, [f" {LETTERS[i]}" for i in range(len(actions))]


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
    if fmt == "lettered":
        return lettered(situation, actions)
    if fmt == "narrative":
        return narrative(situation, actions)
    if fmt == "third_person":
        return third_person(situation, actions, name)
    raise ValueError(f"Unknown format {fmt!r}; choose choice, narrative, third_person or lettered.")
