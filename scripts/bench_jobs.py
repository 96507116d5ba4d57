"""The job graph runner's own cost: the Dask runner against the process pool it replaced.

A graph shaped like the pipeline's (two long "priors", trainings that wait for them, evaluations
that wait for their training) of sleeping jobs, run with ``workers=2`` by each runner, interleaved;
the wall time over the graph's ideal schedule is the runner's overhead (process start-up, torch
import in each worker, scheduling). The earlier runner is read from git (``--before``, default the
first commit of this branch's parent: ``main``).

    python scripts/bench_jobs.py                 # 3 rounds, medians and the ratio
    python scripts/bench_jobs.py --rounds 5 --job-seconds 2
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sleep_job(seconds: float) -> tuple[dict[str, float], float]:
    time.sleep(seconds)
    return {}, seconds


def graph(job_cls, s: float) -> tuple[list, float]:
    """2 priors (3s each), 4 trainings (2s; two need both priors), 4 evaluations (s/2); ideal on 2 workers."""
    J = job_cls
    jobs = [J("priors:cap", sleep_job, (3 * s,)), J("priors:lime", sleep_job, (3 * s,))]
    jobs += [J(f"train:ce-{i}", sleep_job, (2 * s,)) for i in range(2)]
    jobs += [J(f"train:hybrid-{i}", sleep_job, (2 * s,), ("priors:cap", "priors:lime")) for i in range(2)]
    jobs += [J(f"eval:{v}-{i}", sleep_job, (s / 2,), (f"train:{v}-{i}",)) for v in ("ce", "hybrid") for i in range(2)]
    # 2 workers: priors ‖ priors (3s), ce ‖ ce (2s), hybrid ‖ hybrid (2s), evals 2 by 2 (2 x s/2)
    return jobs, 3 * s + 2 * s + 2 * s + s


def load_before(rev: str, folder: Path):
    code = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:eg_train/experiment/jobs.py"],
                          check=True, capture_output=True, text=True).stdout
    (folder / "jobs_before.py").write_text(code)
    sys.path.insert(0, str(folder))
    return importlib.import_module("jobs_before")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--job-seconds", type=float, default=1.0)
    ap.add_argument("--before", default="main")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()

    from eg_train.experiment import jobs as after

    before = load_before(args.before, Path(tempfile.mkdtemp()))
    walls: dict[str, list[float]] = {"process pool (before)": [], "dask LocalCluster": []}
    ideal = 0.0
    for r in range(args.rounds):
        for name, mod in (("process pool (before)", before), ("dask LocalCluster", after)):
            jobs, ideal = graph(mod.Job, args.job_seconds)
            t = time.perf_counter()
            mod.run_jobs(jobs, 2)
            walls[name].append(time.perf_counter() - t)
            print(f"round {r}: {name}: {walls[name][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    figures = {"ideal_s": ideal, "rounds": args.rounds, "job_seconds": args.job_seconds,
               "median_wall_s": {k: round(v, 1) for k, v in med.items()},
               "median_overhead_s": {k: round(v - ideal, 1) for k, v in med.items()},
               "dask_over_pool": round(med["dask LocalCluster"] / med["process pool (before)"], 2),
               "walls_s": {k: [round(x, 1) for x in v] for k, v in walls.items()}}
    print(json.dumps(figures, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
