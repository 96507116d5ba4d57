"""The pipeline's job graph runner: dependencies, priority, failure, resources; inline and on a
2-worker Dask LocalCluster (one cluster for the module: starting one costs seconds)."""

import json
import os
import time
from pathlib import Path

import pytest

from eg_train.experiment.cluster import local_cluster
from eg_train.experiment.jobs import Job, JobError, check_graph, run_jobs
from eg_train.foundation.errors import ConfigError

FAKE_GPU = "7"  # worker 0 of the test cluster owns "GPU 7" (CUDA_VISIBLE_DEVICES=7); no CUDA is used


@pytest.fixture(scope="module")
def cluster():
    """LocalCluster(n_workers=2, processes=True): worker 0 offers GPU: 1, worker 1 nothing."""
    with local_cluster(2, gpus=[FAKE_GPU]) as c:
        yield c.scheduler_address


def _stamp(folder: str, key: str, needs: tuple[str, ...], seconds: float) -> tuple[dict[str, float], str]:
    """A job that refuses to start before its dependencies' stamps exist, then writes its own."""
    missing = [d for d in needs if not (Path(folder) / f"{d}.json").is_file()]
    if missing:
        raise AssertionError(f"{key} started before {missing}")
    start = time.time()
    time.sleep(seconds)
    stamp = {"start": start, "end": time.time(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}
    (Path(folder) / f"{key}.json").write_text(json.dumps(stamp))
    return {f"{key}_s": seconds}, key.upper()


def _fail(message: str) -> tuple[dict[str, float], None]:
    raise RuntimeError(message)


def _job(folder: Path, key: str, *deps: str, seconds: float = 0.0, **kw) -> Job:
    return Job(key, _stamp, (str(folder), key, deps, seconds), deps, **kw)


def _graph(folder: Path, seconds: float = 0.0) -> list[Job]:
    def job(key, *deps):
        return _job(folder, key, *deps, seconds=seconds)

    return [job("a"), job("b"), job("c", "a"), job("d", "a", "b"), job("e", "c", "d")]


def _stamps(folder: Path, keys) -> dict[str, dict]:
    return {k: json.loads((folder / f"{k}.json").read_text()) for k in keys}


def test_check_graph_refuses_duplicates_unknown_deps_and_cycles():
    ok = Job("a", _fail, ("x",))
    with pytest.raises(ValueError, match="duplicate job keys: \\['a'\\]"):
        check_graph([ok, ok])
    with pytest.raises(ValueError, match="'b' depends on unknown jobs \\['z'\\]"):
        check_graph([ok, Job("b", _fail, ("x",), ("z",))])
    with pytest.raises(ValueError, match="cycle among jobs \\['b', 'c'\\]"):
        check_graph([ok, Job("b", _fail, ("x",), ("c",)), Job("c", _fail, ("x",), ("b", "a"))])
    with pytest.raises(ValueError, match="cycle among jobs \\['d'\\]"):  # a job needing itself
        check_graph([ok, Job("d", _fail, ("x",), ("d",))])
    check_graph(_graph(Path(".")))  # a diamond is fine


def test_a_bad_graph_is_refused_before_any_job_runs(tmp_path, cluster):
    jobs = [_job(tmp_path, "a"), _job(tmp_path, "b", "c"), _job(tmp_path, "c", "b")]
    with pytest.raises(ValueError, match="cycle"):
        run_jobs(jobs, 2, scheduler_address=cluster)
    assert list(tmp_path.iterdir()) == []


def test_inline_runs_in_priority_order_once_deps_are_done(tmp_path):
    seen: list[tuple[str, dict]] = []
    jobs = _graph(tmp_path)
    values = run_jobs([jobs[4], jobs[3], jobs[2], jobs[1], jobs[0]], 1, lambda k, t: seen.append((k, t)))
    assert values == {k: k.upper() for k in "abcde"}
    # listed e, d, c, b, a: the first ready one in list order starts first
    assert [k for k, _ in seen] == ["b", "a", "d", "c", "e"]
    assert seen[0][1] == {"b_s": 0.0}


def test_cluster_workers_respect_dependencies_and_overlap_independent_jobs(tmp_path, cluster):
    seen: list[str] = []
    values = run_jobs(_graph(tmp_path, seconds=0.5), 2, lambda k, t: seen.append(k), scheduler_address=cluster)
    assert values == {k: k.upper() for k in "abcde"}
    assert sorted(seen) == list("abcde") and seen[-1] == "e"
    t = _stamps(tmp_path, "abcde")
    for job, deps in {"c": "a", "d": "ab", "e": "cd"}.items():
        assert all(t[job]["start"] >= t[d]["end"] for d in deps), job
    assert t["b"]["start"] < t["a"]["end"] and t["a"]["start"] < t["b"]["end"]  # a and b ran at once
    assert t["a"]["pid"] != t["b"]["pid"] and os.getpid() not in {s["pid"] for s in t.values()}  # worker processes


def test_cluster_starts_ready_jobs_in_list_order(tmp_path, cluster):
    keys = ["p0", "p1", "p2", "p3", "p4"]
    run_jobs([_job(tmp_path, k, seconds=0.4) for k in keys], 2, scheduler_address=cluster)
    t = _stamps(tmp_path, keys)
    # Two workers start two ready jobs at once, so neighbours in the list may record their starts in
    # either order; a job never starts before one listed two or more places ahead of it.
    for i in range(len(keys)):
        for j in range(i + 2, len(keys)):
            assert t[keys[i]]["start"] <= t[keys[j]]["start"] + 0.05, (keys[i], keys[j])
    assert {k for k in sorted(keys, key=lambda k: t[k]["start"])[:2]} == {"p0", "p1"}
    # two at a time: each later job starts only once one of the two before it has ended
    for i in range(2, len(keys)):
        assert t[keys[i]]["start"] >= min(t[keys[i - 1]]["end"], t[keys[i - 2]]["end"]) - 0.05, keys[i]


def test_gpu_jobs_get_the_gpu_worker_one_at_a_time_and_cpu_jobs_the_other(tmp_path, cluster):
    gpu = {"GPU": 1}
    jobs = [_job(tmp_path, "g1", seconds=0.6, resources=gpu), _job(tmp_path, "g2", seconds=0.6, resources=gpu),
            _job(tmp_path, "cpu", seconds=0.6)]
    run_jobs(jobs, 2, scheduler_address=cluster)
    t = _stamps(tmp_path, ["g1", "g2", "cpu"])
    assert t["g1"]["gpu"] == t["g2"]["gpu"] == FAKE_GPU  # the worker that owns the GPU
    assert t["cpu"]["gpu"] is None  # a CPU job leaves the GPU worker to the GPU jobs
    assert t["g2"]["start"] >= t["g1"]["end"]  # the one GPU is never shared
    assert t["cpu"]["start"] < t["g1"]["end"]  # while the CPU job ran beside


def test_a_job_asking_for_resources_no_worker_has_is_refused_not_left_waiting(tmp_path, cluster):
    jobs = [_job(tmp_path, "a"), _job(tmp_path, "two_gpus", "a", resources={"GPU": 2})]
    with pytest.raises(ConfigError, match="job 'two_gpus' needs resources \\{'GPU': 2\\} but no worker"):
        run_jobs(jobs, 2, scheduler_address=cluster)
    # A local cluster on a machine without GPUs: refused before any worker process starts.
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="job 'gpu' needs resources \\{'GPU': 1\\}.*visible CUDA device"):
        run_jobs([_job(tmp_path, "cpu"), _job(tmp_path, "gpu", resources={"GPU": 1})], 2, gpus=[])
    assert time.perf_counter() - t < 2 and list(tmp_path.iterdir()) == []


def _failing_graph(folder: Path) -> list[Job]:
    return [_job(folder, "slow", seconds=1.0), Job("bad", _fail, ("no model",)),
            _job(folder, "after_bad", "bad"), _job(folder, "later", "slow")]


def _assert_failure_kept_the_running_job(folder: Path, run):
    done: list[str] = []
    with pytest.raises(JobError, match="job 'bad' failed: no model") as err:
        run(lambda k, t: done.append(k))
    assert done == ["slow"]  # the running job finished and was recorded; nothing new started
    assert not (folder / "after_bad.json").exists() and not (folder / "later.json").exists()
    return err


def test_inline_failure_stops_new_jobs(tmp_path):
    jobs = [_job(tmp_path, "slow"), Job("bad", _fail, ("no model",)), _job(tmp_path, "later", "slow")]
    done: list[str] = []
    with pytest.raises(JobError, match="job 'bad' failed: no model"):
        run_jobs(jobs, 1, lambda k, t: done.append(k))
    assert done == ["slow"] and not (tmp_path / "later.json").exists()


def test_cluster_failure_stops_new_jobs_and_keeps_finished_ones(tmp_path, cluster):
    err = _assert_failure_kept_the_running_job(
        tmp_path, lambda rec: run_jobs(_failing_graph(tmp_path), 2, rec, scheduler_address=cluster))
    assert "jobs not started: 2" in str(err.value)


@pytest.mark.slow
def test_own_local_cluster_failure_stops_new_jobs_and_keeps_finished_ones(tmp_path):
    """The default path: run_jobs starts (and closes) its own LocalCluster."""
    _assert_failure_kept_the_running_job(tmp_path, lambda rec: run_jobs(_failing_graph(tmp_path), 2, rec))


def test_an_unreachable_scheduler_is_a_one_line_error():
    import dask
    import dask.distributed  # noqa: F401  (its config defaults first, so the override does not replace them)

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(ConfigError, match="scheduler_address 'tcp://127.0.0.1:9': cannot reach"):
        run_jobs([Job("a", _fail, ("x",)), Job("b", _fail, ("x",))], 2, scheduler_address="tcp://127.0.0.1:9")


@pytest.mark.slow  # ~2 min on 2 loaded cores; tests/eg_train/experiment/test_pipeline.py runs workers=2 unmarked
def test_a_tiny_pipeline_graph_runs_on_the_cluster(tmp_path, tiny_spec, cluster):
    from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, run_pipeline
    from eg_train.foundation.data import DataSpec

    cfg = PipelineConfig(
        out_dir=str(tmp_path / "out"), data=DataSpec(**tiny_spec), k_shot=2, train_config="configs/demo.yaml",
        train={"trainer": {"max_epochs": 1, "enable_progress_bar": False},
               "data": {"batch_size": 3, "val_per_class": 1}, "model": {"ig": {"calibration_resolution": 8}}},
        seeds=[0], llm="smollm2-135m-instruct", priors={"demonstrations_per_class": 0}, n_samples=8,
        variants=[TrainedVariant("ce"), TrainedVariant("lime", ["lime"], recipe="fixed")], test_subset=None,
        faithfulness_examples=3, eval_ig_steps=4, workers=2, scheduler_address=cluster,
    )
    summary = run_pipeline(cfg)
    assert [Path(p).name.rsplit("-", 1)[0] for p in summary["runs"]] == ["ce-seed0", "lime-seed0"]  # <label>-<key>
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    for key in ("priors_lime_s", "train_ce_seed0_s", "train_lime_seed0_s", "eval_lime_seed0_s"):
        assert timings[key] > 0, key  # recorded by the driver as each job ended on a worker
    assert (tmp_path / "out" / "runs" / "lime-seed0" / "model" / "config.json").is_file()
    assert json.loads((tmp_path / "out" / "eval" / "lime-seed0" / "metrics.json").read_text())["clean"]["accuracy"] >= 0
