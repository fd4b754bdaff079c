"""orbax checkpoints of a LoRA run: the train state plus JSON metadata, resumable exactly.

The metadata holds what a resume must agree with (model identity, dataset name and version),
the data iterator state, the config and library versions. A latest checkpoint that cannot be
read is reported and the previous one is tried, so a crash during a save loses one interval.
"""

from __future__ import annotations

import logging as py_logging
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import preservation_policy, save_decision_policy

from pathjax import storage


class CheckpointMismatchError(ValueError):
    """A resume whose model or dataset differs from the checkpoint's."""


class NoUsableCheckpointError(RuntimeError):
    """Every checkpoint in the directory failed to restore."""


class _ReadOnlyNotice(py_logging.Filter):
    """Drops orbax's warning that a read-only manager's folder is read-only: pathjax opens
    managers read-only on purpose (evaluation, export), and every restore printed it."""

    def filter(self, record: py_logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Given directory is read only")


_READ_ONLY_NOTICE = _ReadOnlyNotice()


# A resume must agree on these; other metadata (config, versions) is informational.
MUST_MATCH = ("layout", "model", "adapters", "dataset")


class Checkpointer:
    """An orbax CheckpointManager with pathjax's two items, `state` and `meta`.

    Saving every `every` steps and keeping the newest `keep` are orbax policies
    (FixedIntervalPolicy, LatestN), not the options orbax 0.12 deprecates. `read_only=True`
    (evaluation, export) opens the folder without creating, saving or deleting anything.
    """

    def __init__(
        self,
        directory: str,
        *,
        every: int = 1,
        keep: int = 1000,
        use_async: bool = True,
        read_only: bool = False,
    ):
        self.directory = storage.absolute(directory)  # Keeps a gs:// scheme intact.
        registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
        for item, save, restore in (
            ("state", ocp.args.StandardSave, ocp.args.StandardRestore),
            ("meta", ocp.args.JsonSave, ocp.args.JsonRestore),
        ):
            registry.add(item, save)
            registry.add(item, restore)
        if read_only:
            py_logging.getLogger("absl").addFilter(_READ_ONLY_NOTICE)  # Added once: a set.
        options = ocp.CheckpointManagerOptions(
            # A read-only manager never saves; an interval would make orbax warn that it
            # reset it to 0.
            save_interval_steps=0 if read_only else 1,
            save_decision_policy=save_decision_policy.FixedIntervalPolicy(every),
            preservation_policy=preservation_policy.LatestN(keep),
            enable_async_checkpointing=use_async and not read_only,
            create=not read_only,
            read_only=read_only,
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, handler_registry=registry
        )

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(
        self,
        step: int,
        state: Any,
        meta: dict[str, Any] | Callable[[], dict[str, Any]],
        *,
        force: bool = False,
    ) -> bool:
        """Saves at every `every`-th step (or when forced). `meta` may be a function: it is
        then called only when a checkpoint is written (it reads package versions, slow to do
        at every step)."""
        if step in self.manager.all_steps():
            return False
        if not (force or self.manager.should_save(step)):
            return False
        if callable(meta):
            meta = meta()
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def restore_latest(
        self, abstract_state: Any, expected: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]] | None:
        """The newest readable checkpoint (or None if there is none); refuses mismatches."""
        steps = self.steps()
        failures = []
        for step in reversed(steps):
            try:
                meta = self.manager.restore(
                    step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
                )["meta"]
            except Exception as e:  # orbax raises many types for torn or corrupt files.
                failures.append((step, e))
                logging.warning(
                    "Checkpoint step %d: metadata unreadable (%s); trying older.", step, e
                )
                continue
            check_compatible(meta, expected, self.directory, step)
            try:
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)),
                )["state"]
            except Exception as e:
                failures.append((step, e))
                logging.warning("Checkpoint step %d: state unreadable (%s); trying older.", step, e)
                continue
            if failures:
                message = (
                    f"Resuming from step {step}: newer checkpoint(s) "
                    f"{[s for s, _ in failures]} in {self.directory} could not be read "
                    f"({type(failures[0][1]).__name__}: {failures[0][1]})."
                )
                logging.warning(message)
                print(f"WARNING: {message}")
            return restored, meta
        if failures:
            raise NoUsableCheckpointError(
                f"No checkpoint in {self.directory} could be restored (steps "
                f"{[s for s, _ in failures]}; first error: {failures[0][1]}). Move the directory "
                "away to start afresh."
            )
        return None

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of checkpoint `step` (identity, iterator states, configs)."""
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]

    def restore_state(self, step: int, abstract_state: Any) -> Any:
        """The state of checkpoint `step`, laid out like `abstract_state` (no fallback)."""
        return self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
        )["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def check_compatible(meta: dict, expected: dict, directory: str, step: int) -> None:
    """Refuses a checkpoint that disagrees with `expected` on a MUST_MATCH field it names."""
    for field in (f for f in MUST_MATCH if f in expected):
        saved, wanted = meta.get(field), expected[field]
        if saved == wanted:
            continue
        where = f"The checkpoint at step {step} in {directory}"
        if field == "layout" and saved is None:
            raise CheckpointMismatchError(
                f"{where} predates stacked runs (no layout); this version writes {wanted!r}. "
                "Retrain into a new workdir, or load it with the pathjax version that wrote it."
            )
        if field == "adapters":
            names = lambda runs: [r.get("name") for r in runs or []]  # noqa: E731
            only_saved = [r for r in saved or [] if r not in wanted]
            only_wanted = [r for r in wanted if r not in (saved or [])]
            raise CheckpointMismatchError(
                f"{where} trained adapters {names(saved)}; this run asks for {names(wanted)} "
                f"(only in the checkpoint: {only_saved}; only in this run: {only_wanted}"
                f"{'; same adapters, another order' if not only_saved + only_wanted else ''}). "
                "Resume with the same adapters in the same order, or use a new workdir."
            )
        raise CheckpointMismatchError(
            f"{where} was made with {field} {saved!r}, but this run uses {wanted!r}. Use a "
            "new workdir for a different model or dataset, or restore the original config."
        )


def is_primary() -> bool:
    return jax.process_index() == 0
