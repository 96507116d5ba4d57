"""The shortcut audit as jobs of the pipeline's graph (``audit: true`` in a pipeline config).

Each audited model gets one job, ``audit:<variant>-seed<k>``, after its training and the priors the
audit reads; it writes ``<out_dir>/audit/<variant>-seed<k>/audit.json`` (with ``audit.md`` and
``audit.html``) and is skipped when that file exists. ``audit_models: ce`` audits the CE model of
every seed; ``all`` every trained model, to show whether an aligned model stopped leaning on what the
CE model leaned on. The prior is ``audit_priors`` (default: every LLM prior the variants use, fused
as ``mean``), the held-out split the dataset's validation split or, without one, ``audit_reserve_per_class``
training texts per class outside the k-shot sample (training's own validation carve). The LLM
counterfactual of the audit uses the pipeline's ``llm`` unless ``audit_params`` names another (or null).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from eg_train.experiment.jobs import Job

AUDIT_MODELS = ("ce", "all")
LLM_PRIORS = ("lime", "cap")


def audit_dir(out_dir: str | Path, run_name: str) -> Path:
    """Where the audit of one model goes: ``<out_dir>/audit/<variant>-seed<k>-<model key>``."""
    return Path(out_dir) / "audit" / run_name


def audit_methods(cfg) -> list[str]:
    """The prior the audit reads: ``cfg.audit_priors``, else every LLM prior a variant uses."""
    if cfg.audit_priors:
        return list(cfg.audit_priors)
    return sorted({m for v in cfg.variants for m in v.priors if m in LLM_PRIORS})


def audit_params(cfg) -> dict:
    """The audit's settings: ``cfg.audit_params`` over the pipeline's own LLM (and its CAP instruction, when
    ``priors`` sets one) for the LLM counterfactual; ``audit_params: {llm: null}`` turns that check off."""
    own = {"llm": cfg.llm}
    if (cfg.priors or {}).get("instruction"):
        own["llm_instruction"] = cfg.priors["instruction"]
    return {**own, **dict(cfg.audit_params or {})}


def audit_key(cfg, model, methods: list[str], prior_keys: dict) -> dict:
    """What an audit depends on: the model's key, the priors it reads and the audit's settings."""
    return {"model": model.run.key, "priors": {m: prior_keys[m] for m in methods},
            "reserve_per_class": cfg.audit_reserve_per_class, "params": resolved_audit_params(cfg)}


def resolved_audit_params(cfg) -> dict:
    """Every :class:`AuditConfig` field as the audit runs with it (:func:`audit_params` over the
    defaults, :meth:`AuditConfig.keyed`): what an audit's key holds, so a changed default is a changed
    audit, and a field added later changes no key while unset."""
    import json

    from eg_train.evaluation.audit import AuditConfig

    return json.loads(json.dumps(AuditConfig(**audit_params(cfg)).keyed(), default=str))


def _audit_job(cfg, model, methods: list[str], key: dict) -> tuple[dict[str, float], str]:
    from eg_train.evaluation.api import audit
    from eg_train.evaluation.audit import AuditConfig
    from eg_train.experiment.layout import RunLayout, write_key

    t = time.perf_counter()
    target = audit_dir(cfg.out_dir, model.run.name)
    path = audit(str(Path(model.run_dir) / "model"), cfg.data, str(target),
                 str(Path(cfg.out_dir) / "prior_cache"), methods, k_shot=cfg.k_shot, sample_seed=cfg.sample_seed,
                 reserve_per_class=cfg.audit_reserve_per_class, params=AuditConfig(**audit_params(cfg)),
                 device=cfg.device, overwrite=True)
    write_key(target, key)
    return {RunLayout.timing_key("audit", model.run): time.perf_counter() - t}, path


def audit_jobs(cfg, runs: Sequence[tuple], ce_name: str, prior_keys: dict[str, str],
               train_key, the_plan) -> list[Job]:
    """The audit jobs of ``runs`` (``(variant, seed)`` pairs) as ``cfg.audit`` / ``cfg.audit_models`` say.

    ``prior_keys``: method -> the key of the job computing it; ``train_key(variant, seed)``: the key of a
    model's training job; ``the_plan``: the pipeline's :class:`~eg_train.experiment.pipeline.Plan` (model
    folders and prior keys). An audit whose folder records the same key is reused, never another's.
    """
    if not getattr(cfg, "audit", False):
        return []
    if cfg.audit_models not in AUDIT_MODELS:
        from eg_train.foundation.errors import ConfigError

        raise ConfigError(f"audit_models must be one of {AUDIT_MODELS}, got {cfg.audit_models!r}")
    methods = audit_methods(cfg)
    if not methods:
        from eg_train.foundation.errors import ConfigError

        raise ConfigError("audit: true needs a prior: set audit_priors (e.g. [lime, cap]) or a variant with an LLM prior")
    missing = [m for m in methods if m not in prior_keys]
    if missing:
        from eg_train.foundation.errors import ConfigError

        raise ConfigError(f"audit_priors {missing} are not computed by any variant; add them to a variant's priors")
    from eg_train.experiment.layout import check_key

    jobs = []
    for v, s in runs:
        if cfg.audit_models == "ce" and v.name != ce_name:
            continue
        model = the_plan.model(v, s)
        key = audit_key(cfg, model, methods, the_plan.prior_keys)
        target = audit_dir(cfg.out_dir, model.run.name)
        if (target / "audit.json").is_file() and check_key(target, key):
            continue
        deps = (train_key(v, s), *(prior_keys[m] for m in methods))
        jobs.append(Job(f"audit:{model.run.label}", _audit_job, (cfg, model, methods, key), deps))
    return jobs
