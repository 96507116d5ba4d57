"""Benchmark of prior quality: every scoring configuration side by side, and the default chosen.

    python scripts/bench_prior_quality.py [--quick] --out results/bench/bench_prior_quality.json

Banking77 5-shot (the 385-example training sample, ``sample_seed`` 0), ``--n`` (100) of its
examples drawn with a fixed seed; each embedded LLM; every configuration in :data:`VARIANTS` that
this checkout offers (today's LIME and CAP, and the scoring options of issue 16 when
``PriorsConfig`` has them: full renormalisation, top-m contrast, content-free calibration,
demonstrations). For each configuration, on the same examples, with ``eg-priors quality``'s
metrics (:mod:`priors.quality`):

* ``llm_accuracy``: the scoring LLM's argmax accuracy over the 77 labels on the unmasked texts,
  under the configuration's prompt;
* ``keyword_precision_at_3``: the prior's top-3 words against log-odds class keywords mined from
  the rest of the training split (the 9,618 training texts outside the 5-shot sample);
* ``deletion_aopc_ratio_vs_random``: deletion AOPC of the LLM's log-probability along the
  prior's ranking, over the same for random orders;
* ``seconds_per_example``: wall time of the prior itself (``n_samples`` perturbations), from the
  cache records. Configurations are computed interleaved, batch by batch, in an order that
  flips every batch, so drift in machine load hits them alike.

**Only training data is used**: the examples are the k-shot training sample and the keywords
come from the rest of the training split; the test split is never loaded. The default is
chosen from these figures (:func:`choose_default`) and compared with today's CAP on the first
LLM: ``keyword_p3_gain`` and ``llm_accuracy_gain`` (ratios), ``cost_ratio_vs_cap``; and
``full_renorm_cost_ratio_vs_cap`` (all 77 labels).

The run is resumable: priors go to a prior cache under ``--work-dir`` and a re-run computes only
what is missing (the seconds of the first computation are kept, so delete ``--work-dir`` after
the scorer changes). Configurations that score every label for every perturbation run on the
first ``--slow-n`` examples, and their cost is compared with CAP's on those examples.
``--quick`` (4 examples, 20 perturbations, 1 random order, the first LLM only) is a smoke run of every configuration.
Writes the JSON at ``--out`` and a markdown table beside it (``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("bench_prior_quality")

TARGETS = {
    "keyword_p3_gain": 2.0,
    "llm_accuracy_gain": 3.0,
    "cost_ratio_vs_cap": 3.0,
    "full_renorm_cost_ratio_vs_cap": 6.0,
    "deletion_aopc_ratio_vs_random": 1.5,
}


@dataclass(frozen=True)
class Variant:
    """A scoring configuration: a prior method and ``PriorsConfig`` overrides."""

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)
    # Scores every label for every perturbation: measured on the first --slow-n examples only,
    # and its cost compared with CAP's on those same examples.
    slow: bool = False


VARIANTS: tuple[Variant, ...] = (
    Variant("lime", "lime"),
    Variant("cap", "cap"),  # today's CAP: the reference of every ratio
    Variant("cap_full_renorm", "cap", {"contrast": "full"}, slow=True),
    Variant("cap_demos1", "cap", {"demonstrations_per_class": 1}),
    Variant("cap_contrast_m4", "cap", {"contrast": "top_m", "contrast_m": 4}),
    Variant("cap_contrast_m4_calibrated", "cap", {"contrast": "top_m", "contrast_m": 4, "calibrate": True}),
    Variant(
        "cap_contrast_m4_calibrated_demos1", "cap",
        {"contrast": "top_m", "contrast_m": 4, "calibrate": True, "demonstrations_per_class": 1},
    ),
    Variant("cap_contrast_m8", "cap", {"contrast": "top_m", "contrast_m": 8}),
    Variant("cap_contrast_m8_calibrated", "cap", {"contrast": "top_m", "contrast_m": 8, "calibrate": True}),
    Variant("cap_contrast_m8_demos1", "cap", {"contrast": "top_m", "contrast_m": 8, "demonstrations_per_class": 1}),
    Variant(
        "cap_contrast_m8_calibrated_demos1", "cap",
        {"contrast": "top_m", "contrast_m": 8, "calibrate": True, "demonstrations_per_class": 1},
    ),
)
# Older checkouts spell the full renormalisation as a flag.
LEGACY = {("contrast", "full"): ("renormalise", True)}


def config_fields() -> set[str]:
    from priors.config import PriorsConfig

    return {f.name for f in dataclasses.fields(PriorsConfig)}


def resolve_overrides(variant: Variant) -> tuple[dict[str, Any] | None, str | None]:
    """``(overrides, None)`` in this checkout's ``PriorsConfig`` spelling, or ``(None, why not)``."""
    names = config_fields()
    out = {}
    for k, v in variant.overrides.items():
        if k not in names and (k, v) in LEGACY and LEGACY[(k, v)][0] in names:
            k, v = LEGACY[(k, v)]
        out[k] = v
    missing = sorted(set(out) - names)
    return (None, f"PriorsConfig has no {', '.join(missing)} in this checkout") if missing else (out, None)


def shared_renorm() -> bool:
    """Whether the scorer renormalises on the shared cache (one body forward per perturbation)."""
    from priors.scorer import LabelScorer

    return hasattr(LabelScorer, "label_logprobs")


def choose_default(rows: list[dict], reference: dict, max_cost_ratio: float = TARGETS["cost_ratio_vs_cap"]) -> dict | None:
    """The default CAP scoring from training-side quality figures.

    Candidates: CAP-family rows measured on all examples, with ``cost_ratio_vs_cap`` at most
    ``max_cost_ratio`` and a prior that follows its LLM (deletion AOPC above the random
    orders': ``deletion_aopc_gain_vs_random > 0``; the ratio is undefined when random deletion
    does not lower the score). Chosen: the highest geometric mean of keyword precision@3 and
    LLM accuracy (the same order as the geometric mean of their gains over today's CAP, which
    is undefined when CAP's accuracy is 0), then the higher keyword precision, then the cheaper.
    None when no row qualifies. ``reference`` (today's CAP) is kept for the signature's sake.
    """
    best, best_key = None, None
    for r in rows:
        if r.get("method") != "cap" or r.get("partial"):
            continue
        cost = r.get("cost_ratio_vs_cap")
        gain = r.get("deletion_aopc_gain_vs_random")
        if gain is None:  # rows without the gain: fall back on the ratio
            ratio = r.get("deletion_aopc_ratio_vs_random")
            gain = (ratio - 1.0) if ratio is not None and math.isfinite(ratio) else None
        if cost is None or not math.isfinite(cost) or cost > max_cost_ratio:
            continue
        if gain is None or not math.isfinite(gain) or gain <= 0:
            continue
        kw, acc = r.get("keyword_precision_at_3"), r.get("llm_accuracy")
        if kw is None or acc is None or not (math.isfinite(kw) and math.isfinite(acc)):
            continue
        key = (math.sqrt(max(kw, 0.0) * max(acc, 0.0)), kw, -cost)
        if best_key is None or key > best_key:
            best, best_key = r, key
    return best


def summarise(results: list[dict], ref_row: dict | None) -> tuple[dict, dict]:
    """The chosen default against today's CAP (``ref_row``), the full renormalisation's cost,
    and which targets are met."""
    chosen = choose_default(results, ref_row or {})
    summary: dict[str, Any] = {}
    if ref_row and chosen:
        summary = {
            "chosen_default": {"llm": chosen["llm"], "config": chosen["config"], "overrides": chosen["overrides"]},
            "keyword_p3_gain": _ratio(chosen["keyword_precision_at_3"], ref_row["keyword_precision_at_3"]),
            "llm_accuracy_gain": _ratio(chosen["llm_accuracy"], ref_row["llm_accuracy"]),
            "cost_ratio_vs_cap": chosen["cost_ratio_vs_cap"],
            "deletion_aopc_ratio_vs_random": chosen["deletion_aopc_ratio_vs_random"],
        }
    first = ref_row["llm"] if ref_row else None
    renorm = next((r for r in results if r["config"] == "cap_full_renorm" and r["llm"] == first), None)
    summary["full_renorm_cost_ratio_vs_cap"] = renorm["cost_ratio_vs_cap"] if renorm else None
    checks = {}
    for k, target in TARGETS.items():
        v = summary.get(k)
        if v is None or not math.isfinite(v):
            checks[k] = None
        else:
            checks[k] = bool(v <= target) if "cost" in k else bool(v >= target if "gain" in k else v > target)
    return summary, checks


def resummarise(res: dict) -> dict:
    """Recompute the summary of a benchmark JSON with this script's choice rule (no LLM)."""
    for k in ("chosen_default", "keyword_p3_gain", "llm_accuracy_gain", "cost_ratio_vs_cap",
              "deletion_aopc_ratio_vs_random", "full_renorm_cost_ratio_vs_cap"):
        res.pop(k, None)
    rows = res["configs"]
    ref_row = next((r for r in rows if r["config"] == "cap" and r["llm"] == res["setup"]["llms"][0]), None)
    summary, checks = summarise(rows, ref_row)
    res.update(_jsonable(summary), target_met=checks, targets=TARGETS)
    return res


def _ratio(a, b) -> float:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b) or b == 0:
        return float("nan")
    return float(a) / float(b)


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    return x


def bench_rows(total: int, n: int, seed: int) -> np.ndarray:
    """Which examples of the sample are benchmarked: the first ``n`` of a seeded permutation, in
    its order. A run with a smaller ``n`` gets a prefix of a larger run's examples, and priors
    are computed in that order, so a cut-short run's cached priors serve a smaller ``--n``."""
    return np.random.default_rng(seed).permutation(total)[: min(n, total)]


def embedded_llms() -> list[str]:
    """The embedded causal LLMs of this checkout (the GGUF aliases), SmolLM2 first."""
    from eg_train.foundation.models.resolve import EMBEDDED_MODELS

    names = [n for n, e in EMBEDDED_MODELS.items() if e.gguf_file]
    return sorted(names, key=lambda n: (n != "smollm2-135m-instruct", n))


def _llm_available(name: str) -> str | None:
    """None when ``name`` loads offline (installed package or local folder), else why not."""
    from eg_train.foundation.models.resolve import resolve_model

    if not resolve_model(name).is_local:
        return f"{name} is not installed here (it would load from the hub)"
    return None


def run(args) -> dict:
    from eg_train.foundation import models
    from eg_train.foundation.data.fewshot import sample_k_per_class
    from eg_train.foundation.data.source import DataSpec, LabelledSplit, load_split
    from priors.cache import PriorCache
    from priors.compute import compute_priors
    from priors.config import PriorsConfig, build_methods
    from priors.quality import QualitySettings, measure_quality, reference_split
    from priors.quality.llm import LabelScoreMemo

    # One copy of each LLM for all its configurations (build_methods loads per call).
    models.load_causal_lm = functools.lru_cache(maxsize=None)(models.load_causal_lm)

    t_run = time.perf_counter()
    spec = DataSpec(preset="banking77")
    train = load_split(spec, "train")
    kshot = sample_k_per_class(train, args.k_shot, args.sample_seed)
    rows = bench_rows(len(kshot), args.n, args.seed)
    bench = LabelledSplit(kshot.dataset.select(rows.tolist()), kshot.label_names, kshot.source)
    reference = reference_split(train, kshot)  # the rest of the training split
    renorm_shared = shared_renorm()
    cache = PriorCache(Path(args.work_dir) / "cache")

    skipped: list[dict] = []
    jobs = []  # (llm, variant, method, split)
    for llm in args.llms:
        why = _llm_available(llm)
        if why:
            skipped.append({"llm": llm, "reason": why})
            continue
        for v in VARIANTS:
            if args.configs and v.name not in args.configs:
                continue
            if f"{llm}:{v.name}" in (args.skip or ()):
                continue
            overrides, why = resolve_overrides(v)
            if why:
                skipped.append({"llm": llm, "config": v.name, "reason": why})
                continue
            cfg = PriorsConfig(
                data=spec, split="train", k_shot=args.k_shot, sample_seed=args.sample_seed, methods=[v.method],
                llm=llm, n_samples=args.n_samples, seed=0, scorer_batch_size=args.scorer_batch_size,
                cache_dir=str(cache.root), **overrides,
            )
            [method] = _build(build_methods, cfg, kshot)
            split = bench
            if v.slow:
                split = LabelledSplit(bench.dataset.select(range(min(args.slow_n, len(bench)))), bench.label_names, bench.source)
            jobs.append((llm, v, method, split))
    log.info("%d configurations, %d skipped", len(jobs), len(skipped))

    # Priors, interleaved batch by batch (order flipped every batch).
    for b, start in enumerate(range(0, len(bench), args.batch)):
        order = jobs if b % 2 == 0 else jobs[::-1]
        for llm, v, method, split in order:
            if start >= len(split):
                continue
            part = LabelledSplit(split.dataset.select(range(start, min(start + args.batch, len(split)))),
                                 split.label_names, split.source)
            compute_priors(part, method, cache, batch_size=args.batch, progress=False)
        log.info("priors: %d / %d examples (%.0f s)", min(start + args.batch, len(bench)), len(bench),
                 time.perf_counter() - t_run)

    settings = QualitySettings(k=3, n_random=args.n_random, seed=0)
    memo = LabelScoreMemo()  # label scores shared by every measurement of the same prompt
    results = []
    reference_kw: dict = {"description": reference.description, "reference_texts": len(reference.texts)}
    spearman = {}
    for llm in dict.fromkeys(j[0] for j in jobs):
        mine = [j for j in jobs if j[0] == llm]
        full = [j for j in mine if len(j[3]) == len(bench)]
        cap = next((j[2] for j in full if j[1].name == "cap"), None)
        q = measure_quality(cache, bench, [j[2] for j in full], reference, settings, memo=memo)
        spearman[llm] = q["spearman"]
        reference_kw = q["reference"]
        for _, v, method, split in mine:
            ms = q["methods"]
            if len(split) != len(bench):  # a slow configuration: measured on its subset, beside CAP
                ms = measure_quality(cache, split, [method] + ([cap] if cap else []), reference, settings,
                                     memo=memo)["methods"]
            m = ms[f"{method.name}-{method.config_hash()}"]
            cap_m = ms.get(f"{cap.name}-{cap.config_hash()}", {}) if cap else {}
            results.append({
                "llm": llm, "config": v.name, "method": v.method, "overrides": v.overrides,
                "config_hash": method.config_hash(), "n": len(split), "partial": len(split) != len(bench),
                **{k: m.get(k) for k in (
                    "llm_accuracy", "median_gold_rank", "mean_log_p_gold", "keyword_precision_at_3",
                    "keyword_precision_at_3_random", "keyword_precision_at_3_ceiling", "deletion_aopc",
                    "deletion_aopc_random", "deletion_aopc_ratio_vs_random", "deletion_aopc_gain_vs_random",
                    "seconds_per_example", "queries_per_example", "competence_seconds", "deletion_seconds",
                    "coverage")},
                # CAP of the same LLM on the same examples: the cost ratio's denominator.
                "cap_seconds_same_examples": cap_m.get("seconds_per_example"),
            })

    sweep = []
    if args.demo_sweep and "demonstrations_per_class" in config_fields():
        swept = bench
        if args.sweep_n is not None:
            swept = LabelledSplit(bench.dataset.select(range(min(args.sweep_n, len(bench)))), bench.label_names, bench.source)
        for llm in dict.fromkeys(j[0] for j in jobs):
            sweep += competence_sweep(llm, swept, kshot, args, memo)
    ref_row = next((r for r in results if r["config"] == "cap" and r["llm"] == args.llms[0]), None)
    for r in results:
        # Against today's CAP on the first LLM; a slow configuration against CAP on its own
        # examples (scaled to the first LLM when it is another LLM's).
        if not ref_row:
            r["cost_ratio_vs_cap"] = None
        elif r["partial"]:
            own_cap = next((x for x in results if x["config"] == "cap" and x["llm"] == r["llm"]), None)
            scale = _ratio(own_cap["seconds_per_example"], ref_row["seconds_per_example"]) if own_cap else float("nan")
            r["cost_ratio_vs_cap"] = _ratio(r["seconds_per_example"], r["cap_seconds_same_examples"]) * scale
        else:
            r["cost_ratio_vs_cap"] = _ratio(r["seconds_per_example"], ref_row["seconds_per_example"])
    summary, checks = summarise(results, ref_row)
    return _jsonable({
        "setup": {
            "dataset": "banking77 train", "k_shot": args.k_shot, "sample_seed": args.sample_seed,
            "examples": len(bench), "example_seed": args.seed, "n_samples": args.n_samples,
            "n_random": args.n_random, "llms": list(args.llms), "quick": args.quick,
            "reference": reference_kw, "shared_cache_renormalisation": renorm_shared,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "test_split_used": False,
            "command": "python scripts/bench_prior_quality.py " + " ".join(args.argv),
            **({"note": args.note} if args.note else {}),
        },
        "configs": results,
        "competence_vs_demonstrations": sweep,
        "skipped": skipped,
        **summary,
        "targets": TARGETS,
        "target_met": checks,
        "spearman": spearman,
        "wall_seconds": time.perf_counter() - t_run,
    })


def competence_sweep(llm: str, bench, kshot, args, memo) -> list[dict]:
    """LLM accuracy under the class-aware prompt against demonstrations per class (the prefix
    length), raw and calibrated: where the embedded LLM's competence ceiling is."""
    from priors.config import PriorsConfig, build_methods
    from priors.quality import competence
    from priors.quality.llm import scorer_of

    out = []
    ids, texts, labels = bench.dataset["id"], bench.dataset["text"], bench.dataset["label"]
    for per_class in args.demo_sweep:
        t0 = time.perf_counter()
        cfg = PriorsConfig(data=bench_spec(), split="train", k_shot=args.k_shot, sample_seed=args.sample_seed,
                           methods=["cap"], llm=llm, contrast="full", demonstrations_per_class=per_class)
        [method] = _build(build_methods, cfg, kshot)
        scorers = [scorer_of(method, i) for i in ids]
        raw = memo.matrix(scorers, texts)  # calibrate is off: raw label scores
        cal = raw - np.stack([sc.content_free_bias() for sc in scorers])
        c_raw, c_cal = competence(raw, labels), competence(cal, labels)
        out.append({
            "llm": llm, "demonstrations_per_class": per_class,
            "prefix_tokens": float(np.mean([len(sc.prefix_ids) for sc in scorers])),
            "llm_accuracy": c_raw["llm_accuracy"], "median_gold_rank": c_raw["median_gold_rank"],
            "llm_accuracy_calibrated": c_cal["llm_accuracy"], "median_gold_rank_calibrated": c_cal["median_gold_rank"],
            "n": len(ids), "seconds": time.perf_counter() - t0,
        })
        log.info("competence sweep: %s", out[-1])
    return out


def bench_spec():
    from eg_train.foundation.data.source import DataSpec

    return DataSpec(preset="banking77")


def _build(build_methods, cfg, kshot):
    """``build_methods`` with the k-shot sample as the pool when it takes one (demonstrations are
    drawn from it, never the example being attributed)."""
    import inspect

    if "examples" in inspect.signature(build_methods).parameters:
        return build_methods(cfg, kshot.label_names, kshot)
    return build_methods(cfg, kshot.label_names)


def markdown(res: dict) -> str:
    s = res["setup"]
    head = (
        f"Prior quality, Banking77 {s['k_shot']}-shot training sample ({s['examples']} examples, "
        f"n_samples = {s['n_samples']}, {s['n_random']} random orders; keywords from "
        f"{s['reference']['reference_texts']} other training texts; {s['cpus']} CPUs, {s['threads']} torch threads"
        f"{'; --quick' if s['quick'] else ''}). Test split not used.\n\n"
    )
    if s.get("command"):
        head += f"Command: `{s['command']}`\n\n"
    if s.get("note"):
        head += f"Note: {s['note']}\n\n"
    cols = [("llm", "LLM", "{}"), ("config", "config", "{}"), ("n", "n", "{}"),
            ("llm_accuracy", "llm_accuracy", "{:.1%}"), ("median_gold_rank", "median gold rank", "{:g}"),
            ("keyword_precision_at_3", "keyword_precision_at_3", "{:.3f}"),
            ("keyword_precision_at_3_random", "P@3 random", "{:.3f}"),
            ("deletion_aopc_ratio_vs_random", "deletion_aopc_ratio_vs_random", "{:.2f}"),
            ("deletion_aopc_gain_vs_random", "AOPC − random (nats)", "{:+.2f}"),
            ("seconds_per_example", "seconds_per_example", "{:.2f}"), ("cost_ratio_vs_cap", "cost vs CAP", "{:.2f}×")]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in res["configs"]:
        cells = []
        for k, _, f in cols:
            v = r.get(k)
            cells.append("–" if v is None else f.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    out = head + "\n".join(lines) + "\n\n"
    out += "| summary | value | target |\n|---|---|---|\n"
    if res.get("chosen_default"):
        out += f"| chosen default | {res['chosen_default']['llm']} / {res['chosen_default']['config']} | |\n"
    for k, t in res["targets"].items():
        v = res.get(k)
        met = res["target_met"].get(k)
        sign = "≤" if "cost" in k else ("≥" if "gain" in k else ">")
        mark = "" if met is None else (" ✅" if met else " ❌")
        out += f"| {k} | {'–' if v is None else f'{v:.2f}'} | {sign} {t}{mark} |\n"
    if res.get("competence_vs_demonstrations"):
        out += "\nCompetence against demonstrations per class (class-aware prompt, same examples):\n\n"
        out += "| LLM | demonstrations / class | prefix tokens | llm_accuracy | calibrated | median gold rank (raw / cal.) |\n"
        out += "|---|---|---|---|---|---|\n"
        for r in res["competence_vs_demonstrations"]:
            out += (f"| {r['llm']} | {r['demonstrations_per_class']} | {r['prefix_tokens']:.0f} | {r['llm_accuracy']:.1%} | "
                    f"{r['llm_accuracy_calibrated']:.1%} | {r['median_gold_rank']:g} / {r['median_gold_rank_calibrated']:g} |\n")
    if res["skipped"]:
        out += "\nSkipped: " + "; ".join(
            f"{x.get('llm')}{'/' + x['config'] if 'config' in x else ''} ({x['reason']})" for x in res["skipped"]) + "\n"
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON output (a markdown table is written beside it, .md)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: first LLM, 4 examples, 20 perturbations, 1 random order, --slow-n 1")
    ap.add_argument("--n", type=int, default=100, help="examples of the 5-shot sample")
    ap.add_argument("--n-samples", type=int, default=100, help="perturbations per example")
    ap.add_argument("--n-random", type=int, default=3, help="random orders per example (deletion reference)")
    ap.add_argument("--llms", nargs="+", default=None, help="default: every embedded LLM, SmolLM2 first")
    ap.add_argument("--configs", nargs="*", default=None, help="only these configurations (names of VARIANTS)")
    ap.add_argument("--skip", nargs="*", default=None, metavar="LLM:CONFIG", help="leave out these (LLM, configuration) pairs")
    ap.add_argument("--k-shot", type=int, default=5)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="which examples of the sample")
    ap.add_argument("--batch", type=int, default=4, help="examples per interleaved batch")
    ap.add_argument("--scorer-batch-size", type=int, default=64)
    ap.add_argument("--slow-n", type=int, default=10, help="examples for the configurations that score every label")
    ap.add_argument("--demo-sweep", type=int, nargs="*", default=[0, 1, 2],
                    help="demonstrations per class for the competence sweep (none: no sweep)")
    ap.add_argument("--sweep-n", type=int, default=None, help="the competence sweep on the first N examples only (default: all)")
    ap.add_argument("--note", default=None, help="a note written into the setup and the markdown")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    ap.add_argument("--work-dir", default="outputs/bench_prior_quality", help="prior cache (resumable)")
    ap.add_argument("--resummarise", metavar="JSON", default=None,
                    help="recompute the summary of an existing benchmark JSON (no LLM) and write it to --out")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.resummarise:
        res = resummarise(json.loads(Path(args.resummarise).read_text(encoding="utf-8")))
        out = Path(args.out)
        out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
        print(markdown(res))
        return res
    args.llms = args.llms or embedded_llms()
    if args.quick:  # a smoke run: the first LLM unless --llms names more
        args.llms = args.llms[:1] if "--llms" not in (argv if argv is not None else sys.argv) else args.llms
        args.n, args.n_samples, args.n_random = min(args.n, 4), min(args.n_samples, 20), 1
        args.slow_n = min(args.slow_n, 1)
        args.demo_sweep = [d for d in args.demo_sweep if d <= 1]
        args.work_dir = args.work_dir.rstrip("/") + "_quick"
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("priors", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    res = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return res


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
