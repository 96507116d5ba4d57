"""Atomic writes and inter-process locks: nothing already written is lost when a process dies.

Every stage writes through these helpers:

- :func:`atomic_write_text` / :func:`atomic_write_json`: a file is written beside its target and
  renamed into place, so readers see the old content or the new, never half of it;
- :func:`atomic_dir`: a folder (``save_pretrained``, ``save_to_disk``) is built in a temporary sibling
  and renamed into place; an existing target is replaced only when asked;
- :func:`locked` / :func:`update_json`: a ``filelock`` lock (the lock is the OS's, so a killed holder
  never leaves a stale lock and there is no window between creating and claiming it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from eg_train.foundation.errors import UserError

__all__ = ["LockedError", "atomic_dir", "atomic_write_json", "atomic_write_text", "locked", "update_json"]


class LockedError(UserError, RuntimeError):
    """Another live process holds the lock (the tools report it in one line: wait, or use another folder)."""


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary sibling + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> Path:
    """``json.dumps(obj, indent=2)`` written atomically."""
    kwargs.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(obj, **kwargs) + "\n")


@contextmanager
def atomic_dir(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes ``target``.

    With ``replace=False`` an existing ``target`` raises :class:`FileExistsError` before any work;
    if another process created ``target`` meanwhile, its copy is kept and ours discarded (both were
    built from the same inputs). With ``replace=True`` the old folder is swapped out and removed.
    On failure the temporary folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    if target.exists() and not replace:
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        yield tmp
        if target.exists():
            if not replace:
                shutil.rmtree(tmp, ignore_errors=True)
                return
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def locked(path: str | os.PathLike, what: str = "", timeout: float = 0) -> Iterator[None]:
    """Hold the ``filelock`` lock ``path`` (created if needed) while the block runs.

    ``timeout=0`` fails at once with :class:`LockedError` naming ``what`` when a live process holds
    it; a positive ``timeout`` waits that many seconds first; ``-1`` waits forever.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LockedError(
            f"{what or path.parent} is in use by another process (lock {path}); wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def update_json(path: str | os.PathLike, update: Callable[[dict], None]) -> dict:
    """Read-modify-write the JSON object at ``path`` under a lock (``<path>.lock``), atomically.

    Several processes may update one file (e.g. the pipeline's ``timings.json``): each sees the
    others' keys. Returns the written object.
    """
    path = Path(path)
    with locked(path.with_name(path.name + ".lock"), timeout=-1):
        data = json.loads(path.read_text()) if path.is_file() else {}
        update(data)
        atomic_write_json(path, data)
    return data
