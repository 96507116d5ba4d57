"""Run the pipeline's steps as a job graph: each job starts as soon as the jobs it needs are done.

The steps differ widely in length (an LLM prior takes a quarter of an hour, a CE run two minutes, an
evaluation seconds) and in what they need (an aligned run needs only its own priors). Phases with a
barrier between them leave workers idle; a graph keeps every worker busy while any job is ready.

A job returns ``({timing key: seconds}, value)``. Among ready jobs, the one listed first starts
first (list order is the priority). When a job fails no new job starts; the running ones finish
and are recorded (a resumed run skips them), then the first error is raised.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

log = logging.getLogger("eg_train.experiment.jobs")

JobResult = tuple[dict[str, float], Any]


@dataclass(frozen=True)
class Job:
    """One step: ``fn(*args)`` (picklable, for worker processes) once every job in ``deps`` is done."""

    key: str
    fn: Callable[..., JobResult]
    args: tuple = ()
    deps: tuple[str, ...] = ()


class JobError(RuntimeError):
    """A job failed; the message names it."""


def check_graph(jobs: Sequence[Job]) -> None:
    """Refuse duplicate keys, unknown dependencies and cycles (before anything runs)."""
    counts = Counter(j.key for j in jobs)
    dup = sorted(k for k, n in counts.items() if n > 1)
    if dup:
        raise ValueError(f"duplicate job keys: {dup}")
    known = set(counts)
    for j in jobs:
        missing = [d for d in j.deps if d not in known]
        if missing:
            raise ValueError(f"job {j.key!r} depends on unknown jobs {missing}")
    done: set[str] = set()
    left = list(jobs)
    while left:
        ready = [j for j in left if set(j.deps) <= done]
        if not ready:
            raise ValueError(f"dependency cycle among jobs {sorted(j.key for j in left)}")
        done.update(j.key for j in ready)
        left = [j for j in left if j.key not in done]


def _next_ready(pending: list[Job], done: Mapping[str, Any]) -> Job | None:
    """The first pending job (list order is the priority) whose dependencies are all done."""
    return next((j for j in pending if set(j.deps) <= done.keys()), None)


def _init_worker(threads: int) -> None:
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)


def run_jobs(jobs: Sequence[Job], workers: int,
             on_done: Callable[[str, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Run the graph, ``workers`` jobs at a time in spawned processes (inline for one worker);
    ``on_done(key, timings)`` as each job finishes. Returns ``{key: value}``."""
    check_graph(jobs)
    values: dict[str, Any] = {}

    def finished(job: Job, result: JobResult) -> None:
        spent, values[job.key] = result
        if on_done is not None:
            on_done(job.key, spent)

    if workers <= 1 or len(jobs) <= 1:
        pending = list(jobs)
        while pending:
            job = _next_ready(pending, values)  # never None: the graph is checked acyclic
            pending.remove(job)
            try:
                finished(job, job.fn(*job.args))
            except Exception as err:
                raise JobError(f"job {job.key!r} failed: {err}") from err
        return values

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = list(jobs)
    running: dict = {}
    failure: tuple[str, BaseException] | None = None
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        while pending or running:
            while failure is None and len(running) < workers:
                job = _next_ready(pending, values)
                if job is None:
                    break
                pending.remove(job)
                running[pool.submit(job.fn, *job.args)] = job
                log.info("job started: %s (%d running, %d waiting)", job.key, len(running), len(pending))
            if not running:
                break  # a failure left the rest unstartable
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                try:
                    finished(job, fut.result())
                except Exception as err:  # keep the others running; report the first failure
                    log.error("job %s failed: %s", job.key, err)
                    failure = failure or (job.key, err)
    if failure is not None:
        key, err = failure
        raise JobError(f"job {key!r} failed: {err} (jobs not started: {len(pending)}; rerun to resume)") from err
    return values
