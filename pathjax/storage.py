"""Files on any storage `etils.epath` reaches: local folders and `gs://` buckets.

Every file pathjax writes into a workdir, report or export, and reads back from one, goes
through here or through `epath.Path` directly, so a workdir may be a bucket path shared by
the hosts of a pod (a `gs://` path needs `gcsfs`, epath's backend for it, on every host).
Paths stay strings at module boundaries; a caller may pass an `epath.Path` or a `pathlib.Path`.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from collections.abc import Callable

from etils import epath

PathLike = str | os.PathLike


class WorkdirNotWritableError(PermissionError):
    """A workdir (or report folder) that pathjax cannot create or write into."""


def is_remote(path: PathLike) -> bool:
    """True for a URI such as `gs://bucket/run`, False for a local path."""
    return "://" in os.fspath(path)


def absolute(path: PathLike) -> str:
    """`path` as an absolute string: a URI as it is, a local path from the current folder."""
    text = os.fspath(path)
    return text if is_remote(text) else os.path.abspath(text)


def _split_scheme(path: str) -> tuple[str, str]:
    scheme, sep, rest = path.partition("://")
    return (scheme + sep, rest) if sep else ("", path)


def relative(path: PathLike, start: PathLike) -> str:
    """`path` relative to `start` (both local, or both on the same bucket)."""
    path_scheme, path_rest = _split_scheme(absolute(path))
    start_scheme, start_rest = _split_scheme(absolute(start))
    if path_scheme != start_scheme:
        raise ValueError(f"{path} and {start} are on different storages.")
    # A leading "/" makes posixpath treat bucket paths as absolute rather than cwd-relative.
    return posixpath.relpath("/" + path_rest.lstrip("/"), "/" + start_rest.lstrip("/"))


def join_normalized(base: PathLike, relative_path: str) -> str:
    """`base/relative_path` with `..` resolved. `os.path.normpath` would turn `gs://b` into
    `gs:/b`, so a URI's scheme is kept apart."""
    scheme, rest = _split_scheme(os.fspath(base))
    if scheme:
        return scheme + posixpath.normpath(posixpath.join(rest, relative_path))
    return os.path.normpath(os.path.join(rest, relative_path))


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write-then-rename: a killed run never leaves a half-written file that looks done.

    On a bucket, epath's rename is a copy and a delete, not an atomic rename; an object
    upload is itself all-or-nothing (readers see the old object or the new one), so the
    worst a crash leaves there is a stray `.tmp` object, never a half-written file.
    """
    target = epath.Path(path)
    tmp = target.parent / (target.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(target)


def write_through_local(folder: PathLike, save: Callable[[str], object]) -> None:
    """`save(local_folder)` for writers that take local folders only (a tokenizer's
    `save_pretrained`): directly for a local `folder`, else into a temporary folder whose
    files are then copied into `folder`."""
    if not is_remote(folder):
        save(os.fspath(folder))
        return
    target = epath.Path(folder)
    with tempfile.TemporaryDirectory() as local:
        save(local)
        for root, _, names in os.walk(local):
            for name in names:
                source = os.path.join(root, name)
                copy = target / os.path.relpath(source, local)
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(epath.Path(source).read_bytes())


def check_writable(folder: PathLike, what: str = "Workdir") -> None:
    """Creates `folder` and writes (then deletes) a small file in it, so a folder that
    cannot be written fails at the start, naming the fix, rather than hours later at the
    first checkpoint or report."""
    path = epath.Path(folder)
    # Unique per call: the processes of a pod may check one shared folder at once.
    probe = path / f".pathjax-write-check-{uuid.uuid4().hex}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("pathjax")
        probe.unlink()
    # Each backend raises its own errors (OSError locally, gcsfs's HttpError on a bucket,
    # ImportError without a backend for the scheme): all of them mean "not writable here".
    except Exception as error:
        hint = (
            "install gcsfs on every host and give their credentials write access to the bucket"
            if is_remote(folder)
            else "choose a folder you may write (check its permissions and free space)"
        )
        raise WorkdirNotWritableError(
            f"{what} {os.fspath(folder)} is not writable ({type(error).__name__}: {error}). "
            f"Pass another --workdir, or {hint}."
        ) from error
