"""Atomic writes and locks: readers never see half a file, a failed build leaves the target as it was,
a live lock is never taken over, and concurrent read-modify-writes lose no update."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from eg_train.foundation.io import LockedError, atomic_dir, atomic_write_json, locked, update_json


def test_atomic_write_json_replaces_whole_file(tmp_path):
    p = tmp_path / "a" / "m.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"y": 2})
    assert json.loads(p.read_text()) == {"y": 2}
    assert [q.name for q in p.parent.iterdir()] == ["m.json"]  # no temporary left behind


def test_atomic_dir_failure_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "config.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, replace=True) as d:
            (d / "config.json").write_text("new")
            raise RuntimeError("killed mid-write")
    assert (target / "config.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with pytest.raises(FileExistsError):
        with atomic_dir(target):
            pass


def _hold(path, ready, release):
    with locked(path):
        ready.set()
        release.wait(30)


def test_live_lock_is_never_taken_over(tmp_path):
    # The old lock created the file first and wrote the PID later: a reader in between saw an
    # empty owner and unlinked a live lock. An OS lock has no such window.
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    lock = tmp_path / "run.lock"
    holder = ctx.Process(target=_hold, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(LockedError, match="in use by another process"):
            with locked(lock, what="runs/ce-seed0"):
                pass
        assert lock.exists()
    finally:
        release.set()
        holder.join(30)
    with locked(lock):  # released by its holder: free again
        pass


def _increment(path, n):
    for _ in range(n):
        update_json(path, lambda d: d.__setitem__("n", d.get("n", 0) + 1))


def test_update_json_loses_no_concurrent_update(tmp_path):
    path = tmp_path / "timings.json"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(str(path), 25)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert json.loads(path.read_text())["n"] == 75
