"""The shortcut suite (issue 25): does a recipe help where a shortcut is and never hurt where none is?

    python -m eg_train.experiment.suite --config configs/suite.yaml
    eg-train suite --config configs/suite.yaml

A documented design of cases (:data:`DESIGN`, not the full cross product of kinds x positions x
strengths x datasets), each one shortcut benchmark (:func:`eg_train.experiment.shortcut.run_shortcut_benchmark`,
called, not copied) with the same variants: CE, the gold-mask **oracle** (CE plus the targeted
penalty ``model.penalty_weight`` on the artefact's known word positions, one model per weight of
``oracle_weights``, in the same pipeline: :func:`case_benchmark_config`) and the
**recipes** under test. Per case and model the record holds clean,
counter-shortcut and worst-group accuracy and reliance (test, and the validation metrics the
selection reads); per case: CE's reliance over its no-shortcut confusion rate (the ``none`` case's
CE on this case's counter-shortcut texts), the oracle weight chosen on validation
(:func:`choose_oracle_weight`) and, for every recipe, the share of the oracle's counter-shortcut
gain over CE it recovers (:func:`oracle_gain_share`).

Resumable: each finished case writes its record ``<records>/<case>.json`` (small: metrics and
per-example predictions, never weights) keyed by the case's configuration hash; a case whose record
matches is never recomputed, and the tables ``<results>.{md,json}`` are assembled from the records
alone (:func:`assemble`), so a new machine loses nothing. ``none`` cases run first (their CE is
every other case's no-shortcut reference on the same data).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eg_train.foundation.data.shortcut import KINDS, ShortcutConfig, planted_count
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.io import atomic_write_json, atomic_write_text

log = logging.getLogger("eg_train.experiment.suite")

# Case data: preset and intents (the first N of the label list; None: all). ``b3`` is for smoke tests.
DATASETS = {"b8": ("banking77", 8), "b77": ("banking77", None), "c15": ("clinc150", 15), "b3": ("banking77", 3)}


@dataclass
class SuiteCase:
    """One case: a dataset and the artefact recipe planted in it.

    Args:
        name: the case's name (its record is ``<records>/<name>.json``).
        data: a :data:`DATASETS` key: ``b8`` Banking77 8 intents, ``b77`` all 77, ``c15`` CLINC150
            15 intents, ``b3`` Banking77 3 intents (smoke tests).
        shortcut: the artefact recipe (:class:`ShortcutConfig`).
        why: what the case tests, for the design table.
    """

    name: str
    data: str
    shortcut: ShortcutConfig
    why: str = ""

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ConfigError(f"suite case {self.name!r}: data must be one of {sorted(DATASETS)}, got {self.data!r}")
        if isinstance(self.shortcut, dict):
            self.shortcut = ShortcutConfig(**self.shortcut)


def _case(name: str, data: str, kind: str, position: str = "random", strength: float = 1.0, rest: str = "clean",
          why: str = "") -> SuiteCase:
    return SuiteCase(name, data, ShortcutConfig(kind=kind, position=position, strength=strength, rest=rest), why)


# The design: every kind once on Banking77-8 (the cheapest), the positions and strengths where they
# matter most (a frequent word or a signature at the end is the natural artefact; strength < 1 with
# rest ``other`` makes the artefact a noisy cue), a ``none`` case per dataset (the never-hurt check
# and the confusion reference), and the two harder datasets on the realistic kinds. At 5 texts per
# class a strength plants a whole number of them (planted_count): 0.8 is 4 of 5, 0.7 is also 4 of 5,
# and 0.9 would be all 5, the same data as 1.0 (the first design's 0.9 cases were; see selected_cases).
DESIGN: tuple[SuiteCase, ...] = (
    _case("b8-none", "b8", "none", why="no artefact: a recipe must not cost clean accuracy"),
    _case("b8-word", "b8", "word", why="today's benchmark kind: an unrelated word, random position, 100 %"),
    _case("b8-frequent-end", "b8", "frequent", "end", why="issue 25's new-user case: an ordinary filler word ending every text"),
    _case("b8-frequent-end-80-other", "b8", "frequent", "end", 0.8, "other", why="the same cue on 4 of 5 texts, the 5th carrying another class's"),
    _case("b8-phrase-end", "b8", "phrase", "end", why="a signature ('sent from my phone') per class"),
    _case("b8-phrase-start-70", "b8", "phrase", "start", 0.7, "clean", why="a greeting template on 70 % of texts"),
    _case("b8-decoy", "b8", "decoy", why="a nonce token: the easiest shortcut to see"),
    _case("b77-none", "b77", "none", why="all 77 intents without artefact"),
    _case("b77-frequent-end", "b77", "frequent", "end", why="77 filler words: many classes, 5 texts each"),
    _case("c15-none", "c15", "none", why="a second dataset without artefact"),
    _case("c15-frequent-random-80-other", "c15", "frequent", "random", 0.8, "other", why="a noisy cue anywhere in the text"),
    _case("c15-phrase-end", "c15", "phrase", "end", why="signatures on CLINC150"),
)
assert {c.shortcut.kind for c in DESIGN} == set(KINDS), "the design covers every builder kind"


def _default_recipes() -> list[dict]:
    # The recipe rule of docs/recipe.md (a variant with priors and no training overrides).
    return [{"name": "rule", "priors": ["lime", "cap"]}]


@dataclass
class SuiteConfig:
    """What the suite runs: the cases, the per-case benchmark settings, the oracle grid, the recipes.

    Args:
        out_dir: where the cases' benchmarks run (``<out_dir>/<case>``).
        records: the folder of the per-case records ``<case>.json`` (small; commit them).
        results: the stem of the assembled ``<results>.md`` / ``.json`` (None: not written).
        cases: names of :data:`DESIGN` to run (None: all of them; ``[]``: only ``extra_cases``).
        extra_cases: further cases as ``{name, data, shortcut}`` mappings (:class:`SuiteCase`).
        benchmark: :class:`eg_train.experiment.shortcut.ShortcutBenchmarkConfig` fields shared by
            every case (``val_per_class``, ``ig_examples``, ... and its ``pipeline``: ``train``,
            ``seeds``, ``llm``, ``workers``, ...); its ``out_dir``, ``data``, ``dataset_name``,
            ``shortcut``, ``results`` and the pipeline's ``variants`` are set per case.
        oracle_weights: the penalty weights of the oracle (one model each, ``oracle_<weight>``).
        recipes: the variants under test, as the benchmark's ``variants`` entries.
        clean_tolerance: the oracle rule's allowed loss of clean validation accuracy against CE.
        train_configs: the training config of each preset, unless ``benchmark.train_config``.
    """

    out_dir: str = "outputs/shortcut_suite"
    records: str = "results/shortcut_suite"
    results: str | None = "results/shortcut_suite"
    cases: list[str] | None = None
    extra_cases: list[dict] = field(default_factory=list)
    benchmark: dict[str, Any] = field(default_factory=dict)
    oracle_weights: list[float] = field(default_factory=lambda: [1e3, 1e4, 1e5])
    recipes: list[dict] = field(default_factory=_default_recipes)
    clean_tolerance: float = 0.01
    train_configs: dict[str, str] = field(default_factory=lambda: {"banking77": "configs/banking77_5shot.yaml",
                                                                   "clinc150": "configs/clinc150_5shot.yaml"})

    def selected_cases(self) -> list[SuiteCase]:
        """The cases to run, ``none`` cases first (the others' confusion reference)."""
        by_name = {c.name: c for c in DESIGN}
        unknown = [n for n in (self.cases or []) if n not in by_name]
        if unknown:
            raise ConfigError(f"unknown suite case(s) {unknown}; the design has {sorted(by_name)}")
        picked = [by_name[n] for n in self.cases] if self.cases is not None else list(DESIGN)
        picked += [SuiteCase(**c) for c in self.extra_cases]
        names = [c.name for c in picked]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate suite case names in {names}")
        if not self.oracle_weights or any(w <= 0 for w in self.oracle_weights):
            raise ConfigError(f"oracle_weights must be positive, got {self.oracle_weights}")
        return sorted(picked, key=lambda c: c.shortcut.kind != "none")


def oracle_name(weight: float) -> str:
    """The variant name of the oracle with penalty weight ``weight`` (``oracle_1e+04``)."""
    return f"oracle_{weight:.0e}"


def case_benchmark_config(cfg: SuiteConfig, case: SuiteCase):
    """The case's shortcut benchmark: CE, the recipes and (with an artefact) the gold-mask oracle at
    every weight of ``oracle_weights`` (CE plus ``model.penalty_weight`` on the training file's gold
    ``penalty_words``: the planted artefact's positions), in one pipeline on the case's data."""
    from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant
    from eg_train.experiment.shortcut import ShortcutBenchmarkConfig

    preset, classes = DATASETS[case.data]
    shared = copy.deepcopy(cfg.benchmark)
    for key in ("out_dir", "data", "dataset_name", "shortcut", "results"):
        if key in shared:
            raise ConfigError(f"suite benchmark.{key} is set per case; remove it")
    pipeline = dict(shared.pop("pipeline", None) or {})
    if "variants" in pipeline:
        raise ConfigError("suite benchmark.pipeline.variants is set per case (CE, the recipes, the oracles); remove it")
    pipeline.setdefault("train_config", cfg.train_configs[preset])
    has_artefact = case.shortcut.kind != "none"
    variants = [TrainedVariant("ce")] + [TrainedVariant(**copy.deepcopy(r)) for r in cfg.recipes]
    if has_artefact:  # no artefact: no gold mask, no oracle
        variants += [TrainedVariant(oracle_name(w), train={"model": {"penalty_weight": float(w)}}, recipe="fixed")
                     for w in cfg.oracle_weights]
    bench = ShortcutBenchmarkConfig(out_dir=str(Path(cfg.out_dir) / case.name), data=DataSpec(preset=preset, classes=classes),
                                    dataset_name=preset, shortcut=replace(case.shortcut, penalty_words=has_artefact),
                                    pipeline=PipelineConfig(**copy.deepcopy(pipeline), variants=variants),
                                    results=None, **copy.deepcopy(shared))
    strength, k = case.shortcut.strength, bench.k_shot
    if has_artefact and strength < 1 and planted_count(strength, k) == k:
        raise ConfigError(f"suite case {case.name!r}: strength {strength} of {k} training texts per class plants all "
                          f"{k} (floor(strength * k + 0.5)), the same data as strength 1.0; use a strength of at "
                          f"most {(k - 1) / k:g} or a larger k_shot")
    return bench


def case_key(cfg: SuiteConfig, case: SuiteCase) -> str:
    """Hash of everything a case's record depends on: its benchmark configuration and the audit's
    resolved settings (the rule reads the audit: a changed audit default is a changed record)."""
    from eg_train.experiment.audit_jobs import resolved_audit_params
    from eg_train.experiment.rule import RULE_VERSION

    from eg_train.experiment.pipeline import RESULT_NEUTRAL_FIELDS

    bench = case_benchmark_config(cfg, case)
    benchmark = asdict(bench)
    for name in RESULT_NEUTRAL_FIELDS:
        benchmark["pipeline"].pop(name)
    payload = json.dumps({"benchmark": benchmark, "audit": resolved_audit_params(bench.pipeline),
                          "rule_version": RULE_VERSION},
                         sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


# -- the selection rule and the summary figures ---------------------------------------------------

def _mean(per_seed: dict, key: str, section: str | None = None) -> float:
    xs = [(r.get(section, {}) if section else r).get(key) for r in per_seed.values()]
    xs = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else float("nan")


def choose_oracle_weight(models: dict[str, dict], weights: Sequence[float], clean_tolerance: float = 0.01) -> float | None:
    """The oracle's weight by the rule fixed in docs/recipe.md: the largest mean counter-shortcut
    *validation* accuracy among the weights whose mean clean validation accuracy is at least CE's
    minus ``clean_tolerance``; ties go to the smaller weight; None when no weight qualifies or none
    was trained. (The oracle may read the planted counter-shortcut validation: it is the upper bound
    that knows the artefact; the recipes may not.)"""
    ce = models.get("ce")
    if not ce:
        return None
    floor = _mean(ce["per_seed"], "clean_accuracy", "validation") - clean_tolerance
    best: tuple[float, float] | None = None
    for w in sorted(weights):
        row = models.get(oracle_name(w))
        if not row:
            continue
        clean = _mean(row["per_seed"], "clean_accuracy", "validation")
        counter = _mean(row["per_seed"], "counter_accuracy", "validation")
        if not clean >= floor or math.isnan(counter):
            continue
        if best is None or counter > best[1]:
            best = (w, counter)
    return None if best is None else best[0]


def oracle_gain_share(recipe_counter: float, ce_counter: float, oracle_counter: float) -> float:
    """The share of the oracle's counter-shortcut gain over CE a recipe recovers:
    ``(recipe - CE) / (oracle - CE)``; NaN when the oracle gains nothing (> 0 needed)."""
    gain = oracle_counter - ce_counter
    return float((recipe_counter - ce_counter) / gain) if gain > 0 else float("nan")


MODEL_KEYS = ("clean_accuracy", "counter_accuracy", "worst_group_accuracy", "shortcut_reliance")


def paired_vs_ce(models: dict[str, dict], labels: dict[str, list[int]], n_boot: int = 5000) -> dict[str, dict]:
    """Per model and test split (``clean``, ``counter``): the mean paired accuracy difference from CE
    over the seeds both have, with the two-level paired bootstrap 95 % interval (test texts and seeds
    resampled; :func:`eg_train.evaluation.statistics.paired_bootstrap`)."""
    from eg_train.evaluation.statistics import paired_bootstrap

    ce = models.get("ce")
    out: dict[str, dict] = {}
    if not ce:
        return out
    for name, m in models.items():
        if name == "ce":
            continue
        seeds = sorted(set(m["per_seed"]) & set(ce["per_seed"]), key=int)
        row = {}
        for split, gold in labels.items():
            def correct(model: dict) -> np.ndarray | None:
                preds = [model["per_seed"][s].get("predictions", {}).get(split) for s in seeds]
                if not seeds or any(p is None or len(p) != len(gold) for p in preds):
                    return None
                return (np.asarray(preds) == np.asarray(gold)[None, :]).astype(float)

            a, b = correct(m), correct(ce)
            if a is not None and b is not None:
                iv = paired_bootstrap(a, b, n_boot=n_boot, seed=0)
                row[split] = {"mean": iv.mean, "ci95": [iv.low, iv.high], "n_seeds": iv.n_seeds, "n_examples": iv.n_examples}
        out[name] = row
    return out


def summarise_case(record: dict, oracle_weights: Sequence[float], clean_tolerance: float = 0.01) -> dict:
    """Per model: the means of :data:`MODEL_KEYS` (test) and of the validation metrics; per case:
    the chosen oracle weight, CE's reliance over the no-shortcut confusion rate, and every recipe's
    share of the oracle's counter-shortcut gain."""
    from eg_train.evaluation.shortcut import reliance_over_confusion

    models = record["benchmark"]["models"]
    rows = {name: {**{k: _mean(m["per_seed"], k) for k in MODEL_KEYS},
                   **{f"val_{k}": _mean(m["per_seed"], k, "validation") for k in ("clean_accuracy", "counter_accuracy")},
                   "seeds": m["seeds"]}
            for name, m in models.items()}
    out: dict[str, Any] = {"models": rows}
    if record.get("test_labels"):
        out["paired"] = paired_vs_ce(models, record["test_labels"])
    weight = choose_oracle_weight(models, oracle_weights, clean_tolerance)
    out["oracle_weight"] = weight
    confusion = record.get("confusion")
    if confusion is not None and "ce" in rows:
        out["confusion_rate"] = confusion
        out["ce_reliance_over_confusion"] = reliance_over_confusion(rows["ce"]["shortcut_reliance"], confusion)
    if weight is not None and "ce" in rows:
        oracle = rows[oracle_name(weight)]
        out["oracle"] = oracle_name(weight)
        out["gain_share"] = {name: oracle_gain_share(r["counter_accuracy"], rows["ce"]["counter_accuracy"],
                                                     oracle["counter_accuracy"])
                             for name, r in rows.items() if name != "ce" and not name.startswith("oracle_")}
    return out


# -- running -----------------------------------------------------------------------------------------

def _model_dirs(bench_cfg) -> dict[tuple[str, int], Path]:
    """Where the benchmark's pipeline keeps each trained model, by (variant, seed) (its run layout,
    keyed by the training; the split files are written once for all of them)."""
    from eg_train.experiment.shortcut import _paths, _run_dirs
    from eg_train.foundation.data.shortcut import load_shortcut, write_split_files

    spec = write_split_files(load_shortcut(_paths(bench_cfg)["data"]), _paths(bench_cfg)["files"])
    return {key: run / "model" for key, run in _run_dirs(bench_cfg, spec).items()}


def _none_ce_models(cfg: SuiteConfig, none_case: SuiteCase) -> dict[int, Path]:
    """The ``none`` case's CE model of every seed, trained when missing (a record carried to a new machine
    comes without its models): the case's own pipeline with CE alone, so the runs keep their keys."""
    from eg_train.experiment.pipeline import TrainedVariant
    from eg_train.experiment.shortcut import _paths, run_shortcut_benchmark

    none_cfg = case_benchmark_config(cfg, none_case)
    seeds = list(none_cfg.pipeline.seeds)

    def found() -> dict[int, Path]:
        if not _paths(none_cfg)["data"].exists():  # the none case never ran on this machine
            return {}
        models = _model_dirs(none_cfg)
        return {s: models[("ce", s)] for s in seeds if (models.get(("ce", s), Path("-")) / "config.json").is_file()}

    have = found()
    if len(have) < len(seeds):
        log.info("suite: training the CE models of %s, the no-shortcut reference", none_case.name)
        # A pipeline of its own name in the case's out_dir (the case's own pipeline config stays as it is).
        ce_only = replace(none_cfg, results=str(Path(none_cfg.out_dir) / "ce-reference"),
                          pipeline=replace(none_cfg.pipeline, variants=[TrainedVariant("ce")]))
        run_shortcut_benchmark(ce_only, command=f"python -m eg_train.experiment.suite (CE of {none_case.name})")
        have = found()
    return have


def _confusion(cfg: SuiteConfig, case: SuiteCase, none_case: SuiteCase | None) -> float | None:
    """The ``none`` case's CE (every seed) on this case's counter-shortcut texts: the mean rate at which
    it predicts the artefact's class (None: no ``none`` case on this data)."""
    from eg_train.evaluation.shortcut import evaluate_shortcut_model
    from eg_train.experiment.shortcut import _paths
    from eg_train.foundation.data.shortcut import load_shortcut

    if none_case is None or case.shortcut.kind == "none":
        return None
    case_cfg = case_benchmark_config(cfg, case)
    data = load_shortcut(_paths(case_cfg)["data"])
    rates = [evaluate_shortcut_model(model, {"test_counter": data["test_counter"]}, ig_examples=0, train_ig_examples=0,
                                     device=case_cfg.pipeline.device)["shortcut_reliance"]
             for model in _none_ce_models(cfg, none_case).values()]
    return float(np.mean(rates)) if rates else None


def run_case(cfg: SuiteConfig, case: SuiteCase, none_case: SuiteCase | None = None) -> dict:
    """Run (or resume) one case's benchmark and write its record; a current record is returned as is."""
    from eg_train.experiment.shortcut import run_shortcut_benchmark

    target = Path(cfg.records) / f"{case.name}.json"
    key = case_key(cfg, case)
    if target.is_file():
        saved = json.loads(target.read_text())
        if saved.get("key") == key and not saved["benchmark"].get("partial"):
            if saved.get("confusion") is None and none_case is not None and case.shortcut.kind != "none":
                # Written where the no-shortcut reference was missing: add it, nothing else changes.
                saved["confusion"] = _confusion(cfg, case, none_case)
                saved["summary"] = summarise_case(saved, cfg.oracle_weights, cfg.clean_tolerance)
                atomic_write_json(target, json.loads(json.dumps(saved, default=str)))
            log.info("suite case %s: record %s is current, not recomputed", case.name, target)
            return saved
    bench = case_benchmark_config(cfg, case)
    main = _small(run_shortcut_benchmark(bench, command=f"python -m eg_train.experiment.suite (case {case.name})"))
    record = {"case": {"name": case.name, "data": case.data, "why": case.why, "shortcut": asdict(case.shortcut)},
              "key": key, "benchmark": main, "confusion": _confusion(cfg, case, none_case),
              "rule_choices": _rule_choices(bench), "rule_selections": _rule_selections(bench),
              "test_labels": _test_labels(bench)}
    record["summary"] = summarise_case(record, cfg.oracle_weights, cfg.clean_tolerance)
    atomic_write_json(target, json.loads(json.dumps(record, default=str)))
    return record


def _rule_selections(bench_cfg) -> dict[str, dict]:
    """Per rule variant, the validation evidence its choice read (the selection's ``choice.json``: mean and
    per-seed scores of CE and every candidate, with the per-text correctness on the shortcut-free and the
    counter-shortcut validation), so that another rule can be applied to the record without retraining."""
    keep = ("chosen", "reason", "settings", "confirmed", "validation", "scores", "per_seed")
    out: dict[str, dict] = {}
    for name, per_seed in _rule_choices(bench_cfg).items():
        selection = next((c["selection"] for c in per_seed.values() if c.get("selection")), None)
        if selection and Path(selection).is_file():
            doc = json.loads(Path(selection).read_text())
            out[name] = {k: doc.get(k) for k in keep}
    return out


def _test_labels(bench_cfg) -> dict[str, list[int]]:
    """The gold labels of the case's clean and counter-shortcut test texts (the records' predictions
    are in this order), for paired intervals."""
    from eg_train.experiment.shortcut import _paths
    from eg_train.foundation.data.shortcut import load_shortcut

    data = load_shortcut(_paths(bench_cfg)["data"])
    return {split: [int(y) for y in data[f"test_{split}"]["label"]] for split in ("clean", "counter")}


def _rule_choices(bench_cfg) -> dict[str, dict]:
    """Per rule variant and seed: the candidate the recipe rule chose and why (its ``choice.json``)."""
    from eg_train.experiment.rule import is_rule

    rules = {v.name for v in bench_cfg.pipeline.variants if is_rule(v)}
    out: dict[str, dict] = {}
    for (name, seed), model in _model_dirs(bench_cfg).items():
        path = model.parent / "choice.json"
        if name in rules and path.is_file():
            out.setdefault(name, {})[str(seed)] = json.loads(path.read_text())
    return out


def _small(res: dict) -> dict:
    """The parts of a benchmark result a record keeps (no machine-specific paths beyond the command)."""
    keep = ("dataset", "classes", "k_shot", "shortcut", "settings", "partial", "missing", "models", "timings")
    return {k: res.get(k) for k in keep}


def assemble(cfg: SuiteConfig) -> dict:
    """``<results>.{json,md}`` from the records on disk, for every case of the design and ``extra_cases``
    (cases without a record are listed as missing): a run of a few ``cases`` never shrinks the tables.
    With ``cases: []`` (only ``extra_cases``) the tables are those cases'."""
    cases = cfg.selected_cases() if cfg.cases == [] else replace(cfg, cases=None).selected_cases()
    found, missing = {}, []
    for case in cases:
        path = Path(cfg.records) / f"{case.name}.json"
        if path.is_file():
            found[case.name] = json.loads(path.read_text())
        else:
            missing.append(case.name)
    # Summaries are recomputed from the records: a record written before a summary figure existed gets it.
    out = {"cases": {name: {"case": r["case"], "summary": summarise_case(r, cfg.oracle_weights, cfg.clean_tolerance)}
                     for name, r in found.items()},
           "missing": missing, "partial": bool(missing), "oracle_weights": list(cfg.oracle_weights),
           "recipes": [r["name"] for r in cfg.recipes]}
    if cfg.results:
        atomic_write_json(f"{cfg.results}.json", json.loads(json.dumps(out, default=str)))
        atomic_write_text(f"{cfg.results}.md", render_markdown(out))
    return out


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f}"


def _delta(d: dict | None) -> str:
    if not d:
        return "–"
    return f"{100 * d['mean']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"


def render_markdown(out: dict) -> str:
    """The suite's tables: one row per case and model; the oracle's gain share per recipe."""
    lines = ["# Shortcut suite", "",
             "Per case and model, means over seeds (%): clean, counter-shortcut and worst-group accuracy, reliance; "
             "CE's reliance over the no-shortcut confusion rate; for every recipe the share of the oracle's "
             "counter-shortcut gain over CE it recovers (docs/shortcut_suite.md).", ""]
    if out["partial"]:
        lines += [f"**Partial**: no record yet for {', '.join(out['missing'])}.", ""]
    lines += ["| case | model | clean | Δ clean vs CE [95 % CI] | counter | Δ counter vs CE [95 % CI] | worst-group | reliance | gain share |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, c in out["cases"].items():
        s = c["summary"]
        for model, r in s["models"].items():
            if model.startswith("oracle_") and model != s.get("oracle"):
                continue
            share = s.get("gain_share", {}).get(model)
            label = f"{model} (chosen)" if model == s.get("oracle") else model
            paired = s.get("paired", {}).get(model, {})
            planted = c["case"].get("shortcut", {}).get("kind", "none") != "none"  # else counter = clean texts
            lines.append(f"| {name} | {label} | {_pct(r['clean_accuracy'])} | {_delta(paired.get('clean'))} | "
                         f"{_pct(r['counter_accuracy']) if planted else '–'} | "
                         f"{_delta(paired.get('counter')) if planted else '–'} | "
                         f"{_pct(r['worst_group_accuracy'])} | {_pct(r['shortcut_reliance'])} | {_pct(share)} |")
    lines += ["", "| case | CE reliance | no-shortcut confusion | ratio |", "|---|---|---|---|"]
    for name, c in out["cases"].items():
        s = c["summary"]
        ce = s["models"].get("ce", {})
        ratio = s.get("ce_reliance_over_confusion")
        lines.append(f"| {name} | {_pct(ce.get('shortcut_reliance'))} | {_pct(s.get('confusion_rate'))} | "
                     f"{'–' if ratio is None or not math.isfinite(ratio) else f'{ratio:.1f}'} |")
    return "\n".join(lines) + "\n"


def run_suite(cfg: SuiteConfig) -> dict:
    """Every selected case (resuming), then the assembled tables."""
    cases = cfg.selected_cases()
    # The no-shortcut reference of every case's data, also when the none case itself is not selected.
    nones = {c.data: c for c in (*DESIGN, *cases) if c.shortcut.kind == "none"}
    for case in cases:
        run_case(cfg, case, nones.get(case.data))
    return assemble(cfg)


def parse_config(argv: list[str]) -> SuiteConfig:
    """:class:`SuiteConfig` from ``--config FILE`` and ``--key value`` flags (jsonargparse)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="eg-train suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(SuiteConfig, None, as_group=False)
    d = parser.parse_args(argv).as_dict()
    d.pop("config", None)
    return SuiteConfig(**d)


def main(argv: list[str] | None = None) -> dict:
    """``python -m eg_train.experiment.suite --config configs/suite.yaml``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    res = run_suite(parse_config(list(sys.argv[1:] if argv is None else argv)))
    print(json.dumps({"partial": res["partial"], "missing": res["missing"], "cases": sorted(res["cases"])}, indent=2))
    return res


__all__ = ["DATASETS", "DESIGN", "SuiteCase", "SuiteConfig", "assemble", "case_benchmark_config",
           "choose_oracle_weight",
           "oracle_gain_share", "oracle_name", "paired_vs_ce", "render_markdown", "run_case", "run_suite", "summarise_case"]


def cli(argv: list[str] | None = None) -> int:
    """Console entry: a user error prints one line and exits 2 (traceback with ``--verbose``)."""
    from eg_train.foundation.errors import run_main

    return run_main(lambda args: main(args) and 0, "eg-train suite", argv)


if __name__ == "__main__":
    raise SystemExit(cli())
