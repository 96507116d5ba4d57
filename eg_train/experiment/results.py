"""Results of a pipeline run as a table file pair: ``<prefix>.json`` and ``<prefix>.md``.

Per method: mean ± sample std over seeds of accuracy, macro-F1, comprehensiveness, sufficiency
and adversarial accuracy under each attack; the per-seed difference from the CE baseline (paired
by seed), with 95 % intervals for the accuracy-type metrics (a paired bootstrap over test
examples and seeds, and a paired t interval over seeds: :mod:`eg_train.evaluation.paired`); the
quality of the priors stored in the cache (``eg-priors quality``); prior-computation time per
method (summed per-example compute time stored in the cache) and training / evaluation wall time. A hand-written analysis between the markers
``<!-- analysis -->`` and ``<!-- /analysis -->`` in an existing ``<prefix>.md`` is kept.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

import numpy as np

from eg_train.evaluation.paired import paired_differences
from eg_train.evaluation.report import load_runs, run_values

REFERENCE_NUMBERS = Path(__file__).with_name("data") / "reference_numbers.yaml"


def reference_numbers() -> dict[str, Any]:
    """Published figures quoted for context (``data/reference_numbers.yaml``, docs/design.md#reference-numbers)."""
    import yaml

    return yaml.safe_load(REFERENCE_NUMBERS.read_text(encoding="utf-8"))


_ANALYSIS = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.S)
METRICS = ["accuracy", "macro_f1", "comprehensiveness", "sufficiency"]


def _stats(xs: list[float]) -> dict[str, Any]:
    a = np.asarray(xs, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size), "values": a.tolist()}


def prior_seconds(cache_dir: str | Path) -> dict[str, dict[str, float]]:
    """Per method: examples, summed per-example compute seconds and target-model queries in the cache."""
    from priors.cache import PriorCache

    cache = PriorCache(cache_dir)
    out: dict[str, dict[str, float]] = {}
    if not (Path(cache_dir) / "parts").is_dir():
        return out
    # Three columns read once (no per-method ``filter``: it would write index files into the cache).
    records = cache.records().select_columns(["method", "seconds", "queries"])
    method = np.asarray(records["method"])
    seconds, queries = np.asarray(records["seconds"], dtype=float), np.asarray(records["queries"], dtype=float)
    for m in sorted(set(method.tolist())):
        rows = method == m
        out[m] = {
            "examples": int(rows.sum()),
            "seconds": float(seconds[rows].sum()),
            "seconds_per_example": float(seconds[rows].mean()),
            "queries_per_example": float(queries[rows].mean()),
        }
    return out


def prior_quality(cache_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The quality documents stored in the prior cache (``eg-priors quality``), by ``<method>-<hash>``."""
    from priors.cache import PriorCache
    from priors.quality import stored_quality

    if not (Path(cache_dir) / "parts").is_dir():
        return {}
    return stored_quality(PriorCache(cache_dir))


def collect(eval_dirs: list[str], timings: dict[str, float], cache_dir: str | Path | None, baseline: str = "ce",
            run_timings: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The results dictionary (fractions for metrics, seconds for times).

    ``baseline``: the CE variant's name (the pipeline's ``ce_variant``); ``run_timings``: per
    evaluation folder, the ``timings.json`` keys of its model's ``train`` and ``eval`` steps
    (:meth:`~eg_train.experiment.layout.RunLayout.timing_key`)."""
    runs = load_runs(eval_dirs)
    run_timings = run_timings or {}
    by_method: dict[str, dict[int, dict[str, float]]] = {}
    dirs: dict[str, dict[int, str]] = {}
    for r in runs:
        by_method.setdefault(r["method"], {})[int(r["seed"])] = run_values(r)
        dirs.setdefault(r["method"], {})[int(r["seed"])] = r["_dir"]
    step_keys = {(r["method"], int(r["seed"])): run_timings.get(str(r["_dir"]), {}) for r in runs}
    attacks = sorted({k.split("/")[0] for vals in by_method.values() for v in vals.values() for k in v if "/" in k})
    metric_names = METRICS + [f"{a}/accuracy" for a in attacks]
    base = by_method.get(baseline, {})
    methods: dict[str, Any] = {}
    for method, per_seed in by_method.items():
        seeds = sorted(per_seed)
        row: dict[str, Any] = {"seeds": seeds, "metrics": {}, "delta_vs_ce": {}}
        for k in metric_names:
            xs = [per_seed[s][k] for s in seeds if k in per_seed[s]]
            if xs:
                row["metrics"][k] = _stats(xs)
            paired = [per_seed[s][k] - base[s][k] for s in seeds if s in base and k in per_seed[s] and k in base[s]]
            if paired and method != baseline:
                row["delta_vs_ce"][k] = _stats(paired)
        train, evals = ([timings[k] for s in seeds if (k := step_keys[method, s].get(step)) in timings]
                        for step in ("train", "eval"))
        row["train_seconds"] = _stats(train) if train else None
        row["eval_seconds"] = _stats(evals) if evals else None
        methods[method] = row
    for method, per_metric in paired_differences(dirs, baseline).items():
        methods[method]["paired_vs_ce"] = per_metric
    return {
        "baseline": baseline,
        "dataset": runs[0]["dataset"],
        "attacks": attacks,
        "methods": methods,
        "priors": prior_seconds(cache_dir) if cache_dir else {},
        "prior_quality": prior_quality(cache_dir) if cache_dir else {},
        "timings": timings,
    }


def render_markdown(res: dict[str, Any], title: str, command: str) -> str:
    """The markdown table file (metrics in %, times in seconds / minutes): ``templates/results.md.j2``."""
    from eg_train.experiment.templating import render

    cols = METRICS + [f"{a}/accuracy" for a in res["attacks"]]
    names = {"macro_f1": "macro-F1", "comprehensiveness": "compr. ↑", "sufficiency": "suff. ↓"}
    paired = {m: r["paired_vs_ce"] for m, r in res["methods"].items() if r.get("paired_vs_ce")}
    quality, quality_n = "", ""
    if res.get("prior_quality"):
        from priors.report import quality_markdown

        quality = quality_markdown(res["prior_quality"]).rstrip("\n")
        quality_n = ", ".join(map(str, sorted({q.get("examples") for q in res["prior_quality"].values()})))
    return render(
        "results.md.j2", title=title, command=command, ds=res["dataset"], cols=cols,
        head=[names.get(c, c.replace("/accuracy", " adv. acc.")) for c in cols], methods=res["methods"],
        baseline=res.get("baseline", "ce"), paired=paired,
        paired_metrics=sorted({k for per in paired.values() for k in per}, key=lambda k: (k != "accuracy", k)),
        quality=quality, quality_n=quality_n, priors=res["priors"], total_s=res.get("total_s"),
        machine=res.get("machine", {}), paper=reference_numbers().get(res.get("dataset_name", ""), None),
    )


def write_results(prefix: str | Path, eval_dirs: list[str], timings: dict[str, float], cache_dir: str | Path | None,
                  dataset_name: str, command: str, title: str, total_s: float | None = None, baseline: str = "ce",
                  run_timings: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Write ``<prefix>.json`` and ``<prefix>.md`` (keeping a hand-written analysis block).

    ``total_s``: wall time of the command that produced the runs; ``baseline`` and ``run_timings``:
    as in :func:`collect`."""
    import torch

    res = collect(eval_dirs, timings, cache_dir, baseline, run_timings)
    res["total_s"] = total_s
    res["dataset_name"] = dataset_name
    res["command"] = command
    res["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                      "python": platform.python_version(), "platform": platform.platform()}
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(res, indent=2))
    md_path = prefix.with_suffix(".md")
    md = render_markdown(res, title, command)
    old = md_path.read_text() if md_path.is_file() else ""
    kept = _ANALYSIS.search(old)
    md += "\n" + (kept.group(0) if kept else "<!-- analysis -->\n<!-- /analysis -->") + "\n"
    md_path.write_text(md)
    return res
