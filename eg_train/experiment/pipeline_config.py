"""What the main job runs: :class:`PipelineConfig`, its parsing, and the few facts every stage reads
off it (its out_dir layout, its training sample, its CE baseline)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eg_train.experiment.layout import RunLayout
from eg_train.experiment.rule import RuleSettings, expand
from eg_train.experiment.variant import TrainedVariant
from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.foundation.data.source import DataSpec

PIPELINE_DESCRIPTION = ("The main job end to end: CE baseline -> priors (LIME, CAP, IG) -> fused priors -> "
                        "explanation-guided training -> attacks -> evaluation -> reports.")


@dataclass
class PipelineConfig:
    """What the main job runs. Defaults: the embedded models, Banking77 5-shot (all intents).

    Attributes:
        out_dir: where every output goes (prior cache, runs, attacks, evaluations, report, summary).
        k_shot: training texts per class, drawn once and shared by the priors and every seed.
        train_config: the training config (a LightningCLI YAML) every variant starts from.
        seeds: the training seeds; every variant runs each unless it lists its own ``seeds``.
        llm: the frozen LLM of the LIME and CAP priors: an embedded alias, a local folder or a hub id.
        slm: the small model trained: an embedded alias, a local folder or a hub id.
        n_samples: perturbations per example of the LIME and CAP priors.
        ridge_lambda: ridge strength of the LIME / CAP regression.
        variants: the models trained and compared; the variant without priors is the CE baseline.
        test_subset: a seeded subset of the test split to evaluate on (None: all of it).
        attack_seed: seed of the keyword attacks.
        eval_ig_steps: IG steps of the word ranking behind comprehensiveness and sufficiency.
    """

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
        default_factory=lambda: [TrainedVariant("ce"), TrainedVariant("eg", ["lime", "cap", "ig"])]
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
    # Run the job graph on this existing Dask cluster (e.g. tcp://host:8786, started by dask-jobqueue)
    # instead of a local one; its workers must share this out_dir's filesystem (docs/distributed.md).
    scheduler_address: str | None = None
    # Every stage's precision (docs/precision.md): fp32 | bf16 (priors' LLM in bf16, training
    # bf16-mixed, evaluation / attacks under bf16 autocast) | auto (bf16 where the hardware has it)
    precision: str = "fp32"
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
    # The shortcut audit (eg_train/experiment/audit_jobs.py, docs/audit.md): audit the CE model of every
    # seed (audit_models: all, every trained model) into <out_dir>/audit/<variant>-seed<k>-<key>/audit.json.
    audit: bool = False
    audit_models: str = "ce"
    audit_priors: list[str] | None = None  # default: every LLM prior a variant uses (fused, mean)
    audit_reserve_per_class: int = 2  # held-out texts per class when the data has no validation split
    audit_params: dict[str, Any] = field(default_factory=dict)  # AuditConfig fields
    # The recipe rule's settings over eg_train.experiment.rule.RuleSettings (penalty_weights, ...).
    rule: dict[str, Any] = field(default_factory=dict)
    # Evaluate (test set, attacks) a rule variant's candidates too, not only the chosen model.
    evaluate_candidates: bool = True
    # Keep each finished run's Lightning checkpoints (best.ckpt + last.ckpt, each about twice the
    # model's size). The pipeline reads a finished run through its model/ folder and resumes an
    # interrupted one from last.ckpt, so by default a run's checkpoints go once its model is exported.
    keep_checkpoints: bool = False

    def __post_init__(self) -> None:
        expand_rules(self)


def expand_rules(cfg: PipelineConfig) -> PipelineConfig:
    """Add every rule variant's candidates to ``cfg.variants`` (idempotent; also after the variants
    were replaced)."""
    if all(isinstance(v, TrainedVariant) for v in cfg.variants):
        cfg.variants = expand(cfg.variants, RuleSettings.from_mapping(cfg.rule))
    return cfg


# PipelineConfig fields that change no figure, added after suite cases were keyed: left out of a
# case's key (eg_train.experiment.suite.case_key), so adding one does not recompute every record.
RESULT_NEUTRAL_FIELDS = ("keep_checkpoints",)


def layout(cfg: PipelineConfig) -> RunLayout:
    """The paths of ``cfg.out_dir``."""
    return RunLayout(Path(cfg.out_dir))


def sample_spec(cfg: PipelineConfig) -> SampleSpec:
    """The one training sample of the experiment: the priors are computed on it and every variant trains on it."""
    return SampleSpec(data=cfg.data, k_shot=cfg.k_shot, seed=cfg.sample_seed)


def merge_options(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, recursively (mappings merge, other values replace)."""
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        out[k] = merge_options(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def is_baseline(variant: TrainedVariant) -> bool:
    """A variant without priors and without a targeted penalty: the CE baseline."""
    from eg_train.experiment.rule import penalty_weight

    return not variant.priors and penalty_weight(variant) == 0


def ce_variant(cfg: PipelineConfig) -> TrainedVariant:
    """The CE baseline: the config's variant without priors or penalty, else ``ce`` (always trained)."""
    return next((v for v in cfg.variants if is_baseline(v)), TrainedVariant("ce"))


def ig_prior_run_seed(cfg: PipelineConfig) -> int:
    """The seed whose CE model gives the IG prior: ``ig_prior_seed`` when it is trained, else the first seed."""
    return cfg.ig_prior_seed if cfg.ig_prior_seed in cfg.seeds else cfg.seeds[0]


def parse_config(argv: list[str]) -> PipelineConfig:
    """``PipelineConfig`` from ``--config FILE`` and ``--key value`` flags (jsonargparse)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="eg-train pipeline", description=PIPELINE_DESCRIPTION)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(PipelineConfig, None, as_group=False)
    d = parser.instantiate_classes(parser.parse_args(argv)).as_dict()
    d.pop("config", None)
    return pipeline_from_dict(d)


def pipeline_from_dict(d: dict[str, Any] | PipelineConfig) -> PipelineConfig:
    """A ``PipelineConfig`` from its parsed mapping (nested data spec and variants as mappings or objects)."""
    if isinstance(d, PipelineConfig):
        return d
    d = dict(d)
    data = d.pop("data", None) or {}
    variants = [v if isinstance(v, TrainedVariant) else TrainedVariant(**v) for v in d.pop("variants", [])]
    return PipelineConfig(data=data if isinstance(data, DataSpec) else DataSpec(**data), variants=variants, **d)
