"""Where the job graph runs: a Dask distributed cluster, started here or joined.

A local cluster has one worker process per job run at a time (one Dask thread each: a job is a
whole training or prior computation, which parallelises inside torch), and on a CUDA machine the
first workers each own one GPU: the worker's ``CUDA_VISIBLE_DEVICES`` names that GPU alone and it
offers the resource ``GPU: 1``, so a job that asks for ``{"GPU": 1}`` gets a GPU no other job uses.
An existing cluster (``scheduler_address``, e.g. started by dask-jobqueue on SLURM) brings its
own workers and resources; its workers must see the same filesystem as this process (every job
reads and writes files under the run's ``out_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from eg_train.foundation.errors import ConfigError

log = logging.getLogger("eg_train.experiment.cluster")

GPU = "GPU"  # the worker resource a GPU job asks for


@dataclass(frozen=True)
class WorkerSlot:
    """A worker as the job runner sees it: how many jobs it runs at once, what it offers, where."""

    address: str
    nthreads: int
    resources: Mapping[str, float] = field(default_factory=dict)
    host: str = ""


def visible_gpus() -> list[str]:
    """The CUDA devices this process may hand out (ids as ``CUDA_VISIBLE_DEVICES`` names them)."""
    import torch

    count = torch.cuda.device_count()  # respects CUDA_VISIBLE_DEVICES; 0 without a usable GPU
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in env.split(",") if g.strip()] if env is not None else [str(i) for i in range(count)]
    return ids[:count]


def local_worker_specs(workers: int, gpus: Sequence[str]) -> list[dict[str, Any]]:
    """Per-worker options of a local cluster: the first ``len(gpus)`` workers own one GPU each."""
    return [{"resources": {GPU: 1}, "env": {"CUDA_VISIBLE_DEVICES": gpus[i]}} if i < len(gpus) else {}
            for i in range(workers)]


def _nanny_class():
    from dask.distributed import Nanny

    class GpuNanny(Nanny):
        """A worker process that takes its own GPU (if any) from the cluster's per-worker specs."""

        def __init__(self, *args: Any, name: int, specs: Sequence[dict] = (), **kwargs: Any) -> None:
            spec = specs[name] if isinstance(name, int) and name < len(specs) else {}
            if spec.get("env"):
                kwargs["env"] = {**kwargs.get("env", {}), **spec["env"]}
            if spec.get("resources"):
                kwargs["resources"] = {**kwargs.get("resources", {}), **spec["resources"]}
            super().__init__(*args, name=name, **kwargs)

    return GpuNanny


def check_resources(needs: Mapping[str, Mapping[str, float]], slots: Sequence[WorkerSlot]) -> None:
    """Refuse (before anything runs) a job whose resources no single worker offers: it would wait forever."""
    offered = [dict(s.resources) for s in slots]
    for key, want in needs.items():
        if want and not any(all(res.get(r, 0) >= amount for r, amount in want.items()) for res in offered):
            raise ConfigError(
                f"job {key!r} needs resources {dict(want)} but no worker of the cluster offers them "
                f"(workers offer {offered or 'nothing: no workers'}); on a local cluster a GPU job needs a "
                f"visible CUDA device, on an existing one start workers with --resources \"GPU=1\"")


@contextlib.contextmanager
def local_cluster(workers: int, gpus: Sequence[str] = ()) -> Iterator[Any]:
    """A ``LocalCluster`` of ``workers`` single-threaded worker processes on the loopback interface
    (no dashboard, no memory limit: a job may use what it needs), the first ones owning a GPU each."""
    import dask
    from dask.distributed import LocalCluster

    # Worker processes are not daemons, so a job may start processes of its own (DataLoader
    # workers); read again when the nanny restarts a dead worker, hence for the cluster's lifetime.
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, memory_limit=0, worker_class=_nanny_class(),
                               # no dashboard; the scheduler's health endpoint on a free loopback port
                               scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                               # torch imported as each worker starts (in parallel), not in its first job
                               preload=["torch"],
                               specs=local_worker_specs(workers, gpus), silence_logs=logging.WARNING)
        try:
            yield cluster
        finally:
            # Closing, with every result in hand: a worker that imported torch often outlives the
            # nanny's 4 s grace and is killed, which the nanny reports as a warning. Expected here.
            nanny = logging.getLogger("distributed.nanny")
            level = nanny.level
            nanny.setLevel(logging.ERROR)
            try:
                cluster.close()
            finally:
                nanny.setLevel(level)


def worker_slots(client: Any) -> list[WorkerSlot]:
    """The cluster's workers now, ordered by name (a local cluster's 0, 1, ...)."""
    info = client.scheduler_info()["workers"]
    slots = [WorkerSlot(addr, int(w.get("nthreads", 1)), dict(w.get("resources") or {}), w.get("host", ""))
             for addr, w in info.items()]
    return sorted(slots, key=lambda s: (str(info[s.address].get("name", "")).zfill(8), s.address))


def host_shares(slots: Sequence[WorkerSlot]) -> dict[str, int]:
    """How many jobs run at once on each worker's host (the worker's CPUs are divided by this)."""
    per_host: dict[str, int] = {}
    for s in slots:
        per_host[s.host] = per_host.get(s.host, 0) + s.nthreads
    return {s.address: per_host[s.host] for s in slots}


def call_job(fn: Callable[..., Any], args: tuple, threads: int | None, share: int) -> Any:
    """Run one job on a worker: torch gets ``threads`` threads (default: this process's CPUs
    divided among the ``share`` jobs its host runs at once), the project's logs show at INFO."""
    import torch

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Dask sets OMP_NUM_THREADS=1 in its workers; the job's own share of the CPUs is set here.
    torch.set_num_threads(threads or max(1, cpus // max(1, share)))
    return fn(*args)
