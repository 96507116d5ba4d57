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

import numpy as np

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


def choose_on_validation(models: dict[str, Any]) -> str | None:
    """The variant (not CE) with the lowest mean validation reliance, ties to the higher validation
    counter-shortcut accuracy; None when no variant has validation metrics."""
    have = {k: v["metrics"] for k, v in models.items() if k != "ce" and "val_shortcut_reliance" in v["metrics"]}
    if not have:
        return None
    return min(have, key=lambda k: (have[k]["val_shortcut_reliance"]["mean"], -have[k]["val_counter_accuracy"]["mean"]))


def _targets(models: dict[str, Any], n_seeds: int) -> dict[str, Any] | None:
    """The issue's targets for the prior variant chosen on validation (all seeds run)."""
    ce = models.get("ce")
    done = {k: v for k, v in models.items() if k != "ce" and len(v["seeds"]) == n_seeds and "shortcut_reliance" in v["metrics"]}
    if not ce or not done or len(ce["seeds"]) != n_seeds:
        return None
    best = choose_on_validation(done)
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
    base = models.get("ce", {})
    report_test = getattr(cfg, "report_test", True)
    keys = (METRICS if report_test else []) + VAL_METRICS
    out_models: dict[str, Any] = {}
    for v in cfg.variants:
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
            if both and v.name != "ce":
                row["vs_ce"][k] = {**paired([per_seed[s][k] for s in both], [base[s][k] for s in both]), "seeds": both}
        out_models[v.name] = row
    missing = [f"{v.name}-seed{s}" for v in cfg.variants for s in cfg.seeds if s not in models.get(v.name, {})]
    sizes = {name: {"n": len(ds), "with_artefact": shortcut_metadata(ds)["n_with_artefact"]} for name, ds in data.items()}
    return {
        "dataset": cfg.dataset_name,
        "classes": cfg.data.classes,  # a subset of the intents, or None (all)
        "k_shot": cfg.k_shot,
        "shortcut": {"recipe": meta["recipe"], "recipe_fingerprint": meta["recipe_fingerprint"],
                     "artefacts": dict(zip(meta["label_names"], meta["artefacts"])), "sources": meta["sources"],
                     "splits": sizes},
        "settings": {"seeds": list(cfg.seeds), "n_samples": cfg.n_samples, "llm": cfg.llm, "slm": cfg.slm,
                     "train_config": cfg.train_config, "train": cfg.train,
                     "ig_examples": cfg.ig_examples, "train_ig_examples": cfg.train_ig_examples, "ig_steps": cfg.ig_steps},
        "partial": bool(missing),
        "report_test": report_test,
        "missing": missing,
        "models": out_models,
        "priors": priors,
        "targets": _targets(out_models, len(cfg.seeds)) if report_test else None,
        "chosen_on_validation": choose_on_validation(out_models),
        "timings": timings,
        "pipeline_timings": pipeline_timings,
        "command": command,
        "results": cfg.results,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
    }


def _pct(stat: dict | None, signed: bool = False) -> str:
    if not stat:
        return "–"
    fmt = "+.1f" if signed else ".1f"
    s = f"{100 * stat['mean']:{fmt}}"
    if signed and stat.get("ci95"):
        lo, hi = stat["ci95"]
        return s + f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return s + (f" ± {100 * stat['std']:.1f}" if stat["n"] > 1 else "")


def _minutes(pt: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in pt.items() if k.startswith(prefix)) / 60


def render_markdown(res: dict[str, Any]) -> str:
    """The results file: setup, models, paired differences, per-seed values, priors, targets, time."""
    sc = res["shortcut"]
    recipe = sc["recipe"]
    arts = list(sc["artefacts"].items())
    scope = "" if res.get("classes") is None else f", {len(arts)} of its intents"
    lines = [f"# Shortcut robustness: {res['dataset']} {res['k_shot']}-shot{scope}", "", f"Produced by `{res['command']}`.", ""]
    if res["partial"]:
        lines += [f"**PARTIAL RESULTS**: {len(res['missing'])} trained models are missing "
                  f"({', '.join(res['missing'])}); rerun the command to complete them.", ""]
    splits = sc["splits"]
    lines += [
        f"Artefact: **{recipe['kind']}** (one per class), in {100 * recipe['strength']:.0f} % of each class's training "
        f"and validation texts (rest: {recipe['rest']}), seed {recipe['seed']}; e.g. "
        + ", ".join(f"`{c}` → `{a}`" for c, a in arts[:4]) + f" (recipe fingerprint {sc['recipe_fingerprint']}).",
        f"Training texts {splits['train']['n']} ({splits['train']['with_artefact']} with the artefact); test texts "
        f"{splits['test_clean']['n']} each: clean, counter-shortcut (another class's artefact) and aligned (its own).",
        f"Priors: {res['settings']['llm']} (n = {res['settings']['n_samples']}); model {res['settings']['slm']}; "
        f"training options over `{res['settings']['train_config']}`: `{json.dumps(res['settings']['train'])}`.",
        "",
    ]
    if not res.get("report_test", True):
        return _render_validation(res, lines)
    lines += [
        "Values in %, mean ± sample std over seeds. Reliance: share of counter-shortcut predictions that are the "
        f"artefact's class (chance {100 / max(1, len(arts)):.1f} %). IG share: share of |IG| (towards the predicted "
        f"class) on the artefact word, {res['settings']['ig_examples']} counter-shortcut texts; on the training texts: "
        "towards the gold label, min-max normalised per text as the alignment loss does (compare with the priors below).",
        "",
        "| model | clean acc. | counter-shortcut acc. | aligned acc. | reliance ↓ | IG share on artefact ↓ | IG top-1 on artefact | "
        "IG share on artefact, training texts (min-max) | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in res["models"].items():
        m = row["metrics"]
        lines.append(f"| {name} | " + " | ".join(_pct(m.get(k)) for k in METRICS) + f" | {len(row['seeds'])} |")
    lines += ["", "Difference from CE, paired by seed (points; 95 % t interval over seeds in brackets):", "",
              "| model | clean acc. | counter-shortcut acc. | reliance | IG share |", "|---|---|---|---|---|"]
    for name, row in res["models"].items():
        if name != "ce" and row["vs_ce"]:
            d = row["vs_ce"]
            lines.append(f"| {name} | " + " | ".join(_pct(d.get(k), signed=True) for k in
                                                     ("clean_accuracy", "counter_accuracy", "shortcut_reliance", "ig_share_abs")) + " |")
    lines += _validation_table(res)
    lines += ["", "Per seed (val.: the validation texts made counter-shortcut):", "",
              "| model | seed | clean | counter | aligned | reliance | IG share | val. counter | val. reliance |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, row in res["models"].items():
        for s, m in row["per_seed"].items():
            cells = [f"{100 * m[k]:.1f}" if k in m else "–" for k in METRICS[:5] + VAL_METRICS[1:]]
            lines.append(f"| {name} | {s} | " + " | ".join(cells) + " |")
    if res["priors"]:
        lines += ["", "Prior mass on the artefact (training texts that carry it). |score|: share of absolute scores; "
                  "min-max: share after the per-text min-max normalisation the alignment loss uses (its target); "
                  "uniform: the share of a flat attribution.", "",
                  "| prior | texts | share, \\|score\\| | share, min-max (target) | top-1 | uniform |", "|---|---|---|---|---|---|"]
        for name, p in res["priors"].items():
            lines.append(f"| {name} | {p['n']} | {100 * p['share_abs']:.1f} | {100 * p['share_minmax']:.1f} | "
                         f"{100 * p['top1']:.1f} | {100 * p['uniform']:.1f} |")
    traced = [(name, s, m) for name, row in res["models"].items() for s, m in row["per_seed"].items()
              if "train_beta_median" in m and name != "ce"]
    if traced:
        lines += ["", "The alignment weight during training (logged steps of each run: first / median / last), and for the "
                  "gradient-ratio recipe the measured ‖∇align‖ / ‖∇CE‖ at weight 1 and the CE loss:", "",
                  "| model | seed | β first / median / last | ‖∇align‖/‖∇CE‖ first / median / last | CE first / last |",
                  "|---|---|---|---|---|"]

        def three(m: dict, key: str, fmt: str = ".3g") -> str:
            if f"{key}_median" not in m:
                return "–"
            return " / ".join(f"{m[f'{key}_{w}']:{fmt}}" for w in ("first", "median", "last"))

        for name, s, m in traced:
            ce = f"{m['train_ce_first']:.3f} / {m['train_ce_last']:.3f}" if "train_ce_first" in m else "–"
            lines.append(f"| {name} | {s} | {three(m, 'train_beta')} | {three(m, 'train_grad_ratio')} | {ce} |")
    diag = res.get("alignment_diagnostics") or {}
    if diag:
        lines += ["", "Alignment against CE on training batches (β = 1; medians over batches): the losses, the gradient norms "
                  "over all weights, their ratio and the cosine between the two gradients (< 0: the alignment pulls against CE).",
                  "", "| variant | model | CE loss | align loss | ‖∇CE‖ | ‖∇align‖ | ratio | cosine |", "|---|---|---|---|---|---|---|---|"]
        for name, states in diag.items():
            for state, g in states.items():
                lines.append(f"| {name} | {state} | {g['ce']:.3f} | {g['align']:.4f} | {g['grad_ce']:.3f} | {g['grad_align']:.3f} | "
                             f"{g['ratio_align_over_ce']:.2f} | {g['cosine']:+.3f} |")
    t = res["targets"]
    if t:
        lines += ["", f"Targets (best variant by validation reliance: **{t['best_variant']}**): reliance {100 * t['reliance_ratio']:.0f} % of CE's "
                  f"(halved: {'yes' if t['halves_reliance'] else 'no'}); counter-shortcut accuracy {100 * t['counter_gain']:+.1f} points "
                  f"(≥ +10: {'yes' if t['gains_10_points'] else 'no'}); clean accuracy {100 * t['clean_delta']:+.1f} points "
                  f"(within 1: {'yes' if t['clean_within_1_point'] else 'no'})."]
    pt = res["pipeline_timings"]
    if pt or res["timings"].get("total_s"):
        # The models' shortcut evaluations run inside the pipeline's job graph (beside training);
        # those left over (a resumed or --skip_pipeline run) after it, in this command's timings.
        per_model = _minutes(pt, "shortcut_eval_") + sum(
            v for k, v in res["timings"].items() if k.startswith("shortcut_eval_") and k != "shortcut_eval_s") / 60
        lines += ["", f"Time: this command **{res['timings'].get('total_s', 0) / 60:.1f} min** (pipeline "
                  f"{res['timings'].get('pipeline_s', 0) / 60:.1f} min, then the rest of the shortcut evaluation "
                  f"{res['timings'].get('shortcut_eval_s', 0) / 60:.1f} min, diagnostics after it {res['timings'].get('diagnostics_s', 0) / 60:.1f} min); "
                  f"step times summed over workers: LLM priors {_minutes(pt, 'priors_lime') + _minutes(pt, 'priors_cap'):.1f} min, IG prior "
                  f"{_minutes(pt, 'priors_ig'):.1f} min, training {_minutes(pt, 'train_'):.1f} min, pipeline evaluation {_minutes(pt, 'eval_'):.1f} min, "
                  f"shortcut evaluation of the models {per_model:.1f} min, diagnostics in the pipeline {_minutes(pt, 'diagnostics_s'):.1f} min (machine: {res['machine']['cpus']} CPUs)."]
    return "\n".join(lines) + "\n"


def _validation_table(res: dict[str, Any]) -> list[str]:
    val = next((m["validation"] for row in res["models"].values() for m in row["per_seed"].values()
                if m.get("validation")), {})
    n, per_text = val.get("n_counter"), val.get("artefacts_per_text")
    which = (f"with {per_text} other classes' artefacts (a seeded draw per text)" if per_text
             else "with every other class's artefact")
    lines = ["", "Validation (the settings are chosen on these, never on the test sets): the validation texts clean, and "
             f"each {which} in place of its own{f' ({n} texts)' if n else ''}; % , mean ± std "
             "over seeds, Δ paired with CE [95 % t interval].", "",
             "| model | val. clean acc. | val. counter-shortcut acc. (Δ) | val. reliance ↓ (Δ) | seeds |", "|---|---|---|---|---|"]
    for name, row in res["models"].items():
        m, d = row["metrics"], row["vs_ce"]
        if "val_shortcut_reliance" not in m:
            continue
        delta = lambda k: f" ({_pct(d[k], signed=True)})" if k in d else ""  # noqa: E731
        lines.append(f"| {name} | {_pct(m.get('val_clean_accuracy'))} | {_pct(m.get('val_counter_accuracy'))}"
                     f"{delta('val_counter_accuracy')} | {_pct(m.get('val_shortcut_reliance'))}{delta('val_shortcut_reliance')} | "
                     f"{len(row['seeds'])} |")
    if res.get("chosen_on_validation"):
        lines += ["", f"Lowest validation reliance: **{res['chosen_on_validation']}**."]
    return lines


def _render_validation(res: dict[str, Any], lines: list[str]) -> str:
    """A selection run's file: validation metrics only (the test metrics are not shown)."""
    lines += ["**Selection run**: only validation metrics are reported here; the test sets are not looked at."]
    lines += _validation_table(res)
    lines += ["", "Per seed (β: the alignment weight over the logged training steps, first / median / last):", "",
              "| model | seed | val. clean | val. counter | val. reliance | β | ‖∇align‖/‖∇CE‖ at weight 1 |", "|---|---|---|---|---|---|---|"]
    for name, row in res["models"].items():
        for s, m in row["per_seed"].items():
            trace = [" / ".join(f"{m[f'{key}_{w}']:.3g}" for w in ("first", "median", "last")) if f"{key}_median" in m else "–"
                     for key in ("train_beta", "train_grad_ratio")]
            lines.append(f"| {name} | {s} | " + " | ".join(f"{100 * m[k]:.1f}" if k in m else "–" for k in VAL_METRICS)
                         + " | " + " | ".join(trace) + " |")
    return "\n".join(lines) + "\n"


def write_results(prefix: str | Path, res: dict[str, Any]) -> None:
    """Write ``<prefix>.json`` and ``<prefix>.md``, keeping a hand-written analysis block."""
    prefix = Path(prefix)
    atomic_write_json(prefix.with_suffix(".json"), res)
    md_path = prefix.with_suffix(".md")
    old = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    kept = _ANALYSIS.search(old)
    md = render_markdown(res) + "\n" + (kept.group(0) if kept else "<!-- analysis -->\n<!-- /analysis -->") + "\n"
    atomic_write_text(md_path, md)
