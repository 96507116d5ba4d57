"""The recipe rule (docs/recipe.md) for one training config: what ``eg-train fit --recipe rule`` trains.

:func:`fit_with_rule` takes the :class:`~eg_train.training.config.TrainConfig` a user would ``fit``
(with a prior) and, in its run folder:

1. trains **CE**: the config without its prior (``candidates/ce/``);
2. **audits** the CE model (:func:`eg_train.evaluation.audit.run_audit`) with the config's LLM priors
   (``lime``, ``cap``) fused by mean, verified on training's own validation split (``audit/audit.json``);
3. with nothing confirmed, keeps CE (rule 1: no candidate is trained); otherwise trains the
   **candidates** of :func:`eg_train.experiment.rule.candidates` — the targeted penalty on the confirmed
   features' positions at each ``penalty_weights`` entry, and the config's own prior at
   ``grad_ratio`` ``prior_grad_ratio`` (``candidates/<name>/``);
4. **chooses** by :func:`eg_train.experiment.rule.choose` on the shortcut-free and counter-shortcut
   validation, writes ``choice.json`` and links ``model``, ``metrics.csv`` and ``config.yaml`` of the
   run folder to the chosen run.

The same candidates, audit and choice as a pipeline variant ``{name: eg, priors: [...]}`` with one seed,
on the prior cache the config names instead of one the pipeline computes. Resumable: a candidate whose
``model/`` is written is reused, an interrupted one resumes from its ``last.ckpt``, a finished audit is
reused; ``overwrite`` starts the whole run folder again.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from eg_train.foundation.errors import ConfigError

log = logging.getLogger("eg_train.experiment.fit_rule")

CANDIDATES_DIR = "candidates"
CE_NAME = "ce"


@dataclass
class RuleFitResult:
    """What :func:`fit_with_rule` left behind."""

    run_dir: Path
    chosen: str  # ``ce`` or a candidate's name (``eg~penalty_1e+03``, ``eg~prior_gr3``)
    reason: str
    model_dir: Path  # ``<run_dir>/model``: a link to the chosen run's model
    audit_file: Path
    candidates: dict[str, Path] = field(default_factory=dict)  # name -> run folder, CE first
    scores: dict[str, dict] = field(default_factory=dict)  # name -> {clean, validation, counter}


def _fit_once(cfg, run_dir: Path):
    """``fit`` ``cfg`` into ``run_dir``, or reuse / resume what is there."""
    from eg_train.training.api import fit
    from eg_train.training.rundir import resumable_checkpoint

    if (run_dir / "model" / "config.json").is_file():
        log.info("rule: %s is trained, reused", run_dir)
        return
    last = resumable_checkpoint(run_dir)
    fit(replace(cfg, run_dir=str(run_dir), ckpt_path=None if last is None else str(last), overwrite=False))


def _candidate_config(base, spec) -> object:
    """``base`` with a candidate variant's ``train`` overrides (:func:`~eg_train.experiment.rule.candidates`)."""
    cfg = copy.deepcopy(base)
    for key, value in ((spec.train or {}).get("model") or {}).items():
        setattr(cfg.model, key, value)
    return cfg


def fit_with_rule(cfg, settings=None, audit=None, device: str = "cpu", name: str = "eg",
                  keep_checkpoints: bool = False) -> RuleFitResult:
    """Train ``cfg`` (a :class:`~eg_train.training.config.TrainConfig` with a prior) by the recipe rule
    (module docstring); ``settings``: :class:`~eg_train.experiment.rule.RuleSettings`, ``audit``:
    :class:`~eg_train.evaluation.audit.AuditConfig` (defaults when None). Once the choice is made the
    candidates' ``checkpoints/`` are deleted (every run is read through its ``model/``), unless
    ``keep_checkpoints``, as the pipeline's ``keep_checkpoints``."""
    from eg_train.evaluation.audit import AuditConfig
    from eg_train.experiment.audit_jobs import LLM_PRIORS
    from eg_train.experiment.rule import (
        RuleSettings,
        audit_ce_model,
        candidates,
        choice_document,
        choose,
        link_model,
        train_and_validation,
        validation_scores,
    )
    from eg_train.experiment.variant import TrainedVariant
    from eg_train.foundation.io import atomic_write_json

    settings = settings or RuleSettings()
    audit = audit or AuditConfig()
    if cfg.prior is None:
        raise ConfigError("the recipe rule needs a prior (data.prior: cache_dir, methods); without one fit trains CE")
    methods = [m for m in cfg.prior.methods if m in LLM_PRIORS]
    if not methods:
        raise ConfigError(f"the recipe rule's audit needs an LLM prior (lime or cap) among data.prior.methods, "
                          f"got {cfg.prior.methods}")
    if not Path(cfg.prior.cache_dir).is_dir():  # before CE trains for minutes
        raise ConfigError(f"data.prior.cache_dir {cfg.prior.cache_dir} not found: compute the priors first "
                          "(eg-priors compute --config ...), or train without them (--data.prior none)")
    run_dir = Path(cfg.run_dir)
    if cfg.overwrite and run_dir.exists():
        log.warning("overwrite: removing the previous rule run in %s", run_dir)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # What the reused parts were made with: a resume with other settings would mix two rules.
    made_with = json.loads(json.dumps({"settings": asdict(settings), "audit": audit.keyed(), "prior": asdict(cfg.prior),
                                       "train": cfg.to_mapping()}, default=str))
    saved = run_dir / "rule.json"
    if saved.is_file() and json.loads(saved.read_text()) != made_with:
        raise ConfigError(f"{run_dir} holds a recipe-rule run made with other settings ({saved}); choose another "
                          "--trainer.default_root_dir, or pass --overwrite true to replace it")
    atomic_write_json(saved, made_with)
    runs = {CE_NAME: run_dir / CANDIDATES_DIR / CE_NAME}
    base = replace(cfg, prior=None, ckpt_path=None, overwrite=False)
    _fit_once(base, runs[CE_NAME])

    train, val = train_and_validation(cfg.data, cfg.model.model_name)
    audit_file = run_dir / "audit" / "audit.json"
    if audit_file.is_file():
        doc = json.loads(audit_file.read_text())
    else:
        doc = audit_ce_model(runs[CE_NAME] / "model", train, val, cfg.prior.cache_dir, methods, audit, device,
                             cfg.prior.normalisation)
        atomic_write_json(audit_file, doc)
    log.info("rule audit: %d confirmed of %d tested candidates", doc["counts"]["confirmed"], doc["counts"]["tested"])

    if doc.get("confirmed"):
        variant = TrainedVariant(name, list(cfg.prior.methods), cfg.prior.fusion)
        for spec in candidates(variant, settings):
            path = run_dir / CANDIDATES_DIR / spec.name
            if spec.priors:  # the prior candidate: the config's own prior, with the rule's weight
                cand = _candidate_config(cfg, spec)
            else:  # the targeted penalty on the audit's confirmed features
                cand = _candidate_config(base, spec)
                cand.data = replace(cand.data, penalty_positions=str(audit_file))
            runs[spec.name] = path
            _fit_once(cand, path)
    order = list(runs)
    means, per_seed, n_counter = validation_scores({n: {cfg.seed: str(p)} for n, p in runs.items()}, order, [cfg.seed],
                                                   doc, val, device)
    pick, reason = choose(means, [n for n in order if n in means], settings, bool(doc.get("confirmed")))
    log.info("rule %s: %s", name, reason)
    choice = choice_document(name, pick, reason, settings, doc, len(val), n_counter, means, per_seed)
    link_model(run_dir, runs[pick], {"rule": name, "chosen": pick}, choice)
    if not keep_checkpoints:
        from eg_train.training.rundir import remove_checkpoints

        freed = sum(remove_checkpoints(p) for p in runs.values())
        log.info("rule: the candidates' checkpoints removed (%.1f MB; keep_checkpoints=True keeps them)", freed / 1e6)
    return RuleFitResult(run_dir=run_dir, chosen=pick, reason=reason, model_dir=run_dir / "model",
                         audit_file=audit_file, candidates=runs, scores=means)


__all__ = ["RuleFitResult", "fit_with_rule"]
