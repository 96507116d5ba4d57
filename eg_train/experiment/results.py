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
    """Published figures quoted for context (``data/reference_numbers.yaml``, SPEC §5)."""
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


def collect(eval_dirs: list[str], timings: dict[str, float], cache_dir: str | Path | None) -> dict[str, Any]:
    """The results dictionary (fractions for metrics, seconds for times)."""
    runs = load_runs(eval_dirs)
    by_method: dict[str, dict[int, dict[str, float]]] = {}
    dirs: dict[str, dict[int, str]] = {}
    for r in runs:
        by_method.setdefault(r["method"], {})[int(r["seed"])] = run_values(r)
        dirs.setdefault(r["method"], {})[int(r["seed"])] = r["_dir"]
    attacks = sorted({k.split("/")[0] for vals in by_method.values() for v in vals.values() for k in v if "/" in k})
    metric_names = METRICS + [f"{a}/accuracy" for a in attacks]
    base = by_method.get("ce", {})
    methods: dict[str, Any] = {}
    for method, per_seed in by_method.items():
        seeds = sorted(per_seed)
        row: dict[str, Any] = {"seeds": seeds, "metrics": {}, "delta_vs_ce": {}}
        for k in metric_names:
            xs = [per_seed[s][k] for s in seeds if k in per_seed[s]]
            if xs:
                row["metrics"][k] = _stats(xs)
            paired = [per_seed[s][k] - base[s][k] for s in seeds if s in base and k in per_seed[s] and k in base[s]]
            if paired and method != "ce":
                row["delta_vs_ce"][k] = _stats(paired)
        train = [timings[f"train_{method}_seed{s}_s"] for s in seeds if f"train_{method}_seed{s}_s" in timings]
        evals = [timings[f"eval_{method}_seed{s}_s"] for s in seeds if f"eval_{method}_seed{s}_s" in timings]
        row["train_seconds"] = _stats(train) if train else None
        row["eval_seconds"] = _stats(evals) if evals else None
        methods[method] = row
    for method, per_metric in paired_differences(dirs, "ce").items():
        methods[method]["paired_vs_ce"] = per_metric
    return {
        "dataset": runs[0]["dataset"],
        "attacks": attacks,
        "methods": methods,
        "priors": prior_seconds(cache_dir) if cache_dir else {},
        "prior_quality": prior_quality(cache_dir) if cache_dir else {},
        "timings": timings,
    }


def _cell(stat: dict | None, scale: float = 100.0, signed: bool = False) -> str:
    if not stat:
        return "–"
    fmt = "+.2f" if signed else ".2f"
    s = f"{scale * stat['mean']:{fmt}}"
    return s + (f" ± {scale * stat['std']:.2f}" if stat["n"] > 1 else "")


def _interval(mean: float, bounds: list[float] | None) -> str:
    """``+m [+lo, +hi]`` in points (just ``+m`` without bounds)."""
    cell = f"{100 * mean:+.2f}"
    return cell + (f" [{100 * bounds[0]:+.2f}, {100 * bounds[1]:+.2f}]" if bounds else "")


def _paired_table(res: dict[str, Any]) -> list[str]:
    """Accuracy-type differences from CE with their 95 % intervals (points)."""
    rows = {m: r["paired_vs_ce"] for m, r in res["methods"].items() if r.get("paired_vs_ce")}
    if not rows:
        return []
    metrics = sorted({k for per in rows.values() for k in per}, key=lambda k: (k != "accuracy", k))
    lines = ["", "Paired difference from CE in points, mean [95 % interval]: first a paired bootstrap over test "
             "examples and seeds (10,000 resamples), then a paired t interval over seeds. An interval that "
             "contains 0 is within noise.", ""]
    lines += ["| method | metric | seeds | examples | bootstrap | t over seeds |", "|---|---|---|---|---|---|"]
    for m, per in rows.items():
        for k in metrics:
            if k not in per:
                continue
            p, b, t = per[k], per[k]["bootstrap"], per[k]["t"]
            lines.append(f"| {m} | {k.replace('/accuracy', '')} | {len(p['seeds'])} | {p['examples']} | "
                         f"{_interval(b['mean'], [b['low'], b['high']])} | {_interval(t['mean'], t.get('ci95'))} |")
    return lines


def render_markdown(res: dict[str, Any], title: str, command: str) -> str:
    """The markdown table file (metrics in %, times in seconds / minutes)."""
    attacks = res["attacks"]
    cols = METRICS + [f"{a}/accuracy" for a in attacks]
    names = {"macro_f1": "macro-F1", "comprehensiveness": "compr. ↑", "sufficiency": "suff. ↓"}
    head = [names.get(c, c.replace("/accuracy", " adv. acc.")) for c in cols]
    lines = [f"# {title}", "", f"Produced by `{command}`.", ""]
    ds = res["dataset"]
    lines += [f"Test set: {ds.get('source', '')} ({ds.get('n', ds.get('size', '?'))} texts, fingerprint {ds.get('fingerprint')}). "
              "Values in %, mean ± sample std over seeds.", ""]
    lines += ["| method | " + " | ".join(head) + " | train s / run |", "|---" * (len(cols) + 2) + "|"]
    for m, row in res["methods"].items():
        cells = [_cell(row["metrics"].get(c)) for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {_cell(row['train_seconds'], 1.0)} |")
    lines += ["", "Difference from the CE baseline, paired by seed (percentage points):", ""]
    lines += ["| method | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, row in res["methods"].items():
        if m != "ce" and row["delta_vs_ce"]:
            lines.append(f"| {m} | " + " | ".join(_cell(row["delta_vs_ce"].get(c), signed=True) for c in cols) + " |")
    lines += _paired_table(res)
    if res.get("prior_quality"):
        from priors.report import quality_markdown

        n = sorted({q.get("examples") for q in res["prior_quality"].values()})
        lines += ["", f"Prior quality (`eg-priors quality` on {', '.join(map(str, n))} examples of the training sample, "
                  "stored in the prior cache):", "", quality_markdown(res["prior_quality"]).rstrip("\n")]
    if res["priors"]:
        lines += ["", "Prior computation (per-example compute time summed from the cache):", "",
                  "| prior | examples | total min | s / example | target queries / example |", "|---|---|---|---|---|"]
        for m, p in res["priors"].items():
            lines.append(f"| {m} | {p['examples']} | {p['seconds'] / 60:.1f} | {p['seconds_per_example']:.2f} | {p['queries_per_example']:.0f} |")
    if res.get("total_s"):
        lines += ["", f"Wall time of the command: **{res['total_s'] / 60:.1f} min** "
                  f"(machine: {res.get('machine', {}).get('cpus', '?')} CPUs, torch threads {res.get('machine', {}).get('torch_threads', '?')})."]
    paper = reference_numbers().get(res.get("dataset_name", ""), None)
    if paper:
        lines += ["", f"For context, {paper['setting']} (SPEC §5; different and much larger models):", ""]
        for setting, rows in paper["results"].items():
            for m, vals in rows.items():
                lines.append(f"- {setting}, {m}: " + ", ".join(f"{k} {v:.2f}" for k, v in vals.items()))
    return "\n".join(lines) + "\n"


def write_results(prefix: str | Path, eval_dirs: list[str], timings: dict[str, float], cache_dir: str | Path | None,
                  dataset_name: str, command: str, title: str, total_s: float | None = None) -> dict[str, Any]:
    """Write ``<prefix>.json`` and ``<prefix>.md`` (keeping a hand-written analysis block).

    ``total_s``: wall time of the command that produced the runs."""
    import torch

    res = collect(eval_dirs, timings, cache_dir)
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
