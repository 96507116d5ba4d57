"""The main job end to end: CE baseline -> priors (LIME, CAP, IG) -> fused priors -> explanation-
guided training -> attacks -> evaluation -> reports.

    eg-train pipeline [--config configs/pipeline_demo.yaml] [--out_dir outputs/demo] [--seeds '[0,1,2]']

The k-shot training sample is drawn once (``sample_seed``) and shared by every seed, so the priors
are computed once and reused: LIME and CAP (the LLM) before any training, IG from the CE model of
``ig_prior_seed``. Seeds vary the model's initialisation and the data order.

Every step writes into ``out_dir`` (:class:`~eg_train.experiment.layout.RunLayout`) and is skipped
when an output of the same *key* exists: the content fingerprints of the data it reads, the keys
of what it was built from and the settings that change it (:func:`plan`, computed before any job
starts). A changed setting or file computes into a folder of its own; an interrupted run resumes
where it stopped (a training from its ``last.ckpt``, the prior cache inside a step). Shared outputs
are built under file locks, so named configs may run on one out_dir at once (docs/outputs.md).
The config is checked before anything runs (:func:`check_config`) and saved as
``out_dir/pipeline[-NAME].yaml``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

from eg_train.experiment.jobs import Job, run_jobs
from eg_train.experiment.layout import RunId, RunLayout, check_key, short_key, write_key
from eg_train.experiment.pipeline_config import (  # noqa: F401 - PipelineConfig, parse_config: re-exported
    RESULT_NEUTRAL_FIELDS,
    PipelineConfig,
    ce_variant,
    expand_rules,
    ig_prior_run_seed,
    is_baseline,
    layout,
    merge_options,
    parse_config,
    sample_spec,
)
from eg_train.experiment.prior_jobs import heatmaps_job, prior_config, prior_job, prior_quality_job
from eg_train.experiment.rule import (
    RULE_AUDIT_JOB,
    RULE_VERSION,
    RuleSettings,
    is_rule,
    rule_audit_file,
    rule_audit_job,
    rule_audit_key,
    uses_audit_positions,
)
from eg_train.experiment.variant import TrainedVariant  # noqa: F401 - re-exported
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.fingerprint import split_fingerprint
from eg_train.foundation.io import atomic_write_json, atomic_write_text, locked, update_json

log = logging.getLogger("eg_train.experiment.pipeline")


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


# ---------------------------------------------------------------------------------------------
# Keys: what every reused artefact depends on (eg_train.experiment.layout).


@dataclass(frozen=True)
class ModelPlan:
    """One trained model of the config and its evaluation: ids, paths and key documents."""

    run: RunId
    run_dir: str
    train_key: dict
    eval_dir: str
    eval_key: dict


@dataclass(frozen=True)
class Plan:
    """Every keyed artefact of one config on its out_dir, computed before any job starts."""

    layout: RunLayout
    data: dict  # split -> content fingerprint (None: the split does not exist)
    attacks_dir: str
    attacks_key: dict
    prior_keys: dict  # method -> key document of its prior setting
    models: dict  # "<variant>-seed<s>" -> ModelPlan
    # The recipe rule's audit of the CE model (eg_train/experiment/rule.py): {key, file, methods}; None: no rule.
    rule_audit: dict | None = None

    def model(self, variant: TrainedVariant, seed: int) -> ModelPlan:
        return self.models[RunId.label_for(variant.name, seed)]

    def find(self, variant: str, seed: int) -> ModelPlan | None:
        """The model of variant ``variant`` and ``seed``, or None when the config does not train it."""
        return self.models.get(RunId.label_for(variant, seed))


_FINGERPRINTS: dict[str, dict[str, str | None]] = {}


def _spec_state(data: DataSpec) -> str:
    """The spec and the size and modification time of every file it names: a file rewritten in
    place is fingerprinted again, an unchanged one is not re-read within a process."""
    files = {}
    for name, path in sorted((data.files or {}).items()):
        p = Path(path)
        files[name] = [str(p.resolve()), *((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else ())]
    return json.dumps({"spec": asdict(data), "files": files}, sort_keys=True, default=str)


def data_fingerprints(data: DataSpec) -> dict[str, str | None]:
    """Content fingerprint of the train, validation and test splits of ``data`` (None: no such split)."""
    state = _spec_state(data)
    if state not in _FINGERPRINTS:
        _FINGERPRINTS[state] = _read_fingerprints(data)
    return dict(_FINGERPRINTS[state])


def _read_fingerprints(data: DataSpec) -> dict[str, str | None]:
    from eg_train.foundation.data.source import DataError, load_split

    out: dict[str, str | None] = {}
    for split in ("train", "validation", "test"):
        try:
            out[split] = split_fingerprint(load_split(data, split))
        except DataError:
            if split != "validation":
                raise
            out[split] = None
    return out


def _prior_key(cfg: PipelineConfig, method: str, ce_model: Path | None) -> dict:
    """What a prior depends on: its resolved prior-stage setting (the IG prior's CE model included)."""
    return {"method": method,
            "config": _prior_setting(asdict(prior_config(cfg, [method], ce_model if method == "ig" else None)))}


def _prior_setting(priors_config: dict) -> dict:
    """A ``PriorsConfig`` mapping without what does not change the prior (where it is stored and
    run, the test file: priors are computed on the training sample only)."""
    doc = _jsonable(priors_config)
    for k in ("cache_dir", "device", "methods"):
        doc.pop(k, None)
    if isinstance(doc.get("data", {}).get("files"), dict):
        doc["data"]["files"].pop("test", None)
    return doc


def check_prior_cache(p: Plan) -> None:
    """Refuse, before any job, a prior cache that holds a method's priors of another setting: the
    training reads one setting per method from it (:class:`ConfigError` naming what differs)."""
    configs = p.layout.prior_cache / "configs"
    for method, key in p.prior_keys.items():
        stored = [_prior_setting(json.loads(f.read_text())["priors_config"]) for f in sorted(configs.glob(f"{method}-*.json"))]
        if stored and key["config"] not in stored:
            differs = sorted(k for k in set(key["config"]) | set(stored[0]) if key["config"].get(k) != stored[0].get(k))
            raise ConfigError(
                f"{p.layout.prior_cache} holds {method} priors of another setting (differs in: {', '.join(differs)}); "
                "a prior cache holds one setting per method: use another out_dir for this config")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def plan(cfg: PipelineConfig, fingerprints: dict[str, str | None] | None = None) -> Plan:
    """The keys and folders of every trained model, evaluation and attack set of ``cfg``.

    A model's key: its resolved training configuration (without its folder), the fingerprints of
    the training and validation splits, and the keys of the priors it aligns to (the IG prior's
    includes the CE model it came from). An evaluation's: the model's key, the test split's
    fingerprint, the attack set's key and the evaluation settings.
    """
    from eg_train.evaluation.attacks.build import AttackConfig
    from eg_train.foundation.device import resolve_precision

    expand_rules(cfg)
    lay = layout(cfg)
    fps = fingerprints if fingerprints is not None else data_fingerprints(cfg.data)
    ce = ce_variant(cfg)
    src = ig_prior_run_seed(cfg)
    train_data = {"train": fps["train"], "validation": fps.get("validation")}
    attacks_key = {"train": fps["train"], "test": fps["test"], "subset": cfg.test_subset,
                   "subset_seed": cfg.attack_seed, "params": _jsonable(asdict(AttackConfig()))}
    attacks_dir = lay.attacks_dir(short_key(attacks_key))
    # bf16 evaluations get keys of their own; fp32 keeps the keys it always had.
    eval_precision = {"precision": "bf16"} if resolve_precision(cfg.precision, cfg.device) == "bf16" else {}
    models: dict[str, ModelPlan] = {}

    rule_audit: dict | None = None

    def add(variant: TrainedVariant, seed: int, prior_keys: dict) -> ModelPlan:
        if is_rule(variant):
            key = rule_key(variant, seed)
        else:
            key = train_key(variant, seed, prior_keys)
        run = RunId(variant.name, seed, short_key(key))
        return add_plan(variant, seed, run, key)

    def train_key(variant: TrainedVariant, seed: int, prior_keys: dict) -> dict:
        init = Path(models[RunId.label_for(ce.name, seed)].run_dir) / "model" if variant.init_from_ce else None
        penalty = rule_audit["file"] if rule_audit and uses_audit_positions(variant) else None
        tc = train_config(cfg, variant, seed, lay.prior_cache if variant.priors else None, Path("."), init_model=init,
                          penalty_file=penalty)
        mapping = tc.to_mapping()
        mapping["trainer"].pop("default_root_dir", None)
        for section, option in KEY_NEUTRAL_OPTIONS:  # keys as before these options existed, when unset
            if option in mapping.get(section, {}) and mapping[section][option] is None:
                mapping[section].pop(option)
        files = mapping.get("data", {}).get("files")
        if isinstance(files, dict):  # training never reads the test split: configs that differ in it share models
            files.pop("test", None)
        key = {"train": _jsonable(mapping), "data": train_data,
               "priors": {m: prior_keys[m] for m in variant.priors}}
        if penalty:
            key["penalty_audit"] = rule_audit["key"]
        return key

    def rule_key(variant: TrainedVariant, seed: int) -> dict:
        # The rule's model is one of its candidates' (or CE's): its key is theirs, the audit's and the rule's.
        names = [ce.name] + [v.name for v in cfg.variants if v.candidate_of == variant.name]
        return {"rule": _jsonable(asdict(RuleSettings.from_mapping(cfg.rule))), "version": RULE_VERSION,
                "candidates": {n: models[RunId.label_for(n, seed)].run.key for n in names},
                "audit": rule_audit["key"] if rule_audit else None}

    def add_plan(variant: TrainedVariant, seed: int, run: RunId, key: dict) -> ModelPlan:
        transfer = None
        if cfg.model_attacks and not (variant is ce and seed == src):
            transfer = models[RunId.label_for(ce.name, src)].eval_key
        eval_key = {"model": run.key, "method": variant.name, "test": fps["test"], "attacks": short_key(attacks_key),
                    "settings": {"subset": cfg.test_subset, "subset_seed": cfg.attack_seed,
                                 "faithfulness_examples": cfg.faithfulness_examples, "ig_steps": cfg.eval_ig_steps,
                                 "model_attacks": list(cfg.model_attacks), **eval_precision},
                    "transfer": short_key(transfer) if transfer else None}
        mp = ModelPlan(run, str(lay.run_dir(run)), key, str(lay.eval_dir(run, short_key(eval_key))), eval_key)
        models[run.label] = mp
        return mp

    seeds = sorted(cfg.seeds, key=lambda s: s != src)
    for s in seeds:  # the CE runs first: the IG prior and the warm starts need their folders
        add(ce, s, {})
    needed = sorted({m for v in cfg.variants for m in v.priors})
    ce_model = Path(models[RunId.label_for(ce.name, src)].run_dir) / "model"
    prior_keys = {m: _prior_key(cfg, m, ce_model) for m in needed}
    methods = rule_audit_methods(cfg)
    if methods:
        akey = rule_audit_key(cfg, models[RunId.label_for(ce.name, src)].run.key, prior_keys, methods)
        rule_audit = {"key": akey, "file": str(rule_audit_file(cfg, akey)), "methods": methods}
    for s in seeds:
        for v in sorted(cfg.variants, key=is_rule):  # a rule variant after the candidates it chooses from
            if v is not ce and _runs_seed(v, s, ce):
                add(v, s, prior_keys)
    return Plan(lay, fps, str(attacks_dir), attacks_key, prior_keys, models, rule_audit)


# Training options added after runs were keyed: left out of a model's key while unset (None), so a new
# option does not retrain every existing run.
KEY_NEUTRAL_OPTIONS = (("data", "penalty_positions"), ("model", "align_top_layers"))


def rule_audit_methods(cfg: PipelineConfig) -> list[str]:
    """The LLM priors the rule audit reads (those of the config's variants), or [] when no variant
    trains on the audit's positions."""
    if not any(uses_audit_positions(v) for v in cfg.variants):
        return []
    from eg_train.experiment.audit_jobs import audit_methods

    return audit_methods(cfg)


# ---------------------------------------------------------------------------------------------
# Training.


def _train(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None,
           model: ModelPlan, init_model: Path | None = None) -> tuple[Path, bool]:
    """Train one variant unless a model of the same key exists; returns its run folder and whether
    it was trained now (False: it existed, or another process trained it while this one waited)."""
    run_dir = Path(model.run_dir)
    if _trained(run_dir, model.train_key):
        log.info("%s seed %d: trained model exists, skipping (%s)", variant.name, seed, run_dir)
        return run_dir, False
    with _run_lock(run_dir):
        if _trained(run_dir, model.train_key):  # trained by another pipeline while this one waited
            log.info("%s seed %d: trained by another process meanwhile (%s)", variant.name, seed, run_dir)
            return run_dir, False
        if uses_audit_positions(variant) and not _audit_positions(cfg):
            from eg_train.experiment.rule import same_as_ce

            log.info("%s seed %d: the audit confirmed no feature; the penalty has no word: the CE model", variant.name, seed)
            same_as_ce(run_dir, Path(plan(cfg).model(ce_variant(cfg), seed).run_dir), model.train_key)
            return run_dir, False
        _fit(cfg, variant, seed, cache_dir, run_dir, init_model)
        write_key(run_dir, model.train_key)
        if not cfg.keep_checkpoints:
            from eg_train.training.rundir import remove_checkpoints

            log.info("%s seed %d: removed the finished run's checkpoints (%.0f MB; keep_checkpoints: true keeps them)",
                     variant.name, seed, remove_checkpoints(run_dir) / 2**20)
    return run_dir, True


def _audit_positions(cfg: PipelineConfig) -> int:
    """Training texts covered by the rule audit's confirmed features."""
    from eg_train.experiment.rule import confirmed_positions

    return confirmed_positions(plan(cfg).rule_audit["file"])


def _trained(run_dir: Path, key: dict) -> bool:
    return (run_dir / "model" / "config.json").is_file() and check_key(run_dir, key)


@contextmanager
def _run_lock(run_dir: Path, timeout: float = -1):
    """Hold ``<run_dir>.lock`` while training, so two pipelines sharing an out_dir never train
    (and wipe) the same run: the second waits, then reuses the first one's model. An OS file lock
    (``filelock``): a killed holder releases it."""
    with locked(RunLayout.lock_file(run_dir), what=f"{run_dir} (being trained)", timeout=timeout):
        yield


def train_config(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None, run_dir: Path,
                 init_model: Path | None = None, penalty_file: str | None = None):
    """The typed :class:`~eg_train.training.config.TrainConfig` of one variant and seed
    (``init_model``: the CE model a variant with ``init_from_ce`` starts from; ``penalty_file``: the
    rule audit's ``audit.json`` for ``data.penalty_positions: audit``)."""
    from eg_train.training.api import PriorSpec, TrainConfig
    from eg_train.training.config import load_yaml

    path = Path(cfg.train_config)
    if not path.is_file():
        raise ConfigError(f"train_config {path} not found")
    mapping = merge_options(merge_options(load_yaml(path.read_text(encoding="utf-8")) or {}, cfg.train), variant.train)
    tc = TrainConfig.from_mapping(mapping)
    tc.run_dir = str(run_dir)
    tc.seed = seed
    tc.overwrite = True  # only reached for a run without an exported model (an interrupted one)
    tc.model.model_name = cfg.slm
    if variant.init_from_ce:
        if not variant.priors:
            raise ConfigError(f"variant {variant.name}: init_from_ce starts an aligned run from the CE model; it needs priors")
        if init_model is None:
            init_model = Path(plan(cfg).model(ce_variant(cfg), seed).run_dir) / "model"
        tc.model.model_name = str(init_model)
    tc.data.sample = sample_spec(cfg)
    if uses_audit_positions(variant):
        if penalty_file is None:
            penalty_file = (plan(cfg).rule_audit or {}).get("file")
        if penalty_file is None:
            raise ConfigError(f"variant {variant.name}: data.penalty_positions: audit needs an LLM prior (lime or cap) "
                              "in some variant, for the audit")
        tc.data.penalty_positions = str(penalty_file)
    tc.trainer.accelerator = "gpu" if cfg.device.startswith("cuda") else "cpu"
    if tc.trainer.precision is None:  # a train mapping's own trainer.precision wins
        from eg_train.foundation.device import resolve_precision

        if resolve_precision(cfg.precision, cfg.device) == "bf16":
            tc.trainer.precision = "bf16-mixed"
    if variant.priors:
        tc.prior = PriorSpec(cache_dir=str(cache_dir), methods=list(variant.priors), fusion=variant.fusion, on_missing="error")
    else:
        tc.prior = None
        tc.model.beta = 0.0  # the CE baseline: no alignment term at all
    return tc


def _fit(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None, run_dir: Path,
         init_model: Path | None = None) -> None:
    """Train into ``run_dir``; a run interrupted after a finished epoch resumes from its ``last.ckpt``
    (its folder is named by its key: the checkpoint is of this very training)."""
    from eg_train.training.api import fit
    from eg_train.training.rundir import resumable_checkpoint

    tc = train_config(cfg, variant, seed, cache_dir, run_dir, init_model=init_model)
    last = resumable_checkpoint(run_dir)
    if last is not None:
        log.info("%s seed %d: resuming the interrupted run from %s", variant.name, seed, last)
        tc.ckpt_path, tc.overwrite = str(last), False
    fit(tc)


# ---------------------------------------------------------------------------------------------
# Jobs of the graph.


def _train_job(cfg: PipelineConfig, variant: TrainedVariant, seed: int, model: ModelPlan,
               init_model: str | None = None) -> tuple[dict[str, float], str]:
    """Train one variant unless its model exists; returns ``({key: seconds}, run_dir)``."""
    t = time.perf_counter()
    cache = layout(cfg).prior_cache if variant.priors else None
    run, ran = _train(cfg, variant, seed, cache, model, Path(init_model) if init_model else None)
    return ({RunLayout.timing_key("train", model.run): time.perf_counter() - t} if ran else {}), str(run)


def _attacks(cfg: PipelineConfig, target: str, key: dict) -> tuple[dict[str, float], str]:
    """The keyword attacks of this config's test set into ``target`` (named by its key), unless
    built already; under a lock, so a second config with the same test set waits and reuses them."""
    from eg_train.evaluation.api import attack

    path = Path(target)
    with locked(RunLayout.lock_file(path), what=str(path), timeout=-1):
        if path.exists() and check_key(path, key):
            return {}, target
        t = time.perf_counter()
        attack(cfg.data, target, subset=cfg.test_subset, subset_seed=cfg.attack_seed, overwrite=True)
        write_key(path, key)
    return {RunLayout.timing_key("attacks", what=path.name): time.perf_counter() - t}, target


def _eval_job(cfg: PipelineConfig, variant: TrainedVariant, seed: int, model: ModelPlan, attacks_dir: str,
              transfer: str | None = None) -> tuple[dict[str, float], str]:
    """Evaluate one trained variant unless an evaluation of the same key exists; returns
    ``({key: seconds}, eval_dir)``.

    Clean accuracy, faithfulness, the keyword attacks, the model-aware recipes against the model
    itself (adaptive) and, with ``transfer``, the texts made against the CE model (comparable across models).
    """
    from eg_train.evaluation.api import evaluate
    from eg_train.evaluation.attacks.recipes import ModelAttackConfig
    from eg_train.evaluation.evaluate import EvalConfig

    eval_dir = Path(model.eval_dir)
    if (eval_dir / "metrics.json").is_file() and check_key(eval_dir, model.eval_key):
        return {}, str(eval_dir)
    with locked(RunLayout.lock_file(eval_dir), what=f"{eval_dir} (being evaluated)", timeout=-1):
        if (eval_dir / "metrics.json").is_file() and check_key(eval_dir, model.eval_key):
            return {}, str(eval_dir)
        if transfer is not None and not Path(transfer).is_dir():
            transfer = None  # the CE model's evaluation wrote no model-aware texts
        t = time.perf_counter()
        evaluate(str(Path(model.run_dir) / "model"), cfg.data, str(eval_dir), attacks_dir, method=variant.name,
                 seed=seed, subset=cfg.test_subset, subset_seed=cfg.attack_seed,
                 params=EvalConfig(faithfulness_examples=cfg.faithfulness_examples, ig_steps=cfg.eval_ig_steps,
                                   device=cfg.device, precision=cfg.precision),
                 transfer=transfer, model_attacks=list(cfg.model_attacks),
                 attack_params=ModelAttackConfig(recipes=tuple(cfg.model_attacks) or ModelAttackConfig().recipes,
                                                 seed=cfg.attack_seed, precision=cfg.precision),
                 overwrite=True)
        write_key(eval_dir, model.eval_key)
    return {RunLayout.timing_key("eval", model.run): time.perf_counter() - t}, str(eval_dir)


def _config_doc(cfg: PipelineConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg)))


def output_tag(cfg: PipelineConfig) -> str:
    """``-<name>`` (``name``, else the ``results`` file's stem), or empty: the tag of this config's own outputs."""
    name = cfg.name or (Path(cfg.results).name if cfg.results else None)
    return f"-{name}" if name else ""


def claim_outputs(cfg: PipelineConfig) -> str:
    """Save the configuration as ``pipeline[-<name>].yaml`` and return the tag of this config's outputs.

    A different configuration already saved under the same tag owns that report and summary: refuse
    rather than overwrite them (a rerun of the same configuration resumes; ``workers`` and
    ``keep_checkpoints`` may differ).
    """
    import yaml

    tag = output_tag(cfg)
    path = layout(cfg).config_file(tag)
    mine = _config_doc(cfg)
    with locked(RunLayout.lock_file(path), what=str(path), timeout=-1):
        if path.is_file():
            theirs = yaml.safe_load(path.read_text()) or {}
            where = ("workers", "scheduler_address", *RESULT_NEUTRAL_FIELDS)  # how it runs, not what it computes
            differs = sorted(k for k in set(mine) | set(theirs) if k not in where and mine.get(k) != theirs.get(k))
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
    return f"{step}:{RunId.label_for(variant.name, seed)}"


def prior_job_key(method: str) -> str:
    """The key of the job that computes the ``method`` prior (a dependency for extra jobs)."""
    return f"priors:{method}"


ATTACKS_JOB = "attacks"


def pipeline_jobs(cfg: PipelineConfig, model_jobs: ModelJobs | None = None, the_plan: Plan | None = None) -> list[Job]:
    """The pipeline's steps as a job graph, in priority order.

    The LLM priors (the longest jobs) first; the CE model of ``ig_prior_seed`` next (the IG prior
    and every transfer attack need it); an aligned run waits only for its own priors (and the CE run
    of its seed with ``init_from_ce``), and an evaluation for its model, the keyword attacks and the
    CE model's evaluation (the transfer texts).
    """
    expand_rules(cfg)
    p = the_plan or plan(cfg)
    ce = ce_variant(cfg)
    needed = sorted({m for v in cfg.variants for m in v.priors})
    src = ig_prior_run_seed(cfg)
    seeds = sorted(cfg.seeds, key=lambda s: s != src)
    prior_key = {m: prior_job_key(m) for m in needed}
    ce_src = p.model(ce, src)
    ce_model = str(Path(ce_src.run_dir) / "model")
    jobs = [Job(prior_key[m], prior_job, (cfg, m)) for m in needed if m != "ig"]
    jobs.append(Job(_key("train", ce, src), _train_job, (cfg, ce, src, ce_src)))
    if "ig" in needed:
        jobs.append(Job(prior_key["ig"], prior_job, (cfg, "ig", Path(ce_model)), (_key("train", ce, src),)))
    jobs.append(Job(ATTACKS_JOB, _attacks, (cfg, p.attacks_dir, p.attacks_key)))
    ce_eval = _key("eval", ce, src)
    jobs.append(Job(ce_eval, _eval_job, (cfg, ce, src, ce_src, p.attacks_dir), (_key("train", ce, src), ATTACKS_JOB)))
    jobs += [Job(_key("train", ce, s), _train_job, (cfg, ce, s, p.model(ce, s))) for s in seeds if s != src]
    if needed:
        all_priors = tuple(prior_key.values())
        quality = ()
        if cfg.prior_quality_examples:  # before the heatmaps, whose report shows it
            jobs.append(Job("prior_quality", prior_quality_job, (cfg, needed, Path(ce_model)),
                            all_priors + (_key("train", ce, src),)))
            quality = ("prior_quality",)
        jobs.append(Job("heatmaps", heatmaps_job, (cfg, needed, str(heatmaps_file(p, needed))), all_priors + quality))
    transfer = str(Path(ce_src.eval_dir) / "model_attacks") if cfg.model_attacks else None
    runs = [(v, s) for s in seeds for v in cfg.variants if _runs_seed(v, s, ce)]
    if p.rule_audit:
        ra = p.rule_audit
        ce_tc = train_config(cfg, ce, src, None, Path("."))
        jobs.append(Job(RULE_AUDIT_JOB, rule_audit_job, (cfg, ce_src.run_dir, ra["methods"], ra["key"], ce_tc.data,
                                                         ce_tc.model.model_name),
                        (_key("train", ce, src), *(prior_key[m] for m in ra["methods"]))))
    for v, s in runs:
        if v is ce:
            continue
        if is_rule(v):
            continue  # linked to its chosen candidate by the selection below
        deps = tuple(prior_key[m] for m in v.priors) + ((_key("train", ce, s),) if v.init_from_ce else ())
        if uses_audit_positions(v):
            deps += (RULE_AUDIT_JOB, _key("train", ce, s))
        init = str(Path(p.model(ce, s).run_dir) / "model") if v.init_from_ce else None
        jobs.append(Job(_key("train", v, s), _train_job, (cfg, v, s, p.model(v, s), init), deps))
    for v in [v for v in cfg.variants if is_rule(v) and v is not ce]:
        jobs += _rule_jobs(cfg, p, v, ce, [s for s in seeds if _runs_seed(v, s, ce)])
    jobs += [Job(_key("eval", v, s), _eval_job, (cfg, v, s, p.model(v, s), p.attacks_dir, transfer),
                 (_key("train", v, s), ATTACKS_JOB, ce_eval))
             for v, s in runs if _key("eval", v, s) != ce_eval and (cfg.evaluate_candidates or v.candidate_of is None)]
    from eg_train.experiment.audit_jobs import audit_jobs

    jobs += audit_jobs(cfg, runs, ce.name, prior_key, lambda v, s: _key("train", v, s), p)
    if model_jobs is not None:
        for v, s in runs:
            jobs += [replace(j, deps=(*j.deps, _key("train", v, s))) for j in model_jobs(v, s, Path(p.model(v, s).run_dir))]
    return jobs


def _rule_jobs(cfg: PipelineConfig, p: Plan, v: TrainedVariant, ce: TrainedVariant, seeds: list[int]) -> list[Job]:
    """The selection of rule variant ``v`` among CE and its candidates, then one job per seed that
    links its run folder to the chosen model (``train:<v>-seed<k>``: what its evaluation waits for)."""
    order = [ce.name] + [c.name for c in cfg.variants if c.candidate_of == v.name]
    run_dirs = {n: {s: p.find(n, s).run_dir for s in seeds} for n in order}
    targets = {s: p.model(v, s).run_dir for s in seeds}
    keys = {s: p.model(v, s).train_key for s in seeds}
    choice = p.layout.out_dir / "select" / f"{v.name}-{short_key(keys)}" / "choice.json"
    audit = p.rule_audit["file"] if p.rule_audit else None
    deps = tuple(_key("train", TrainedVariant(n), s) for n in order for s in seeds) + ((RULE_AUDIT_JOB,) if audit else ())
    done = all(_trained(Path(targets[s]), keys[s]) for s in seeds) and choice.is_file()
    jobs = [] if done else [Job(f"select:{v.name}", _select_job, (cfg, v.name, order, run_dirs, audit, targets, keys,
                                                                  str(choice)), deps)]
    for s in seeds:
        jobs.append(Job(_key("train", v, s), _link_job, (str(choice), run_dirs, targets[s], keys[s], s),
                        () if done else (f"select:{v.name}",)))
    return jobs


def _select_job(cfg, name, order, run_dirs, audit, targets, keys, choice) -> tuple[dict[str, float], str]:
    from eg_train.experiment.rule import select_job

    with locked(RunLayout.lock_file(Path(choice).parent), what=f"{choice} (being chosen)", timeout=-1):
        if Path(choice).is_file() and all(_trained(Path(targets[s]), keys[s]) for s in targets):
            return {}, json.loads(Path(choice).read_text())["chosen"]
        tc = train_config(cfg, ce_variant(cfg), cfg.seeds[0], None, Path("."))
        return select_job(cfg, name, order, run_dirs, audit, targets, keys, choice, tc.data, tc.model.model_name)


def _link_job(choice: str, run_dirs: dict, target: str, key: dict, seed: int) -> tuple[dict[str, float], str]:
    """The rule variant's run of ``seed``: a link to the chosen candidate's model (done by the
    selection; redone here when the folder was removed)."""
    from eg_train.experiment.rule import link_model

    if not _trained(Path(target), key):
        doc = json.loads(Path(choice).read_text())
        link_model(Path(target), Path(run_dirs[doc["chosen"]][seed]), key,
                   {"chosen": doc["chosen"], "reason": doc["reason"], "selection": str(choice)})
    return {}, target


def heatmaps_file(p: Plan, methods: list[str]) -> Path:
    """The prior heatmaps of the priors ``methods`` as this config computes them."""
    return p.layout.heatmaps_file(short_key({"data": p.data["train"], "priors": [p.prior_keys[m] for m in methods]}))


# ---------------------------------------------------------------------------------------------
# The config, checked before anything runs.


def _names(registry: Any) -> list[str]:
    """The registered names of a registry (a ``Registry`` with ``names()`` or a plain mapping)."""
    return sorted(registry.names() if hasattr(registry, "names") else registry)


def check_config(cfg: PipelineConfig) -> None:
    """Refuse a config that cannot run, before any job starts (:class:`ConfigError`, one line)."""
    from eg_train.evaluation.attacks.recipes import RECIPES
    from priors.fusion import FUSIONS
    from priors.methods import PRIOR_REGISTRY

    expand_rules(cfg)
    if not cfg.seeds:
        raise ConfigError("seeds is empty; give at least one training seed (e.g. seeds: [0])")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds {cfg.seeds} repeat a seed")
    if not cfg.variants:
        raise ConfigError("variants is empty; give at least the CE baseline (variants: [{name: ce}])")
    names = [v.name for v in cfg.variants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"variants: duplicate variant names {dup}; give every variant a name of its own")
    from eg_train.experiment.rule import resolved_recipe

    for v in cfg.variants:
        if resolved_recipe(v) == "rule" and not v.priors:
            raise ConfigError(f"variant {v.name}: recipe: rule chooses among prior recipes; give it priors (e.g. [lime, cap])")
    baselines = [v.name for v in cfg.variants if is_baseline(v)]
    if len(baselines) > 1:
        raise ConfigError(f"variants: {baselines} have no priors and no penalty; one CE baseline only "
                          "(give the others priors or model.penalty_weight)")
    from eg_train.evaluation.audit import AuditConfig

    known = sorted(f.name for f in fields(AuditConfig))
    unknown = sorted(set(cfg.audit_params or {}) - set(known))
    if unknown:
        raise ConfigError(f"audit_params: unknown option(s) {unknown}; known: {known}")
    if any(uses_audit_positions(v) for v in cfg.variants) and not rule_audit_methods(cfg):
        raise ConfigError("data.penalty_positions: audit needs an LLM prior (lime or cap) in some variant, for the audit")
    methods, fusions = _names(PRIOR_REGISTRY), _names(FUSIONS)
    for v in cfg.variants:
        bad = [m for m in v.priors if m not in methods]
        if bad:
            raise ConfigError(f"variant {v.name}: unknown prior methods {bad}; choose from {methods}")
        if len(set(v.priors)) != len(v.priors):
            raise ConfigError(f"variant {v.name}: priors {v.priors} repeat a method")
        if not v.priors and (v.fusion != "mean" or v.init_from_ce):
            raise ConfigError(f"variant {v.name}: a CE baseline (no priors) takes no fusion or init_from_ce; "
                              "give it priors or remove them")
        if v.priors and v.fusion not in fusions:
            raise ConfigError(f"variant {v.name}: unknown fusion {v.fusion!r}; choose from {fusions}")
        extra = sorted(set(v.seeds or []) - set(cfg.seeds))
        if extra:
            raise ConfigError(f"variant {v.name}: seeds {extra} are not among the pipeline's seeds {cfg.seeds}")
    needed = {m for v in cfg.variants for m in v.priors}
    if needed and cfg.ig_prior_seed not in cfg.seeds:
        raise ConfigError(f"ig_prior_seed {cfg.ig_prior_seed} is not one of seeds {cfg.seeds}")
    recipes = _names(RECIPES)
    bad = [r for r in cfg.model_attacks if r not in recipes]
    if bad:
        raise ConfigError(f"model_attacks: unknown recipes {bad}; choose from {recipes}")
    if not baselines and "ce" in names:
        raise ConfigError("variants: 'ce' has priors, but the CE baseline is trained as 'ce' when no variant is "
                          "without priors; rename it, or add the baseline (e.g. {name: ce})")
    if not Path(cfg.train_config).is_file():
        raise ConfigError(f"train_config {cfg.train_config} not found")


# ---------------------------------------------------------------------------------------------
# The run.


def run_pipeline(cfg: PipelineConfig, command: str = "eg-train pipeline", model_jobs: ModelJobs | None = None) -> dict:
    """Run every step (a job graph, ``workers`` at a time; ``model_jobs``: extra jobs per trained
    model); returns a summary (also written to ``out_dir/summary[-NAME].json``)."""
    from eg_train.evaluation.api import report
    from eg_train.experiment.audit_jobs import audit_dir

    if not (cfg.data.preset or cfg.data.files or cfg.data.hub):
        cfg.data.preset = "banking77"  # the documented default dataset, only when none is given
    check_config(cfg)
    lay = layout(cfg)
    lay.out_dir.mkdir(parents=True, exist_ok=True)
    the_plan = plan(cfg)  # every key, from the data's content: before any job starts
    check_prior_cache(the_plan)
    tag = claim_outputs(cfg)
    timings = _Timings(lay.timings_file)
    started = time.perf_counter()
    needed = sorted({m for v in cfg.variants for m in v.priors})

    def record(key: str, spent: dict[str, float]) -> None:  # as each job ends: an interrupted run keeps them
        for k, seconds in spent.items():
            timings.record(k, seconds)

    jobs = pipeline_jobs(cfg, model_jobs, the_plan)
    if cfg.device.startswith("cuda"):  # every stage runs on the device: each job gets a GPU of its own
        jobs = [replace(j, resources={"GPU": 1}) for j in jobs]
    values = run_jobs(jobs, cfg.workers, record, scheduler_address=cfg.scheduler_address)
    ce = ce_variant(cfg)
    evaluated = [(v, s) for s in cfg.seeds for v in cfg.variants
                 if _runs_seed(v, s, ce) and (cfg.evaluate_candidates or v.candidate_of is None)]
    models = [the_plan.model(v, s) for v, s in evaluated]
    eval_dirs = [values[_key("eval", v, s)] for v, s in evaluated]

    last = cfg.variants[-1]
    last_seed = next(s for s in cfg.seeds if _runs_seed(last, s, ce))
    html = report(
        eval_dirs, str(lay.report_dir(tag)), the_plan.attacks_dir,
        priors_cache=str(lay.prior_cache) if needed else None,
        priors_data=cfg.data if needed else None,
        priors_k_shot=cfg.k_shot,
        priors_sample_seed=cfg.sample_seed,
        priors_methods=needed or ["lime", "cap", "ig"],
        heatmap_checkpoint=str(Path(the_plan.model(last, last_seed).run_dir) / "model"),
        overwrite=True,
    )
    # Wall time of this invocation (a resumed run counts only the part it ran).
    total = time.perf_counter() - started
    timings.record(RunLayout.timing_key("total", what=tag.lstrip("-") or None), total)
    run_timings = {m.eval_dir: {"train": RunLayout.timing_key("train", m.run), "eval": RunLayout.timing_key("eval", m.run)}
                   for m in models}
    summary = {"report": html, "runs": eval_dirs, "timings": dict(timings),
               "keys": {"data": the_plan.data, "attacks": the_plan.attacks_key,
                        "models": {m.run.label: {"run": m.run_dir, "eval": m.eval_dir,
                                                 **({"audit": str(audit_dir(cfg.out_dir, m.run.name))}
                                                    if (audit_dir(cfg.out_dir, m.run.name) / "audit.json").is_file() else {})}
                                   for m in models},
                        **({"rule_audit": the_plan.rule_audit["file"]} if the_plan.rule_audit else {})}}
    if cfg.results:
        from eg_train.experiment.results import write_results

        write_results(cfg.results, eval_dirs, dict(timings), lay.prior_cache if needed else None, cfg.data.preset or "",
                      command, f"eg-train experiment: {cfg.data.preset or 'dataset'} {cfg.k_shot}-shot", total_s=total,
                      baseline=ce.name, run_timings=run_timings)
        summary["results"] = cfg.results
    for d in eval_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        summary[Path(d).name] = {
            "accuracy": m["clean"]["accuracy"],
            **{f"adv_{k}": a["accuracy"] for k, a in m["attacks"].items()},
        }
    atomic_write_json(lay.summary_file(tag), summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    """``eg-train pipeline``: parse the config, run the pipeline, print the summary."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[2:] if argv is None else argv)
    summary = run_pipeline(parse_config(argv), command=" ".join(["eg-train pipeline", *argv]))
    print(json.dumps(summary, indent=2))
