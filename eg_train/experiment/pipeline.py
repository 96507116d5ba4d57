"""The main job end to end: CE baseline -> priors (LIME, CAP, IG) -> fused priors -> explanation-
guided training -> attacks -> evaluation -> reports.

    eg-train demo [--config configs/pipeline_demo.yaml] [--out_dir outputs/demo] [--seeds '[0,1,2]']

The k-shot training sample is drawn once (``sample_seed``) and shared by every seed, so the priors
are computed once and reused: LIME and CAP (the LLM) before any training, IG from the CE model of
``ig_prior_seed``. Seeds vary the model's initialisation and the data order.

Every step writes into ``out_dir`` and is skipped when its output already exists, so an
interrupted run resumes where it stopped (the prior cache resumes inside a step too). The resolved
configuration is saved as ``out_dir/pipeline.yaml``.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from eg_train.experiment.jobs import Job, run_jobs
from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.io import atomic_write_json, atomic_write_text, locked, update_json

log = logging.getLogger("eg_train.experiment.pipeline")


@dataclass
class TrainedVariant:
    """One trained model: a name, the priors it aligns to (empty list = CE baseline), and training
    options of its own merged over the pipeline's ``train`` (e.g. ``{model: {beta_warmup_ratio: 0.5}}``).

    ``init_from_ce``: start from the CE baseline of the same seed (trained anyway, for the IG prior
    and the comparison) instead of the pretrained SLM, so the alignment acts on a model whose
    classifier has already learned the task (at initialisation the alignment gradient dwarfs CE's;
    at the CE model it is a fraction of it: ``scripts/diagnose_alignment.py``)."""

    name: str
    priors: list[str] = field(default_factory=list)
    fusion: str = "mean"
    train: dict[str, Any] = field(default_factory=dict)
    init_from_ce: bool = False
    # Seeds of this variant, a subset of the pipeline's (None: all of them): e.g. 5 seeds for CE and
    # the headline variant, 3 for the others. The CE baseline always runs every pipeline seed.
    seeds: list[int] | None = None


@dataclass
class PipelineConfig:
    """What the main job runs. Defaults: the embedded models, Banking77 5-shot (all intents)."""

    out_dir: str = "outputs/demo"
    # No preset by default: a config's ``data`` merges into this, and a preset left here would
    # override a custom file's columns. An empty spec means Banking77 (set in run_pipeline).
    data: DataSpec = field(default_factory=DataSpec)
    k_shot: int = 5
    train_config: str = "configs/demo.yaml"
    # Training options merged over ``train_config`` for every variant, in the training config's own
    # layout: ``{trainer: {max_epochs: 8}, data: {batch_size: 8}, model: {lr: 3.0e-4}}``.
    train: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    llm: str = "gemma3-270m"  # the prior stage's default (priors.config.PriorsConfig)
    slm: str = "all-minilm-l6-v2"
    n_samples: int = 64
    ridge_lambda: float = 1.0
    # Prior-stage options over PriorsConfig's defaults, by field name: e.g.
    # {demonstrations_per_class: 0, contrast: top_m, contrast_m: 4, calibrate: true}.
    priors: dict[str, Any] = field(default_factory=dict)
    variants: list[TrainedVariant] = field(
        default_factory=lambda: [TrainedVariant("ce"), TrainedVariant("cap_hybrid_mean", ["lime", "cap", "ig"])]
    )
    sample_seed: int = 0  # the k-shot sample, shared by all seeds (and by the priors)
    prior_seed: int = 0  # LIME / CAP perturbation sampling
    ig_prior_seed: int = 0  # the CE run whose IG gives the IG prior (must be one of ``seeds``)
    test_subset: int | None = 300
    attack_seed: int = 0
    faithfulness_examples: int = 100  # comprehensiveness / sufficiency on a seeded test subset
    eval_ig_steps: int = 20
    workers: int = 1  # trainings / prior methods run at once, each in its own process (cpus // workers threads)
    device: str = "cpu"  # where every stage runs its models: cpu | cuda | cuda:N
    results: str | None = None  # write <results>.json and <results>.md (mean ± std per method, times)
    # Model-aware recipes (eg_train.evaluation.attacks.recipes: deepwordbug, pwws, textfooler): each
    # model is attacked itself (adaptive), and evaluated on the texts made against the CE model of
    # ig_prior_seed (transfer). Empty: keyword attacks only.
    model_attacks: list[str] = field(default_factory=list)
    # Several configs may share an out_dir (its runs, prior cache and attacks are reused): each
    # needs a name of its own, which tags its report, summary and saved config.
    name: str | None = None
    # Prior quality (``eg-priors quality``: LLM competence, deletion AOPC against random orders,
    # keyword precision@3 against the rest of the training split) on this many examples of the
    # sample, stored in the prior cache and shown in the results; 0: not measured, -1: all.
    prior_quality_examples: int = 0


class _Timings(dict):
    """Wall time per step, kept in ``timings.json`` (steps skipped on resume are not recorded again).

    Several configs may share one out_dir and run at the same time: every record is a locked
    read-modify-write of the file, so no process drops another's keys.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(json.loads(path.read_text()) if path.is_file() else {})
        self.path = path

    def record(self, key: str, seconds: float) -> None:
        self.clear()
        self.update(update_json(self.path, lambda d: d.__setitem__(key, round(seconds, 1))))


def _train(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None) -> tuple[Path, bool]:
    """Train one variant; returns its run folder and whether it was trained now (False: it existed)."""
    run_dir = Path(cfg.out_dir) / "runs" / f"{variant.name}-seed{seed}"
    if (run_dir / "model" / "config.json").is_file():
        log.info("%s seed %d: trained model exists, skipping (%s)", variant.name, seed, run_dir)
        return run_dir, False
    with _run_lock(run_dir):
        _fit(cfg, variant, seed, cache_dir, run_dir)
    return run_dir, True


@contextmanager
def _run_lock(run_dir: Path):
    """Hold ``<run_dir>.lock`` while training, so two pipelines sharing an out_dir never train
    (and wipe) the same run. An OS file lock (``filelock``): a killed holder releases it, and there
    is no moment when a lock file exists without its owner holding it."""
    with locked(run_dir.with_name(run_dir.name + ".lock"), what=f"{run_dir} (being trained)"):
        yield


def sample_spec(cfg: PipelineConfig) -> SampleSpec:
    """The one training sample of the experiment: the priors are computed on it and every variant trains on it."""
    return SampleSpec(data=cfg.data, k_shot=cfg.k_shot, seed=cfg.sample_seed)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def ce_variant(cfg: PipelineConfig) -> TrainedVariant:
    """The CE baseline: the config's variant without priors, else ``ce`` (always trained)."""
    return next((v for v in cfg.variants if not v.priors), TrainedVariant("ce"))


def _ig_source(cfg: PipelineConfig) -> Path:
    """The CE model whose IG is the IG prior (the CE variant of ``ig_prior_seed``)."""
    return Path(cfg.out_dir) / "runs" / f"{ce_variant(cfg).name}-seed{cfg.ig_prior_seed}" / "model"


def train_config(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None, run_dir: Path):
    """The typed :class:`~eg_train.training.config.TrainConfig` of one variant and seed."""
    import yaml

    from eg_train.training.api import PriorSpec, TrainConfig

    path = Path(cfg.train_config)
    if not path.is_file():
        raise FileNotFoundError(f"train_config {path} not found")
    mapping = _merge(_merge(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, cfg.train), variant.train)
    tc = TrainConfig.from_mapping(mapping)
    tc.run_dir = str(run_dir)
    tc.seed = seed
    tc.overwrite = True  # only reached for a run without an exported model (an interrupted one)
    tc.model.model_name = cfg.slm
    if variant.init_from_ce:
        if not variant.priors:
            raise ValueError(f"variant {variant.name}: init_from_ce starts an aligned run from the CE model; it needs priors")
        tc.model.model_name = str(Path(cfg.out_dir) / "runs" / f"{ce_variant(cfg).name}-seed{seed}" / "model")
    tc.data.sample = sample_spec(cfg)
    tc.trainer.accelerator = "gpu" if cfg.device.startswith("cuda") else "cpu"
    if variant.priors:
        tc.prior = PriorSpec(cache_dir=str(cache_dir), methods=list(variant.priors), fusion=variant.fusion, on_missing="error")
    else:
        tc.prior = None
        tc.model.beta = 0.0  # the CE baseline: no alignment term at all
    return tc


def _fit(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None, run_dir: Path) -> None:
    from eg_train.training.api import fit

    fit(train_config(cfg, variant, seed, cache_dir, run_dir))


def _prior_config(cfg: PipelineConfig, methods: list[str], ce_model: Path | None = None):
    from priors.config import PriorsConfig

    sample = sample_spec(cfg)  # the same sample the training data module draws
    pcfg = PriorsConfig(
        data=sample.data,
        split=sample.split,
        k_shot=sample.k_shot,
        sample_seed=sample.seed,
        methods=methods,
        device=cfg.device,
        llm=cfg.llm,
        n_samples=cfg.n_samples,
        ridge_lambda=cfg.ridge_lambda,
        seed=cfg.prior_seed,
        slm_checkpoint=str(ce_model) if ce_model else None,
        cache_dir=str(Path(cfg.out_dir) / "prior_cache"),
    )
    return prior_overrides(pcfg, cfg.priors)


# Set by the pipeline itself; a ``priors`` mapping may not override them.
_PIPELINE_OWNED = ("data", "split", "k_shot", "sample_seed", "methods", "device", "llm", "n_samples", "ridge_lambda",
                   "seed", "slm_checkpoint", "cache_dir")


def prior_overrides(pcfg, overrides: dict[str, Any]):
    """``pcfg`` with the pipeline config's ``priors`` options applied (unknown or pipeline-owned
    names are an error that lists the allowed ones)."""
    from priors.config import PriorsConfig

    allowed = sorted(f.name for f in fields(PriorsConfig) if f.name not in _PIPELINE_OWNED)
    bad = sorted(k for k in (overrides or {}) if k not in allowed)
    if bad:
        raise ValueError(f"priors: {', '.join(bad)} cannot be set here (the pipeline sets data, llm, n_samples, ...); "
                         f"allowed: {', '.join(allowed)}")
    values = dict(overrides or {})
    if isinstance(values.get("focus"), dict):
        from priors.focus import FocusConfig

        values["focus"] = FocusConfig(**values["focus"])
    return replace(pcfg, **values)


def _priors(cfg: PipelineConfig, method: str, ce_model: Path | None = None) -> tuple[dict[str, float], None]:
    """Compute (or resume) one prior method into the shared cache; returns ``({key: seconds}, None)``."""
    from priors.api import compute

    t = time.perf_counter()
    computed = 0
    for summary in compute(_prior_config(cfg, [method], ce_model)):
        log.info("priors: %s", summary)
        computed += summary["computed"]
    return ({f"priors_{method}_s": time.perf_counter() - t} if computed else {}), None


def _prior_quality(cfg: PipelineConfig, methods: list[str]) -> tuple[dict[str, float], None]:
    """Measure the quality of the cached priors once (skipped when the cache already holds it)."""
    from priors.api import quality
    from priors.cache import PriorCache
    from priors.quality import stored_quality

    pcfg = _prior_config(cfg, methods, _ig_source(cfg))
    cache = PriorCache(pcfg.cache_dir)
    stored = stored_quality(cache)
    n = None if cfg.prior_quality_examples < 0 else cfg.prior_quality_examples
    docs = [stored.get(f"{m}-{h}") for m in methods for h in cache.config_hashes(m)]
    if docs and all(d is not None and d.get("settings", {}).get("max_examples") == n for d in docs):
        return {}, None  # measured by an earlier run on the same examples
    t = time.perf_counter()
    result = quality(pcfg, max_examples=n)
    for key, q in result["methods"].items():
        log.info("prior quality %s: %s", key, {k: q.get(k) for k in ("llm_accuracy", "keyword_precision_at_3",
                                                                    "deletion_aopc_ratio_vs_random") if k in q})
    return {"prior_quality_s": time.perf_counter() - t}, None


def _heatmaps(cfg: PipelineConfig, methods: list[str]) -> tuple[dict[str, float], None]:
    """``out_dir/priors.html``, once the priors are complete."""
    from priors.api import heatmap_report

    target = Path(cfg.out_dir) / "priors.html"
    if target.is_file():
        return {}, None
    t = time.perf_counter()
    heatmap_report(_prior_config(cfg, methods), str(target))
    return {"heatmaps_s": time.perf_counter() - t}, None


def _train_job(cfg: PipelineConfig, variant: TrainedVariant, seed: int) -> tuple[dict[str, float], str]:
    """Train one variant unless its model exists; returns ``({key: seconds}, run_dir)``."""
    out = Path(cfg.out_dir)
    t = time.perf_counter()
    run, ran = _train(cfg, variant, seed, out / "prior_cache" if variant.priors else None)
    return ({f"train_{variant.name}_seed{seed}_s": time.perf_counter() - t} if ran else {}), str(run)


def _eval_job(cfg: PipelineConfig, variant: TrainedVariant, seed: int, transfer: str | None = None) -> tuple[dict[str, float], str]:
    """Evaluate one trained variant unless its metrics exist; returns ``({key: seconds}, eval_dir)``.

    Clean accuracy, faithfulness, the keyword attacks, the model-aware recipes against the model
    itself (adaptive) and, with ``transfer``, the texts made against the CE model (comparable across models).
    """
    from eg_train.evaluation.api import evaluate
    from eg_train.evaluation.attacks.recipes import ModelAttackConfig
    from eg_train.evaluation.evaluate import EvalConfig

    out = Path(cfg.out_dir)
    eval_dir = out / "eval" / f"{variant.name}-seed{seed}"
    if (eval_dir / "metrics.json").is_file():
        return {}, str(eval_dir)
    if transfer is not None and not Path(transfer).is_dir():
        transfer = None  # the CE model's evaluation wrote no model-aware texts
    t = time.perf_counter()
    run = out / "runs" / f"{variant.name}-seed{seed}"
    evaluate(str(run / "model"), cfg.data, str(eval_dir), str(out / "attacks"), method=variant.name,
             seed=seed, subset=cfg.test_subset, subset_seed=cfg.attack_seed,
             params=EvalConfig(faithfulness_examples=cfg.faithfulness_examples, ig_steps=cfg.eval_ig_steps,
                               device=cfg.device),
             transfer=transfer, model_attacks=list(cfg.model_attacks),
             attack_params=ModelAttackConfig(recipes=tuple(cfg.model_attacks) or ModelAttackConfig().recipes,
                                             seed=cfg.attack_seed))
    return {f"eval_{variant.name}_seed{seed}_s": time.perf_counter() - t}, str(eval_dir)


def _config_doc(cfg: PipelineConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def claim_outputs(cfg: PipelineConfig) -> str:
    """Save the configuration as ``pipeline[-<name>].yaml`` and return the tag of this config's outputs.

    The tag is ``-<name>`` (``name``, else the ``results`` file's stem), or empty. A different
    configuration already saved under the same tag owns that report and summary: refuse rather than
    overwrite them (a rerun of the same configuration resumes; ``workers`` may differ).
    """
    import yaml

    name = cfg.name or (Path(cfg.results).name if cfg.results else None)
    tag = f"-{name}" if name else ""
    path = Path(cfg.out_dir) / f"pipeline{tag}.yaml"
    mine = _config_doc(cfg)
    if path.is_file():
        theirs = yaml.safe_load(path.read_text()) or {}
        differs = sorted(k for k in set(mine) | set(theirs) if k != "workers" and mine.get(k) != theirs.get(k))
        if differs:
            raise FileExistsError(
                f"{cfg.out_dir} already holds the outputs of another pipeline configuration ({path} differs in: "
                f"{', '.join(differs)}); give this one a name (--name NAME: its report, summary and config go to "
                f"report-NAME/, summary-NAME.json, pipeline-NAME.yaml; runs and priors are shared) or use another out_dir"
            )
    atomic_write_text(path, yaml.safe_dump(mine, sort_keys=False))
    return tag


def _runs_seed(variant: TrainedVariant, seed: int, ce: TrainedVariant) -> bool:
    return variant is ce or variant.seeds is None or seed in variant.seeds


# Extra jobs per trained model (e.g. the shortcut benchmark's evaluation), run in the same graph so
# that they overlap the remaining training: ``(variant, seed, run_dir) -> jobs`` (each gets the
# model's training as a dependency).
ModelJobs = Callable[[TrainedVariant, int, Path], list[Job]]


def _key(step: str, variant: TrainedVariant, seed: int) -> str:
    return f"{step}:{variant.name}-seed{seed}"


def prior_job_key(method: str) -> str:
    """The key of the job that computes the ``method`` prior (a dependency for extra jobs)."""
    return f"priors:{method}"


def pipeline_jobs(cfg: PipelineConfig, model_jobs: ModelJobs | None = None) -> list[Job]:
    """The pipeline's steps as a job graph, in priority order.

    The LLM priors (the longest jobs) first; the CE model of ``ig_prior_seed`` next (the IG prior
    and every transfer attack need it); an aligned run waits only for its own priors (and the CE run
    of its seed with ``init_from_ce``), and an evaluation for its model and the CE model's
    evaluation (the transfer texts).
    """
    ce = ce_variant(cfg)
    needed = sorted({m for v in cfg.variants for m in v.priors})
    src = cfg.ig_prior_seed if cfg.ig_prior_seed in cfg.seeds else cfg.seeds[0]
    seeds = sorted(cfg.seeds, key=lambda s: s != src)
    prior_key = {m: prior_job_key(m) for m in needed}
    jobs = [Job(prior_key[m], _priors, (cfg, m)) for m in needed if m != "ig"]
    jobs.append(Job(_key("train", ce, src), _train_job, (cfg, ce, src)))
    if "ig" in needed:
        jobs.append(Job(prior_key["ig"], _priors, (cfg, "ig", _ig_source(cfg)), (_key("train", ce, src),)))
    ce_eval = _key("eval", ce, src)
    jobs.append(Job(ce_eval, _eval_job, (cfg, ce, src), (_key("train", ce, src),)))
    jobs += [Job(_key("train", ce, s), _train_job, (cfg, ce, s)) for s in seeds if s != src]
    if needed:
        all_priors = tuple(prior_key.values())
        quality = ()
        if cfg.prior_quality_examples:  # before the heatmaps, whose report shows it
            jobs.append(Job("prior_quality", _prior_quality, (cfg, needed), all_priors + (_key("train", ce, src),)))
            quality = ("prior_quality",)
        jobs.append(Job("heatmaps", _heatmaps, (cfg, needed), all_priors + quality))
    transfer = str(Path(cfg.out_dir) / "eval" / f"{ce.name}-seed{src}" / "model_attacks") if cfg.model_attacks else None
    runs = [(v, s) for s in seeds for v in cfg.variants if _runs_seed(v, s, ce)]
    for v, s in runs:
        if v.priors:
            deps = tuple(prior_key[m] for m in v.priors) + ((_key("train", ce, s),) if v.init_from_ce else ())
            jobs.append(Job(_key("train", v, s), _train_job, (cfg, v, s), deps))
    jobs += [Job(_key("eval", v, s), _eval_job, (cfg, v, s, transfer), (_key("train", v, s), ce_eval))
             for v, s in runs if _key("eval", v, s) != ce_eval]
    if model_jobs is not None:
        for v, s in runs:
            run_dir = Path(cfg.out_dir) / "runs" / f"{v.name}-seed{s}"
            jobs += [replace(j, deps=(*j.deps, _key("train", v, s))) for j in model_jobs(v, s, run_dir)]
    return jobs


def run_pipeline(cfg: PipelineConfig, command: str = "eg-train demo", model_jobs: ModelJobs | None = None) -> dict:
    """Run every step (a job graph, ``workers`` at a time; ``model_jobs``: extra jobs per trained
    model); returns a summary (also written to ``out_dir/summary.json``)."""
    from eg_train.evaluation.api import attack, report

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (cfg.data.preset or cfg.data.files or cfg.data.hub):
        cfg.data.preset = "banking77"  # the documented default dataset, only when none is given
    tag = claim_outputs(cfg)
    timings = _Timings(out / "timings.json")
    started = time.perf_counter()
    needed = sorted({m for v in cfg.variants for m in v.priors})
    if needed and cfg.ig_prior_seed not in cfg.seeds:
        raise ValueError(f"ig_prior_seed {cfg.ig_prior_seed} is not one of seeds {cfg.seeds}")
    for v in cfg.variants:
        extra = sorted(set(v.seeds or []) - set(cfg.seeds))
        if extra:
            raise ValueError(f"variant {v.name}: seeds {extra} are not among the pipeline's seeds {cfg.seeds}")
    attacks_dir = out / "attacks"
    if not attacks_dir.exists():
        t = time.perf_counter()
        attack(cfg.data, str(attacks_dir), subset=cfg.test_subset, subset_seed=cfg.attack_seed)
        timings.record("attacks_s", time.perf_counter() - t)

    def record(key: str, spent: dict[str, float]) -> None:  # as each job ends: an interrupted run keeps them
        for k, seconds in spent.items():
            timings.record(k, seconds)

    values = run_jobs(pipeline_jobs(cfg, model_jobs), cfg.workers, record)
    ce = ce_variant(cfg)
    cache = out / "prior_cache"
    eval_dirs = [values[_key("eval", v, s)] for s in cfg.seeds for v in cfg.variants if _runs_seed(v, s, ce)]

    last = cfg.variants[-1]
    html = report(
        eval_dirs, str(out / f"report{tag}"), str(attacks_dir),
        priors_cache=str(cache) if needed else None,
        priors_data=cfg.data if needed else None,
        priors_k_shot=cfg.k_shot,
        priors_sample_seed=cfg.sample_seed,
        priors_methods=needed or ["lime", "cap", "ig"],
        heatmap_checkpoint=str(out / "runs" / f"{last.name}-seed{next(s for s in cfg.seeds if _runs_seed(last, s, ce))}" / "model"),
        overwrite=True,
    )
    # Wall time of this invocation (a resumed run counts only the part it ran).
    total = time.perf_counter() - started
    timings.record(f"total{tag}_s", total)
    summary = {"report": html, "runs": eval_dirs, "timings": dict(timings)}
    if cfg.results:
        from eg_train.experiment.results import write_results

        write_results(cfg.results, eval_dirs, dict(timings), cache if needed else None, cfg.data.preset or "",
                      command, f"eg-train experiment: {cfg.data.preset or 'dataset'} {cfg.k_shot}-shot", total_s=total)
        summary["results"] = cfg.results
    for d in eval_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        summary[Path(d).name] = {
            "accuracy": m["clean"]["accuracy"],
            **{f"adv_{k}": a["accuracy"] for k, a in m["attacks"].items()},
        }
    atomic_write_json(out / f"summary{tag}.json", summary)
    return summary


def parse_config(argv: list[str]) -> PipelineConfig:
    """``PipelineConfig`` from ``--config FILE`` and ``--key value`` flags (jsonargparse)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="eg-train demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(PipelineConfig, None, as_group=False)
    d = parser.instantiate_classes(parser.parse_args(argv)).as_dict()
    d.pop("config", None)
    data = d.pop("data")
    variants = [v if isinstance(v, TrainedVariant) else TrainedVariant(**v) for v in d.pop("variants")]
    return PipelineConfig(data=data if isinstance(data, DataSpec) else DataSpec(**data), variants=variants, **d)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[2:] if argv is None else argv)
    summary = run_pipeline(parse_config(argv), command=" ".join(["eg-train demo", *argv]))
    print(json.dumps(summary, indent=2))
