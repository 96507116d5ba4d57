"""Per-example correctness of evaluated runs, and paired differences between methods.

An evaluation folder (``eg-eval evaluate``) holds ``predictions.jsonl`` (clean, keyword-attack and
transfer predictions per test example) and, with model-aware recipes, ``model_attacks/`` (one
split per recipe; an example is correct under the adaptive attack when its status is ``failed``:
correctly classified and not flipped). :func:`paired_differences` compares every method with a
baseline on the seeds and examples they share (:mod:`eg_train.evaluation.statistics`).

Metric names are those of :func:`eg_train.evaluation.report.run_values`: ``accuracy``,
``<attack>/accuracy``, ``transfer:<recipe>/accuracy``, ``adaptive:<recipe>/accuracy``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eg_train.evaluation.statistics import paired_bootstrap, paired_t


def per_example_correct(eval_dir: str | Path) -> dict[str, dict[str, int]]:
    """``{metric: {example id: 0/1}}`` of one evaluation folder (module docstring)."""
    eval_dir = Path(eval_dir)
    path = eval_dir / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-example predictions (evaluate the run with `eg-eval evaluate`)")
    out: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ident, gold = str(row["id"]), int(row["label"])
        except (ValueError, KeyError) as err:
            raise ValueError(f"{path}, line {n}: expected a JSON object with id, label and predictions ({err})") from err
        for key, pred in row.items():
            if key in ("id", "label"):
                continue
            if key == "clean":
                name = "accuracy"
            elif key.startswith("transfer/"):
                name = f"transfer:{key.split('/', 1)[1]}/accuracy"
            else:
                name = f"{key}/accuracy"
            out.setdefault(name, {})[ident] = int(int(pred) == gold)
    adaptive = eval_dir / "model_attacks"
    if adaptive.is_dir():
        import datasets

        loaded = datasets.load_from_disk(str(adaptive))
        for recipe in loaded:
            ds = loaded[recipe]
            if "status" not in ds.column_names:
                continue
            out[f"adaptive:{recipe}/accuracy"] = {
                str(i): int(s == "failed") for i, s in zip(ds["id"], ds["status"])
            }
    return out


def paired_differences(
    runs: Mapping[str, Mapping[int, str | Path]], baseline: str = "ce", *, n_boot: int = 10_000, seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {metric: {"bootstrap": ..., "t": ...}}}`` for every method against ``baseline``.

    ``runs``: ``{method: {seed: eval_dir}}``. Per metric, the seeds where both methods have it
    and the examples all those runs scored: ``bootstrap`` is the two-level paired bootstrap over those
    examples and seeds, ``t`` the paired t interval over the per-seed accuracies on them.
    """
    if baseline not in runs:
        return {}
    cache: dict[Path, dict[str, dict[str, int]]] = {}

    def correct(d: str | Path) -> dict[str, dict[str, int]]:
        p = Path(d)
        if p not in cache:
            cache[p] = per_example_correct(p)
        return cache[p]

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method, per_seed in runs.items():
        if method == baseline:
            continue
        common = sorted(set(per_seed) & set(runs[baseline]))
        pairs = {s: (correct(per_seed[s]), correct(runs[baseline][s])) for s in common}
        metrics = sorted({k for mine, base in pairs.values() for k in set(mine) & set(base)})
        for metric in metrics:
            # The seeds where both runs have the metric (the transfer source has no transfer row).
            seeds = [s for s in common if metric in pairs[s][0] and metric in pairs[s][1]]
            runs_m = [d[metric] for s in seeds for d in pairs[s]]
            ids = sorted(set.intersection(*(set(r) for r in runs_m)))
            if not ids:
                continue
            a = np.array([[pairs[s][0][metric][i] for i in ids] for s in seeds], dtype=float)
            b = np.array([[pairs[s][1][metric][i] for i in ids] for s in seeds], dtype=float)
            out.setdefault(method, {})[metric] = {
                "seeds": seeds,
                "examples": len(ids),
                "bootstrap": paired_bootstrap(a, b, n_boot=n_boot, seed=seed).as_dict(),
                "t": paired_t(a.mean(axis=1).tolist(), b.mean(axis=1).tolist()),
            }
    return out


__all__ = ["paired_differences", "per_example_correct"]
