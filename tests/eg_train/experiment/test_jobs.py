"""The pipeline's job graph runner: dependencies, priority, failure (inline and in worker processes)."""

import json
import time
from pathlib import Path

import pytest

from eg_train.experiment.jobs import Job, JobError, check_graph, run_jobs


def _stamp(folder: str, key: str, needs: tuple[str, ...], seconds: float) -> tuple[dict[str, float], str]:
    """A job that refuses to start before its dependencies' stamps exist, then writes its own."""
    missing = [d for d in needs if not (Path(folder) / f"{d}.json").is_file()]
    if missing:
        raise AssertionError(f"{key} started before {missing}")
    start = time.time()
    time.sleep(seconds)
    (Path(folder) / f"{key}.json").write_text(json.dumps({"start": start, "end": time.time()}))
    return {f"{key}_s": seconds}, key.upper()


def _fail(message: str) -> tuple[dict[str, float], None]:
    raise RuntimeError(message)


def _graph(folder: Path, seconds: float = 0.0) -> list[Job]:
    def job(key, *deps):
        return Job(key, _stamp, (str(folder), key, deps, seconds), deps)

    return [job("a"), job("b"), job("c", "a"), job("d", "a", "b"), job("e", "c", "d")]


def test_check_graph_refuses_duplicates_unknown_deps_and_cycles():
    ok = Job("a", _fail, ("x",))
    with pytest.raises(ValueError, match="duplicate job keys: \\['a'\\]"):
        check_graph([ok, ok])
    with pytest.raises(ValueError, match="'b' depends on unknown jobs \\['z'\\]"):
        check_graph([ok, Job("b", _fail, ("x",), ("z",))])
    with pytest.raises(ValueError, match="cycle among jobs \\['b', 'c'\\]"):
        check_graph([ok, Job("b", _fail, ("x",), ("c",)), Job("c", _fail, ("x",), ("b", "a"))])


def test_inline_runs_in_priority_order_once_deps_are_done(tmp_path):
    seen: list[tuple[str, dict]] = []
    jobs = _graph(tmp_path)
    values = run_jobs([jobs[4], jobs[3], jobs[2], jobs[1], jobs[0]], 1, lambda k, t: seen.append((k, t)))
    assert values == {k: k.upper() for k in "abcde"}
    # listed e, d, c, b, a: the first ready one in list order starts first
    assert [k for k, _ in seen] == ["b", "a", "d", "c", "e"]
    assert seen[0][1] == {"b_s": 0.0}


def test_workers_respect_dependencies_and_overlap_independent_jobs(tmp_path):
    values = run_jobs(_graph(tmp_path, seconds=0.5), 2)
    assert values == {k: k.upper() for k in "abcde"}
    t = {k: json.loads((tmp_path / f"{k}.json").read_text()) for k in "abcde"}
    for job, deps in {"c": "a", "d": "ab", "e": "cd"}.items():
        assert all(t[job]["start"] >= t[d]["end"] for d in deps), job
    assert t["b"]["start"] < t["a"]["end"] and t["a"]["start"] < t["b"]["end"]  # a and b ran at once


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failure_stops_new_jobs_and_keeps_finished_ones(tmp_path, workers):
    done: list[str] = []
    jobs = [Job("slow", _stamp, (str(tmp_path), "slow", (), 0.5)), Job("bad", _fail, ("no model",)),
            Job("after_bad", _stamp, (str(tmp_path), "after_bad", (), 0.0), ("bad",)),
            Job("later", _stamp, (str(tmp_path), "later", (), 0.0), ("slow",))]
    with pytest.raises(JobError, match="job 'bad' failed: no model"):
        run_jobs(jobs, workers, lambda k, t: done.append(k))
    assert done == ["slow"]  # the running job finished and was recorded; nothing new started
    assert not (tmp_path / "after_bad.json").exists() and not (tmp_path / "later.json").exists()
