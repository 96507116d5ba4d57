"""Run the pipeline's steps as a job graph: each job starts as soon as the jobs it needs are done.

The steps differ widely in length (an LLM prior takes a quarter of an hour, a CE run two minutes, an
evaluation seconds) and in what they need (an aligned run needs only its own priors). Phases with a
barrier between them leave workers idle; a graph keeps every worker busy while any job is ready.

The graph runs on Dask distributed (:mod:`eg_train.experiment.cluster`): a local cluster of
``workers`` processes, or an existing cluster joined at ``scheduler_address``. One worker (and no
address) runs the jobs in this process, one after the other. Readiness and cycles come from
:class:`graphlib.TopologicalSorter`; this module decides which ready job starts where: a job is sent
only to a worker with a free thread and the resources it asks for (``{"GPU": 1}``), so a started job
runs at once and never queues behind another.

A job returns ``({timing key: seconds}, value)``. Among ready jobs, the one listed first starts
first (list order is the priority). When a job fails no new job starts; the running ones finish
and are recorded (a resumed run skips them), then the first error is raised.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any, Callable, Iterable, Sequence

from eg_train.experiment.cluster import (GPU, WorkerSlot, call_job, check_resources, host_shares, local_cluster,
                                         local_worker_specs, visible_gpus, worker_slots)
from eg_train.foundation.errors import ConfigError

log = logging.getLogger("eg_train.experiment.jobs")

JobResult = tuple[dict[str, float], Any]
OnDone = Callable[[str, dict[str, float]], None]


@dataclass(frozen=True)
class Job:
    """One step: ``fn(*args)`` (picklable, for worker processes) once every job in ``deps`` is done,
    on a worker offering ``resources`` (e.g. ``{"GPU": 1}``: a GPU of its own)."""

    key: str
    fn: Callable[..., JobResult]
    args: tuple = ()
    deps: tuple[str, ...] = ()
    resources: dict[str, float] = field(default_factory=dict, hash=False)


class JobError(RuntimeError):
    """A job failed; the message names it."""


def check_graph(jobs: Sequence[Job]) -> None:
    """Refuse duplicate keys, unknown dependencies and cycles (before anything runs)."""
    counts = Counter(j.key for j in jobs)
    dup = sorted(k for k, n in counts.items() if n > 1)
    if dup:
        raise ValueError(f"duplicate job keys: {dup}")
    for j in jobs:
        missing = [d for d in j.deps if d not in counts]
        if missing:
            raise ValueError(f"job {j.key!r} depends on unknown jobs {missing}")
    try:
        TopologicalSorter({j.key: j.deps for j in jobs}).prepare()
    except CycleError as err:
        raise ValueError(f"dependency cycle among jobs {sorted(set(err.args[1]))}") from None


class _Ready:
    """Jobs whose dependencies are done, in list order (the priority), fed by a TopologicalSorter."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._order = {j.key: i for i, j in enumerate(jobs)}
        self._by_key = {j.key: j for j in jobs}
        self._graph = TopologicalSorter({j.key: j.deps for j in jobs})
        self._graph.prepare()
        self.jobs: list[Job] = []

    def refresh(self) -> list[Job]:
        new = [self._by_key[k] for k in self._graph.get_ready()]
        self.jobs = sorted([*self.jobs, *new], key=lambda j: self._order[j.key])
        return self.jobs

    def done(self, key: str) -> None:
        self._graph.done(key)

    def priority(self, key: str) -> int:
        return len(self._order) - self._order[key]  # Dask runs higher priorities first


def run_jobs(jobs: Sequence[Job], workers: int, on_done: OnDone | None = None, *,
             scheduler_address: str | None = None, threads_per_worker: int | None = None,
             gpus: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the graph; ``on_done(key, timings)`` as each job finishes. Returns ``{key: value}``.

    ``workers``: jobs at once on a local Dask cluster (one process each; 1: in this process).
    ``scheduler_address``: join that cluster instead (its workers, threads and resources count,
    not ``workers``). ``threads_per_worker``: torch threads per job (default: the worker's CPUs
    divided among the jobs its host runs at once). ``gpus``: the CUDA devices a local cluster
    hands out, one per worker (default: those visible, when a job asks for ``GPU``).
    """
    check_graph(jobs)
    if scheduler_address is None and (workers <= 1 or len(jobs) <= 1):
        return _run_inline(jobs, on_done, threads_per_worker)

    from dask.distributed import Client

    needs = {j.key: j.resources for j in jobs if j.resources}
    if scheduler_address is not None:
        try:
            client = Client(scheduler_address, set_as_default=False)  # waits distributed.comm.timeouts.connect
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"scheduler_address {scheduler_address!r}: cannot reach a Dask scheduler ({err})") from err
        with client:
            try:
                client.wait_for_workers(1, timeout=120)
            except TimeoutError:
                raise ConfigError(f"scheduler_address {scheduler_address!r}: no worker joined within 120 s") from None
            check_resources(needs, worker_slots(client))
            return _run_on_cluster(jobs, client, on_done, threads_per_worker)

    wants_gpu = any(GPU in r for r in needs.values())
    gpu_ids = list(gpus) if gpus is not None else (visible_gpus() if wants_gpu else [])
    specs = local_worker_specs(workers, gpu_ids)
    # Known before any process starts: a job the local workers cannot take is refused at once.
    check_resources(needs, [WorkerSlot(str(i), 1, s.get("resources", {})) for i, s in enumerate(specs)])
    if wants_gpu and workers > len(gpu_ids):
        log.warning("%d workers but %d GPUs: GPU jobs run %d at a time (one per GPU)", workers, len(gpu_ids), len(gpu_ids))
    with local_cluster(workers, gpu_ids) as cluster, Client(cluster, set_as_default=False) as client:
        return _run_on_cluster(jobs, client, on_done, threads_per_worker)


def _run_inline(jobs: Sequence[Job], on_done: OnDone | None, threads: int | None) -> dict[str, Any]:
    """One job at a time in this process, in priority order."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    ready = _Ready(jobs)
    values: dict[str, Any] = {}
    while ready.refresh():
        job = ready.jobs.pop(0)
        try:
            spent, value = job.fn(*job.args)
            if on_done is not None:
                on_done(job.key, spent)
            values[job.key] = value
        except Exception as err:
            raise JobError(f"job {job.key!r} failed: {err}") from err
        ready.done(job.key)
    return values


def _free_slot(job: Job, slots: Iterable[WorkerSlot], running: Iterable[tuple[Job, str]]) -> WorkerSlot | None:
    """A worker with a free thread and the job's resources free; among them one offering the fewest
    resources the job does not need (a CPU job leaves the GPU workers to GPU jobs)."""
    running = list(running)
    best: tuple[int, WorkerSlot] | None = None
    for slot in slots:
        there = [j for j, address in running if address == slot.address]
        if len(there) >= slot.nthreads:
            continue
        if any(slot.resources.get(r, 0) - sum(j.resources.get(r, 0) for j in there) < amount
               for r, amount in job.resources.items()):
            continue
        spare = len(set(slot.resources) - set(job.resources))
        if best is None or spare < best[0]:
            best = (spare, slot)
    return best[1] if best else None


def _run_on_cluster(jobs: Sequence[Job], client: Any, on_done: OnDone | None, threads: int | None) -> dict[str, Any]:
    """Send each ready job, in priority order, to a free worker that can take it; record each as it ends."""
    from dask.distributed import as_completed

    ready = _Ready(jobs)
    token = uuid.uuid4().hex[:8]  # a run's task keys never meet an earlier run's on a shared cluster
    running: dict[Any, tuple[Job, str]] = {}
    finished = as_completed(loop=client.loop)
    values: dict[str, Any] = {}
    failures: list[tuple[str, BaseException]] = []
    while True:
        if not failures and ready.refresh():
            slots = worker_slots(client)
            shares = host_shares(slots)
            for job in list(ready.jobs):
                slot = _free_slot(job, slots, running.values())
                if slot is None:
                    continue
                ready.jobs.remove(job)
                # Sent to the chosen worker; allowed elsewhere only if that worker dies (Dask reruns it).
                fut = client.submit(call_job, job.fn, job.args, threads, shares[slot.address], key=f"{job.key}-{token}",
                                    workers=[slot.address], allow_other_workers=True, resources=job.resources or None,
                                    priority=ready.priority(job.key), pure=False)
                running[fut] = (job, slot.address)
                finished.add(fut)
                log.info("job started: %s on %s (%d running, %d ready)", job.key, slot.address, len(running), len(ready.jobs))
        if not running:
            if not failures and ready.jobs:  # the workers able to take them left the cluster
                raise JobError(f"no worker of the cluster can run {[j.key for j in ready.jobs]} "
                               f"(resources {[j.resources for j in ready.jobs]})")
            break
        fut = next(finished)
        job, _ = running.pop(fut)
        try:
            spent, value = fut.result()
            if on_done is not None:
                on_done(job.key, spent)
            values[job.key] = value
        except Exception as err:  # keep the others running; report the first failure
            log.error("job %s failed: %s", job.key, err)
            failures.append((job.key, err))
            continue
        finally:
            fut.release()
        ready.done(job.key)
    if failures:
        key, err = failures[0]
        left = len(jobs) - len(values) - len(failures)
        raise JobError(f"job {key!r} failed: {err} (jobs not started: {left}; rerun to resume)") from err
    return values
