"""The shortcut robustness benchmark (issue 13): do explanation priors stop a model from learning a
class-correlated artefact?

    eg-train shortcut --config configs/shortcut_banking77_5shot.yaml   (scripts/run_shortcut.py: the same)

1. **Data.** The k-shot training sample (and ``val_per_class`` validation texts per class) of a
   dataset get a per-class artefact (:mod:`eg_train.foundation.data.shortcut`: an ordinary
   unrelated word or a decoy token, in ``strength`` of each class's texts); the test split comes
   back clean, counter-shortcut (another class's artefact) and aligned (its own class's artefact).
   Saved as a ``datasets`` dataset with its recipe and fingerprints (``<out_dir>/shortcut_data``)
   and as JSONL files a :class:`DataSpec` loads (``<out_dir>/shortcut_files``).
2. **Training.** :func:`eg_train.experiment.pipeline.run_pipeline` on those files, like any
   dataset: LIME / CAP priors from the LLM on the *shortcut* training texts, the IG prior from the
   CE model trained on them (which has learned the shortcut), CE against LIME, CAP, IG, CAP Hybrid
   (lime+cap+ig, mean) and a hybrid without the IG prior (lime+cap), for every seed.
3. **Evaluation.** Every trained model on the clean, counter-shortcut and aligned tests
   (:mod:`eg_train.evaluation.shortcut`: accuracy, shortcut reliance, IG artefact share), and every
   prior's artefact share on the training texts; ``<results>.{json,md}`` with per-seed values,
   means and paired differences from CE (:mod:`eg_train.experiment.shortcut_results`).
4. **Validation, for choosing settings.** Every model is also scored on the validation texts made
   counter-shortcut (:func:`counter_validation`: each validation text with every other class's
   artefact in place of its own). Recipes (beta, its schedule, the alignment loss) and the "best
   variant" of the target check are chosen on these, never on the test sets; ``report_test:
   false`` writes a results file with the validation metrics only (a selection run).

Every step resumes: the data is rebuilt only to check its fingerprint, the pipeline skips what
exists, and each model's shortcut evaluation is kept in ``<out_dir>/shortcut_eval``. With
``skip_pipeline`` the benchmark evaluates only the models already trained (results marked partial
when some variant or seed is missing).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from eg_train.experiment.jobs import Job, run_jobs
from eg_train.experiment.layout import short_key
from eg_train.experiment.pipeline import ModelJobs, plan, prior_job_key
from eg_train.experiment.pipeline_config import PipelineConfig, ce_variant, pipeline_from_dict, sample_spec
from eg_train.experiment.variant import TrainedVariant
from eg_train.foundation.data.fewshot import sample_k_per_class
from eg_train.foundation.data.shortcut import (
    ShortcutConfig,
    ShortcutFileError,
    build_shortcut,
    load_shortcut,
    save_shortcut,
    shortcut_metadata,
    write_split_files,
)
from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit, load_split
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.io import atomic_write_json

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger("eg_train.experiment.shortcut")


@dataclass
class ShortcutBenchmarkConfig:
    """The shortcut benchmark: data recipe, the pipeline's training settings, the evaluation."""

    out_dir: str = "outputs/shortcut_banking77_5shot"
    data: DataSpec = field(default_factory=lambda: DataSpec(preset="banking77"))
    dataset_name: str = "banking77"
    k_shot: int = 5
    sample_seed: int = 0  # the k-shot sample (and, with +1, the validation carve)
    val_per_class: int = 2  # validation texts per class, with artefacts like the training texts
    # Other classes' artefacts per counter-shortcut validation text (a seeded draw); None: all of them.
    validation_artefacts: int | None = None
    shortcut: ShortcutConfig = field(default_factory=lambda: ShortcutConfig(kind="word", strength=1.0))
    test_subset: int | None = None  # seeded subset of the test split (None: all)
    # The pipeline run on the shortcut files: training, priors, variants, seeds, workers, its own
    # clean / keyword-attack evaluation (``test_subset``, ``faithfulness_examples``, ...). Its
    # out_dir, data, k_shot, sample_seed, results and name are the benchmark's (set here, not there).
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    # The shortcut evaluation.
    ig_examples: int = 200  # counter-shortcut texts whose IG artefact share is measured
    train_ig_examples: int = 100  # training texts whose IG artefact share is measured (vs the prior's)
    ig_steps: int = 16
    # Alignment-vs-CE gradient diagnostics on this many training batches per prior variant
    # (at the pretrained initialisation and at the IG prior's CE model); 0 skips them.
    diagnostics_batches: int = 2
    results: str | None = "results/shortcut_banking77_5shot"
    skip_pipeline: bool = False  # only evaluate the models that exist (partial results)
    # False: the results file reports validation metrics only (a run that chooses a recipe; the
    # test metrics are still computed and cached for the final run, but not shown).
    report_test: bool = True


def _paths(cfg: ShortcutBenchmarkConfig) -> dict[str, Path]:
    out = Path(cfg.out_dir).resolve()
    return {"out": out, "data": out / "shortcut_data", "files": out / "shortcut_files", "eval": out / "shortcut_eval",
            "pipeline": out / "pipeline"}


def _subset(split: LabelledSplit, size: int | None, seed: int) -> LabelledSplit:
    if size is None or size >= len(split):
        return split
    import numpy as np

    rows = sorted(np.random.default_rng(seed).choice(len(split), size=size, replace=False).tolist())
    return LabelledSplit(split.dataset.select(rows), split.label_names, split.source, split.skipped)


def build_data(cfg: ShortcutBenchmarkConfig):
    """Build (or check and reuse) the shortcut dataset; returns ``(DatasetDict, DataSpec of its files)``."""
    from eg_train.foundation.data.fewshot import carve_per_class

    paths = _paths(cfg)
    full = load_split(cfg.data, "train")
    train = sample_k_per_class(full, cfg.k_shot, cfg.sample_seed)
    try:
        val_source = load_split(cfg.data, "validation")
        exclude: set[str] = set()
    except DataError:  # no validation split of its own: carve it from the unsampled training texts
        val_source, exclude = full, set(train.dataset["id"])
    validation, _ = carve_per_class(val_source, cfg.val_per_class, cfg.sample_seed + 1, exclude=exclude)
    test = _subset(load_split(cfg.data, "test"), cfg.test_subset, cfg.sample_seed)
    # An ordinary-word artefact must be (almost) absent from the whole dataset (every class), not
    # only from the sample.
    everything = replace(cfg.data, classes=None)
    vocabulary = [t for split in ("train", "test") for t in load_split(everything, split).dataset["text"]]
    if val_source is not full:
        vocabulary += list(load_split(everything, "validation").dataset["text"])
    built = build_shortcut(train, test, cfg.shortcut, validation=validation if len(validation) else None,
                           vocabulary=vocabulary)
    fp = shortcut_metadata(built["train"])["recipe_fingerprint"]
    if paths["data"].exists():
        try:
            data = load_shortcut(paths["data"], recipe_fingerprint=fp)
        except ShortcutFileError as err:
            raise ShortcutFileError(f"{err}; {cfg.out_dir} holds another shortcut dataset: use another out_dir") from None
    else:
        save_shortcut(built, paths["data"])
        data = built
    spec = write_split_files(data, paths["files"])
    return data, spec


def counter_validation(data, per_text: int | None = None, seed: int = 0) -> "DatasetDict":
    """The validation split as clean / counter-shortcut / aligned splits (the test splits' names).

    Counter-shortcut: every validation text once with each other class's artefact (or with
    ``per_text`` of them, a seeded draw per text: 77 classes make 76 copies of every text), in the
    place of its own artefact (a text without one gets it as its first word); clean: the texts
    without any artefact; aligned: the texts as trained (their own class's artefact).
    """
    import datasets
    import numpy as np

    from eg_train.foundation.data.shortcut import artefact_word_positions, insert_word, replace_artefact

    if "validation" not in data or len(data["validation"]) == 0:
        raise ShortcutFileError("the shortcut dataset has no validation split (val_per_class: 0?)")
    val = data["validation"]
    meta = shortcut_metadata(val)
    artefacts = meta["artefacts"]
    rows: dict[str, list] = {k: [] for k in ("id", "text", "original_text", "label", "artefact", "artefact_class",
                                              "artefact_positions")}
    if per_text is not None and per_text < 1:
        raise ValueError(f"validation_artefacts must be >= 1 or null (every other class), got {per_text}")
    rng = np.random.default_rng(seed)
    for rid, text, original, y, positions in zip(val["id"], val["text"], val["original_text"], val["label"],
                                                 val["artefact_positions"]):
        others = [c for c in range(len(artefacts)) if c != int(y)]
        if per_text is not None and per_text < len(others):
            others = sorted(rng.choice(others, size=per_text, replace=False).tolist())
        for c in others:
            word = artefacts[c]
            if positions:  # in the place of its own artefact (a word or a phrase)
                new, new_pos = replace_artefact(text, positions, word)
            else:
                new, new_pos = insert_word(original, word, 0), artefact_word_positions(word, 0)
            for key, value in (("id", f"{rid}~{c}"), ("text", new), ("original_text", original), ("label", int(y)),
                               ("artefact", word), ("artefact_class", c), ("artefact_positions", new_pos)):
                rows[key].append(value)

    def split(name: str, columns: dict) -> datasets.Dataset:
        ds = datasets.Dataset.from_dict(columns)
        ds.info.description = json.dumps({**meta, "split": name, "n": len(ds),
                                          "n_with_artefact": sum(1 for p in columns["artefact_positions"] if p)})
        return ds

    clean = {"id": list(val["id"]), "text": list(val["original_text"]), "original_text": list(val["original_text"]),
             "label": list(val["label"]), "artefact": [""] * len(val), "artefact_class": [-1] * len(val),
             "artefact_positions": [[] for _ in range(len(val))]}
    aligned = {k: list(val[k]) for k in rows}
    return datasets.DatasetDict({"test_clean": split("validation_clean", clean),
                                 "test_counter": split("validation_counter", rows),
                                 "test_aligned": split("validation_aligned", aligned)})


VALIDATION_KEYS = ("clean_accuracy", "counter_accuracy", "aligned_accuracy", "shortcut_reliance")


# PipelineConfig fields the benchmark sets itself (from its own data, sample and results).
_BENCHMARK_OWNED = ("out_dir", "data", "k_shot", "sample_seed", "results", "name")


def check_benchmark_config(cfg: ShortcutBenchmarkConfig) -> None:
    """Refuse a config that cannot run, before the data is built (:class:`ConfigError`, one line)."""
    from eg_train.experiment.pipeline import check_config

    default = PipelineConfig()
    set_here = [k for k in _BENCHMARK_OWNED if getattr(cfg.pipeline, k) != getattr(default, k)]
    if set_here:
        raise ConfigError(f"pipeline: {', '.join(set_here)} are set by the shortcut benchmark; "
                          "set them at the top level of its config (out_dir, data, k_shot, sample_seed, results)")
    check_config(cfg.pipeline)


def pipeline_config(cfg: ShortcutBenchmarkConfig, spec: DataSpec) -> PipelineConfig:
    """The pipeline run on the shortcut files (every training text is in the k-shot sample)."""
    default = PipelineConfig()
    if any(getattr(cfg.pipeline, k) != getattr(default, k) for k in _BENCHMARK_OWNED):
        check_benchmark_config(cfg)  # raises, naming the fields
    return replace(
        copy.deepcopy(cfg.pipeline),
        out_dir=str(_paths(cfg)["pipeline"]),
        data=spec,
        k_shot=cfg.k_shot,  # the file holds exactly k texts per class: the sample is all of them
        sample_seed=cfg.sample_seed,
        results=None,
        # One name per results file: a selection config and the benchmark share out_dir (runs and
        # priors are reused) without claiming each other's pipeline report.
        name=Path(cfg.results).name if cfg.results else "shortcut",
    )


def _validation_current(out: dict, per_text: int | None) -> bool:
    """Whether a model's cached evaluation holds validation metrics made with ``per_text`` artefacts
    per text (a file written before the option has every other class's: ``None``)."""
    return "validation" in out and out["validation"].get("artefacts_per_text") == per_text


def _evaluate_one(model: str, data_dir: str, target: str, kwargs: dict) -> tuple[dict[str, float], str]:
    """Shortcut metrics of one model into ``target`` (a worker job; an existing file without the
    validation metrics gets them added); returns ``({timing key: seconds}, target)``."""
    from eg_train.evaluation.shortcut import evaluate_shortcut_model

    t = time.perf_counter()
    data = load_shortcut(data_dir)
    path = Path(target)
    kwargs = dict(kwargs)
    per_text = kwargs.pop("validation_artefacts", None)
    out = json.loads(path.read_text()) if path.is_file() else evaluate_shortcut_model(model, data, **kwargs)
    if not _validation_current(out, per_text):
        counter = counter_validation(data, per_text, seed=kwargs.get("seed", 0))
        val = evaluate_shortcut_model(model, counter, ig_examples=0, train_ig_examples=0, device=kwargs.get("device", "cpu"))
        out["validation"] = {k: val[k] for k in VALIDATION_KEYS} | {"n_counter": len(counter["test_counter"]),
                                                                    "artefacts_per_text": per_text}
    atomic_write_json(target, out)
    return {f"shortcut_eval_{path.stem}_s": time.perf_counter() - t}, target


def _eval_settings(cfg: ShortcutBenchmarkConfig) -> dict:
    return {"ig_examples": cfg.ig_examples, "train_ig_examples": cfg.train_ig_examples, "ig_steps": cfg.ig_steps, "seed": 0}


def shortcut_eval_file(cfg: ShortcutBenchmarkConfig, run_dir: Path) -> Path:
    """The shortcut metrics of the model in ``run_dir`` (named by the run, whose name holds its
    key, and by the evaluation settings: other settings are computed into a file of their own)."""
    return _paths(cfg)["eval"] / f"{run_dir.name}-{short_key(_eval_settings(cfg))}.json"


def _shortcut_eval_job(cfg: ShortcutBenchmarkConfig, run_dir: Path) -> Job | None:
    """The shortcut evaluation of the model trained in ``run_dir``, unless its cached metrics are current."""
    paths = _paths(cfg)
    target = shortcut_eval_file(cfg, run_dir)
    if target.is_file() and _validation_current(json.loads(target.read_text()), cfg.validation_artefacts):
        return None
    kwargs = {**_eval_settings(cfg), "device": cfg.pipeline.device, "validation_artefacts": cfg.validation_artefacts}
    return Job(f"shortcut_eval:{run_dir.name}", _evaluate_one,
               (str(run_dir / "model"), str(paths["data"]), str(target), kwargs))


def _model_jobs(cfg: ShortcutBenchmarkConfig, spec: DataSpec) -> ModelJobs:
    """Each model's shortcut evaluation as a job of the pipeline's graph: it runs beside the
    remaining training instead of after it; so do the alignment diagnostics, once the priors and
    the CE model of ``ig_prior_seed`` exist."""
    ce = ce_variant(pipeline_config(cfg, spec)).name
    methods = sorted({m for v in cfg.pipeline.variants for m in v.priors})

    def jobs(variant: TrainedVariant, seed: int, run_dir: Path) -> list[Job]:
        job = _shortcut_eval_job(cfg, run_dir)
        out = [job] if job is not None else []
        if variant.name == ce and seed == cfg.pipeline.ig_prior_seed and methods and cfg.diagnostics_batches > 0:
            out.append(Job("shortcut_diagnostics", _diagnostics_job, (cfg, spec),
                           tuple(prior_job_key(m) for m in methods)))
        return out

    return jobs


def _diagnostics_job(cfg: ShortcutBenchmarkConfig, spec: DataSpec) -> tuple[dict[str, float], bool]:
    t = time.perf_counter()
    found = bool(_diagnostics(cfg, spec))
    return {"diagnostics_s": time.perf_counter() - t}, found


def _run_dirs(cfg: ShortcutBenchmarkConfig, spec: DataSpec) -> dict[tuple[str, int], Path]:
    """The run folder of every (variant, seed) the pipeline trains (named by its training key)."""
    p = plan(pipeline_config(cfg, spec))
    return {(v.name, s): Path(m.run_dir) for v in cfg.pipeline.variants for s in cfg.pipeline.seeds
            if (m := p.find(v.name, s))}


def _evaluate_models(cfg: ShortcutBenchmarkConfig, data, timings: dict, spec: DataSpec) -> dict[str, dict[int, dict]]:
    """Shortcut metrics of every trained model (cached per model; those not evaluated inside the
    pipeline run here, ``workers`` at a time); missing models are skipped."""
    run_dirs = _run_dirs(cfg, spec)
    jobs = [job for run in run_dirs.values()
            if (run / "model" / "config.json").is_file() and (job := _shortcut_eval_job(cfg, run)) is not None]
    run_jobs(jobs, cfg.pipeline.workers, lambda key, spent: timings.update({k: round(x, 1) for k, x in spent.items()}))
    out: dict[str, dict[int, dict]] = {}
    for v in cfg.pipeline.variants:
        for s in cfg.pipeline.seeds:
            if (v.name, s) not in run_dirs:
                continue
            target = shortcut_eval_file(cfg, run_dirs[v.name, s])
            if target.is_file():
                m = json.loads(target.read_text())
                m.update(training_trace(run_dirs[v.name, s] / "metrics.csv"))
                # Flat keys for the results tables: validation metrics as val_<metric>.
                m.update({f"val_{k}": x for k, x in m.get("validation", {}).items() if k in VALIDATION_KEYS})
                out.setdefault(v.name, {})[s] = m
                log.info("%s seed %d: clean %.3f counter %.3f reliance %.3f", v.name, s, m["clean_accuracy"],
                         m["counter_accuracy"], m["shortcut_reliance"])
    return out


def training_trace(metrics_csv: Path) -> dict[str, float]:
    """The alignment weight a run used (``train_beta``) and, for a ``grad_ratio`` run, the measured
    ``||grad align|| / ||grad CE||`` at weight 1 (``train_grad_ratio``), from its logged steps:
    first, median and last value of each (empty when the run logged none)."""
    import csv
    import math

    import numpy as np

    if not metrics_csv.is_file():
        return {}
    with metrics_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, float] = {}
    for key in ("train_beta", "train_grad_ratio", "train_ce", "train_align"):
        xs = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
        xs = [x for x in xs if math.isfinite(x)]
        if xs:
            out.update({f"{key}_first": xs[0], f"{key}_median": float(np.median(xs)), f"{key}_last": xs[-1]})
    return out


def _prior_mass(cfg: ShortcutBenchmarkConfig, data, spec: DataSpec) -> dict[str, dict]:
    """Artefact share of every single prior and every fused prior the variants train on."""
    from eg_train.evaluation.shortcut import prior_artefact_mass

    cache = _paths(cfg)["pipeline"] / "prior_cache"
    if not (cache / "parts").is_dir() or not any(data["train"]["artefact_positions"]):
        return {}  # no priors, or no artefact to put mass on (kind none)
    split = sample_spec(pipeline_config(cfg, spec)).load()  # the examples the priors were computed for
    if split.dataset["text"] != data["train"]["text"]:
        raise ShortcutFileError(f"{spec.files['train']} no longer matches {_paths(cfg)['data']}; rebuild both")
    from priors.cache import PriorCache

    available = {m for m in ("lime", "cap", "ig") if PriorCache(cache).config_hashes(m)}
    wanted: dict[str, tuple[list[str], str]] = {m: ([m], "mean") for m in sorted(available)}
    for v in cfg.pipeline.variants:
        if len(v.priors) > 1 and set(v.priors) <= available:
            wanted[f"{'+'.join(v.priors)} ({v.fusion})"] = (list(v.priors), v.fusion)
    out = {}
    for name, (methods, fusion) in wanted.items():
        out.update(prior_artefact_mass(cache, split, data["train"]["artefact_positions"], {name: methods}, fusion=fusion))
    return out


def run_shortcut_benchmark(cfg: ShortcutBenchmarkConfig, command: str = "eg-train shortcut") -> dict:
    """Build the data, run the pipeline (unless ``skip_pipeline``), evaluate, write the results."""
    from eg_train.experiment.pipeline import run_pipeline
    from eg_train.experiment.shortcut_results import collect, write_results

    check_benchmark_config(cfg)
    started = time.perf_counter()
    paths = _paths(cfg)
    paths["out"].mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    data, spec = build_data(cfg)
    timings["build_data_s"] = round(time.perf_counter() - t, 1)
    atomic_write_json(paths["out"] / "shortcut_benchmark.json", json.loads(json.dumps(asdict(cfg))))
    if not cfg.skip_pipeline:
        t = time.perf_counter()
        run_pipeline(pipeline_config(cfg, spec), command=command, model_jobs=_model_jobs(cfg, spec))
        timings["pipeline_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    models = _evaluate_models(cfg, data, timings, spec)
    priors = _prior_mass(cfg, data, spec)
    timings["shortcut_eval_s"] = round(time.perf_counter() - t, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    pipeline_timings = paths["pipeline"] / "timings.json"

    def write(diagnostics: dict) -> dict:
        res = collect(cfg, data, models, priors, timings,
                      json.loads(pipeline_timings.read_text()) if pipeline_timings.is_file() else {}, command)
        res["alignment_diagnostics"] = diagnostics
        atomic_write_json(paths["out"] / "shortcut_summary.json", res)
        if cfg.results:
            write_results(cfg.results, res)
        return res

    res = write({})  # the results first: the diagnostics are an extra
    t = time.perf_counter()
    diagnostics = _diagnostics(cfg, spec)  # computed in the pipeline's graph unless skipped or resumed
    if diagnostics:
        if time.perf_counter() - t > 1.0:
            timings["diagnostics_s"] = round(time.perf_counter() - t, 1)
        timings["total_s"] = round(time.perf_counter() - started, 1)
        res = write(diagnostics)
    return res


def _diagnostics(cfg: ShortcutBenchmarkConfig, spec: DataSpec) -> dict:
    """Alignment-vs-CE gradients of every prior variant whose priors are cached (kept on disk)."""
    from eg_train.experiment.shortcut_diagnostics import alignment_diagnostics
    from priors.cache import PriorCache

    paths = _paths(cfg)
    cache = paths["pipeline"] / "prior_cache"
    pcfg = pipeline_config(cfg, spec)
    ce_model = Path(plan(pcfg).model(ce_variant(pcfg), pcfg.ig_prior_seed).run_dir) / "model"
    if cfg.diagnostics_batches <= 0 or not (cache / "parts").is_dir() or not (ce_model / "config.json").is_file():
        return {}
    available = {m for m in ("lime", "cap", "ig") if PriorCache(cache).config_hashes(m)}
    variants = [(v.name, list(v.priors), v.fusion) for v in pcfg.variants if v.priors and set(v.priors) <= available]
    target = paths["out"] / "shortcut_diagnostics.json"
    # As saved (JSON has no tuples), so that a rerun recognises its own result.
    key = json.loads(json.dumps({"variants": variants, "batches": cfg.diagnostics_batches, "ce_model": str(ce_model)}))
    if target.is_file():
        saved = json.loads(target.read_text())
        if saved.get("key") == key:
            return saved["result"]
    result = alignment_diagnostics(spec, cfg.k_shot, cfg.sample_seed, str(cache), variants,
                                   {"pretrained_init": pcfg.slm, "ce_trained": str(ce_model)}, batches=cfg.diagnostics_batches)
    atomic_write_json(target, {"key": key, "result": result})
    return result


def parse_config(argv: list[str]) -> ShortcutBenchmarkConfig:
    """``ShortcutBenchmarkConfig`` from ``--config FILE`` and ``--key value`` flags (jsonargparse)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="eg-train shortcut", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(ShortcutBenchmarkConfig, None, as_group=False)
    d = parser.instantiate_classes(parser.parse_args(argv)).as_dict()
    d.pop("config", None)
    data, shortcut, pipeline = d.pop("data"), d.pop("shortcut"), d.pop("pipeline")
    return ShortcutBenchmarkConfig(
        data=data if isinstance(data, DataSpec) else DataSpec(**data),
        shortcut=shortcut if isinstance(shortcut, ShortcutConfig) else ShortcutConfig(**shortcut),
        pipeline=pipeline_from_dict(pipeline), **d,
    )


def main(argv: list[str] | None = None) -> dict:
    """``eg-train shortcut``: parse the config, run the benchmark, print what it wrote."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[2:] if argv is None else argv)
    res = run_shortcut_benchmark(parse_config(argv), command=" ".join(["eg-train shortcut", *argv]))
    print(json.dumps({k: res[k] for k in ("partial", "missing", "results") if k in res}, indent=2))
    return res
