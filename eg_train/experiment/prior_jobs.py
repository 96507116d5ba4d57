"""The pipeline's prior jobs: each LLM / IG prior computed (or resumed) into the shared cache once for
every seed, the priors' quality, and their heatmaps."""

from __future__ import annotations

import logging
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from eg_train.experiment.layout import RunLayout
from eg_train.experiment.pipeline_config import PipelineConfig, layout, sample_spec
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.io import locked

log = logging.getLogger("eg_train.experiment.pipeline")


def prior_config(cfg: PipelineConfig, methods: list[str], ce_model: Path | None = None):
    """The prior stage's :class:`~priors.config.PriorsConfig` of ``methods`` on the pipeline's training sample
    (``ce_model``: the CE model whose IG is the IG prior)."""
    from priors.config import PriorsConfig

    sample = sample_spec(cfg)  # the same sample the training data module draws
    pcfg = PriorsConfig(
        data=sample.data,
        split=sample.split,
        k_shot=sample.k_shot,
        sample_seed=sample.seed,
        methods=methods,
        device=cfg.device,
        dtype=cfg.precision,
        llm=cfg.llm,
        n_samples=cfg.n_samples,
        ridge_lambda=cfg.ridge_lambda,
        seed=cfg.prior_seed,
        slm_checkpoint=str(ce_model) if ce_model else None,
        cache_dir=str(layout(cfg).prior_cache),
    )
    return prior_overrides(pcfg, cfg.priors)


# Set by the pipeline itself; a ``priors`` mapping may not override them.
_PIPELINE_OWNED = ("data", "split", "k_shot", "sample_seed", "methods", "device", "dtype", "llm", "n_samples", "ridge_lambda",
                   "seed", "slm_checkpoint", "cache_dir")


def prior_overrides(pcfg, overrides: dict[str, Any]):
    """``pcfg`` with the pipeline config's ``priors`` options applied (unknown or pipeline-owned
    names are an error that lists the allowed ones)."""
    from priors.config import PriorsConfig

    allowed = sorted(f.name for f in fields(PriorsConfig) if f.name not in _PIPELINE_OWNED)
    bad = sorted(k for k in (overrides or {}) if k not in allowed)
    if bad:
        raise ConfigError(f"priors: {', '.join(bad)} cannot be set here (the pipeline sets data, llm, n_samples, ...); "
                          f"allowed: {', '.join(allowed)}")
    values = dict(overrides or {})
    if isinstance(values.get("focus"), dict):
        from priors.focus import FocusConfig

        values["focus"] = FocusConfig(**values["focus"])
    return replace(pcfg, **values)


def prior_job(cfg: PipelineConfig, method: str, ce_model: Path | None = None) -> tuple[dict[str, float], None]:
    """Compute (or resume) one prior method into the shared cache; returns ``({key: seconds}, None)``.

    Under a lock per method: a second pipeline on the same out_dir waits, then finds the
    examples cached (the cache skips them) instead of computing them twice."""
    from priors.api import compute

    lay = layout(cfg)
    t = time.perf_counter()
    computed = 0
    with locked(lay.prior_cache / f"{method}.lock", what=f"the {method} prior", timeout=-1):
        for summary in compute(prior_config(cfg, [method], ce_model)):
            log.info("priors: %s", summary)
            computed += summary["computed"]
    return ({RunLayout.timing_key("priors", what=method): time.perf_counter() - t} if computed else {}), None


def prior_quality_job(cfg: PipelineConfig, methods: list[str], ce_model: Path) -> tuple[dict[str, float], None]:
    """Measure the quality of the cached priors once (skipped when the cache already holds it)."""
    from priors.api import quality
    from priors.cache import PriorCache
    from priors.quality import stored_quality

    pcfg = prior_config(cfg, methods, ce_model)
    with locked(layout(cfg).prior_cache / "quality.lock", what="the prior quality", timeout=-1):
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
    return {RunLayout.timing_key("prior_quality"): time.perf_counter() - t}, None


def heatmaps_job(cfg: PipelineConfig, methods: list[str], target: str) -> tuple[dict[str, float], None]:
    """``out_dir/priors-<key>.html`` (the key: the priors' settings), once the priors are complete."""
    from priors.api import heatmap_report

    path = Path(target)
    with locked(RunLayout.lock_file(path), what=str(path), timeout=-1):
        if path.is_file():
            return {}, None
        t = time.perf_counter()
        heatmap_report(prior_config(cfg, methods), str(path))
    return {RunLayout.timing_key("heatmaps"): time.perf_counter() - t}, None
