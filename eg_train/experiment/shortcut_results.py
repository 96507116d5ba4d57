"""Results of the shortcut benchmark as ``<prefix>.json`` and ``<prefix>.md``.

Per model variant: the per-seed values of clean / counter-shortcut / aligned accuracy, shortcut
reliance and IG artefact share, their mean ± sample std, and the difference from CE paired by seed
with a 95 % Student-t interval (``mean ± t_{0.975, n-1} · sd / sqrt(n)``; with 3 seeds a bootstrap
has only 10 distinct resamples, so the t interval is the honest choice). Per prior: its artefact
share on the training texts. Every model's validation metrics (``val_*``: the validation texts
made counter-shortcut, :func:`eg_train.experiment.shortcut.counter_validation`) come beside them;
the issue's targets are checked for the variant with the lowest *validation* reliance (chosen
without looking at the test sets). With ``report_test`` false only the validation metrics are
written (a run that chooses a recipe). A hand-written analysis between ``<!-- analysis -->`` and ``<!-- /analysis -->`` in an
existing ``<prefix>.md`` is kept.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any


from eg_train.experiment.layout import RunId
from eg_train.experiment.pipeline import ce_variant
from eg_train.evaluation.statistics import paired_t, stats, t975  # noqa: F401 (t975: re-exported)
from eg_train.foundation.data.shortcut import shortcut_metadata
from eg_train.foundation.io import atomic_write_json, atomic_write_text

METRICS = ["clean_accuracy", "counter_accuracy", "aligned_accuracy", "shortcut_reliance", "ig_share_abs", "ig_top1",
           "train_ig_share_minmax"]
VAL_METRICS = ["val_clean_accuracy", "val_counter_accuracy", "val_shortcut_reliance"]
# The training trace of a run (eg_train.experiment.shortcut.training_trace): training data only.
TRACE = ("train_beta_", "train_grad_ratio_", "train_ce_", "train_align_")
_ANALYSIS = re.compile(r"<!-- analysis -->.*?<!-- /analysis -->", re.S)
# One implementation of the paired statistics (eg_train.evaluation.statistics); ``paired`` is the
# paired t interval over seeds.
paired = paired_t


def choose_on_validation(models: dict[str, Any], baseline: str = "ce") -> str | None:
    """The variant (not the CE ``baseline``) with the lowest mean validation reliance, ties to the
    higher validation counter-shortcut accuracy; None when no variant has validation metrics."""
    have = {k: v["metrics"] for k, v in models.items() if k != baseline and "val_shortcut_reliance" in v["metrics"]}
    if not have:
        return None
    return min(have, key=lambda k: (have[k]["val_shortcut_reliance"]["mean"], -have[k]["val_counter_accuracy"]["mean"]))


def _targets(models: dict[str, Any], n_seeds: int, baseline: str = "ce") -> dict[str, Any] | None:
    """The issue's targets for the prior variant chosen on validation (all seeds run)."""
    ce = models.get(baseline)
    done = {k: v for k, v in models.items() if k != baseline and len(v["seeds"]) == n_seeds and "shortcut_reliance" in v["metrics"]}
    if not ce or not done or len(ce["seeds"]) != n_seeds:
        return None
    best = choose_on_validation(done, baseline)
    if best is None:
        return None
    row, base = done[best], ce["metrics"]
    rel = row["metrics"]["shortcut_reliance"]["mean"] / max(base["shortcut_reliance"]["mean"], 1e-12)
    gain = row["vs_ce"]["counter_accuracy"]["mean"]
    clean = row["vs_ce"]["clean_accuracy"]["mean"]
    return {
        "best_variant": best, "chosen_on": "validation reliance",
        "reliance_ratio": rel, "halves_reliance": rel <= 0.5,
        "counter_gain": gain, "gains_10_points": gain >= 0.10,
        "clean_delta": clean, "clean_within_1_point": clean >= -0.01,
        "met": rel <= 0.5 and gain >= 0.10 and clean >= -0.01,
    }


def collect(cfg, data, models: dict[str, dict[int, dict]], priors: dict[str, dict], timings: dict[str, float],
            pipeline_timings: dict[str, float], command: str) -> dict[str, Any]:
    """The results dictionary (fractions for metrics, seconds for times)."""
    import torch

    meta = shortcut_metadata(data["train"])
    pcfg = cfg.pipeline
    baseline = ce_variant(pcfg).name
    base = models.get(baseline, {})
    report_test = getattr(cfg, "report_test", True)
    keys = (METRICS if report_test else []) + VAL_METRICS
    out_models: dict[str, Any] = {}
    for v in pcfg.variants:
        per_seed = models.get(v.name, {})
        seeds = sorted(per_seed)
        if not seeds:
            continue
        row: dict[str, Any] = {"priors": list(v.priors), "fusion": v.fusion, "train": v.train,
                               "seeds": seeds,
                               "per_seed": {str(s): per_seed[s] if report_test else
                                            {k: x for k, x in per_seed[s].items() if k in VAL_METRICS or k.startswith(TRACE)}
                                            for s in seeds},
                               "metrics": {}, "vs_ce": {}}
        for k in keys:
            have = [s for s in seeds if k in per_seed[s]]
            if have:
                row["metrics"][k] = stats([per_seed[s][k] for s in have])
            both = [s for s in have if s in base and k in base[s]]
            if both and v.name != baseline:
                row["vs_ce"][k] = {**paired([per_seed[s][k] for s in both], [base[s][k] for s in both]), "seeds": both}
        out_models[v.name] = row
    missing = [RunId.label_for(v.name, s) for v in pcfg.variants for s in pcfg.seeds
               if (v.seeds is None or s in v.seeds or not v.priors) and s not in models.get(v.name, {})]
    sizes = {name: {"n": len(ds), "with_artefact": shortcut_metadata(ds)["n_with_artefact"]} for name, ds in data.items()}
    return {
        "baseline": baseline,
        "dataset": cfg.dataset_name,
        "classes": cfg.data.classes,  # a subset of the intents, or None (all)
        "k_shot": cfg.k_shot,
        "shortcut": {"recipe": meta["recipe"], "recipe_fingerprint": meta["recipe_fingerprint"],
                     "artefacts": dict(zip(meta["label_names"], meta["artefacts"])), "sources": meta["sources"],
                     "splits": sizes},
        "settings": {"seeds": list(pcfg.seeds), "n_samples": pcfg.n_samples, "llm": pcfg.llm, "slm": pcfg.slm,
                     "train_config": pcfg.train_config, "train": pcfg.train,
                     "ig_examples": cfg.ig_examples, "train_ig_examples": cfg.train_ig_examples, "ig_steps": cfg.ig_steps},
        "partial": bool(missing),
        "report_test": report_test,
        "missing": missing,
        "models": out_models,
        "priors": priors,
        "targets": _targets(out_models, len(pcfg.seeds), baseline) if report_test else None,
        "chosen_on_validation": choose_on_validation(out_models, baseline),
        "timings": timings,
        "pipeline_timings": pipeline_timings,
        "command": command,
        "results": cfg.results,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
    }


def _minutes(pt: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in pt.items() if k.startswith(prefix)) / 60


def render_markdown(res: dict[str, Any]) -> str:
    """The results file (``templates/shortcut_results.md.j2``): setup, models, paired differences,
    per-seed values, priors, targets, time; a selection run (``report_test`` false) shows the
    validation metrics only."""
    from eg_train.experiment.templating import render

    sc = res["shortcut"]
    arts = list(sc["artefacts"].items())
    baseline = res.get("baseline", "ce")
    val = next((m["validation"] for row in res["models"].values() for m in row["per_seed"].values()
                if m.get("validation")), {})
    n, per_text = val.get("n_counter"), val.get("artefacts_per_text")
    pt, tm = res["pipeline_timings"], res["timings"]
    time = None
    if pt or tm.get("total_s"):
        # The models' shortcut evaluations run inside the pipeline's job graph (beside training);
        # those left over (a resumed or --skip_pipeline run) after it, in this command's timings.
        per_model = _minutes(pt, "shortcut_eval_") + sum(
            v for k, v in tm.items() if k.startswith("shortcut_eval_") and k != "shortcut_eval_s") / 60
        time = {"total": tm.get("total_s", 0) / 60, "pipeline": tm.get("pipeline_s", 0) / 60,
                "shortcut_eval": tm.get("shortcut_eval_s", 0) / 60, "diagnostics": tm.get("diagnostics_s", 0) / 60,
                "llm_priors": _minutes(pt, "priors_lime") + _minutes(pt, "priors_cap"), "ig_prior": _minutes(pt, "priors_ig"),
                "training": _minutes(pt, "train_"), "evaluation": _minutes(pt, "eval_"), "per_model": per_model,
                "pipeline_diagnostics": _minutes(pt, "diagnostics_s")}
    return render(
        "shortcut_results.md.j2",
        dataset=res["dataset"], k_shot=res["k_shot"], command=res["command"],
        scope="" if res.get("classes") is None else f", {len(arts)} of its intents",
        partial=res["partial"], missing=res["missing"], recipe=sc["recipe"], arts=arts,
        fingerprint=sc["recipe_fingerprint"], splits=sc["splits"], settings=res["settings"],
        train_json=json.dumps(res["settings"]["train"]), report_test=res.get("report_test", True),
        models=res["models"], baseline=baseline, chosen=res.get("chosen_on_validation"),
        val_which=(f"with {per_text} other classes' artefacts (a seeded draw per text)" if per_text
                   else "with every other class's artefact"),
        val_n=f" ({n} texts)" if n else "", val_metrics=VAL_METRICS, metrics=METRICS,
        per_seed_keys=METRICS[:5] + VAL_METRICS[1:], chance=100 / max(1, len(arts)), priors=res["priors"],
        traced=[(name, s, m) for name, row in res["models"].items() for s, m in row["per_seed"].items()
                if "train_beta_median" in m and name != baseline],
        diagnostics=res.get("alignment_diagnostics") or {}, targets=res["targets"], time=time,
        machine=res.get("machine", {}),
    )


def write_results(prefix: str | Path, res: dict[str, Any]) -> None:
    """Write ``<prefix>.json`` and ``<prefix>.md``, keeping a hand-written analysis block."""
    prefix = Path(prefix)
    atomic_write_json(prefix.with_suffix(".json"), res)
    md_path = prefix.with_suffix(".md")
    old = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    kept = _ANALYSIS.search(old)
    md = render_markdown(res) + "\n" + (kept.group(0) if kept else "<!-- analysis -->\n<!-- /analysis -->") + "\n"
    atomic_write_text(md_path, md)
