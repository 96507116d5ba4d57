"""The prior stage's Python API: what ``eg-priors`` and the experiment pipeline call.

    from priors.api import compute, fuse
    summaries = compute(PriorsConfig(data=DataSpec(preset="banking77"), k_shot=5, methods=["lime", "cap"]))

Each function takes a typed :class:`~priors.config.PriorsConfig`; the CLI only parses flags into one.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TypedDict

from eg_train.foundation.io import atomic_write_json
from priors.config import PriorsConfig, build_methods, load_examples


class MethodSummary(TypedDict):
    """What one method's ``compute`` did (also logged as one JSON line)."""

    method: str
    config_hash: str
    computed: int
    already_cached: int
    skipped_invalid: int
    queries: int
    proxy_queries: int
    seconds_per_example: float


def compute(cfg: PriorsConfig) -> list[MethodSummary]:
    """Compute (or resume) every configured method into ``cfg.cache_dir``; one summary per method.

    The resolved configuration is written beside the records it produced
    (``configs/<method>-<hash>.json``); a single-process run consolidates the cache at the end.
    """
    import json
    import logging

    from priors.cache import PriorCache
    from priors.compute import compute_priors, shard_from_env

    log = logging.getLogger("priors")
    rank, world = shard_from_env(cfg.rank, cfg.world_size)
    split = load_examples(cfg)
    cache = PriorCache(cfg.cache_dir)
    summaries: list[MethodSummary] = []
    for method in build_methods(cfg, split.label_names):
        s = compute_priors(
            split, method, cache, batch_size=cfg.batch_size, rank=rank, world_size=world, skip_invalid=cfg.skip_invalid
        )
        atomic_write_json(
            Path(cfg.cache_dir) / "configs" / f"{method.name}-{s.config_hash}.json",
            {"priors_config": asdict(cfg), "method_config": method.config()},
            default=str,
        )
        summaries.append(
            MethodSummary(
                method=s.method,
                config_hash=s.config_hash,
                computed=s.computed,
                already_cached=s.skipped_done,
                skipped_invalid=len(s.skipped_invalid),
                queries=s.queries,
                proxy_queries=s.proxy_queries,
                seconds_per_example=round(s.seconds_per_example, 3),
            )
        )
        log.info("%s", json.dumps(summaries[-1]))
    if world == 1:
        cache.consolidate()
    return summaries


def fuse(cfg: PriorsConfig, fusion: list[str], normalisation: str = "minmax") -> list[dict]:
    """Store the normalised, fused priors of ``cfg.methods`` as ``hybrid_<how>`` methods in the cache."""
    from priors.cache import PriorCache, fuse_into_cache

    split = load_examples(cfg)
    out = []
    for how in fusion:
        name, chash = fuse_into_cache(cfg.cache_dir, split, cfg.methods, how, normalisation)
        out.append({"method": name, "config_hash": chash, "components": list(cfg.methods)})
    PriorCache(cfg.cache_dir).consolidate()
    return out


def heatmap_report(
    cfg: PriorsConfig,
    out: str,
    fusion: list[str] = ("mean", "max"),
    normalisation: str = "minmax",
    ids: list[str] | None = None,
    max_examples: int = 20,
) -> str:
    """Write the HTML word-heatmap report of the cached priors (per method and fused); returns its path."""
    from priors.report import write_heatmap_report

    split = load_examples(cfg)
    return str(write_heatmap_report(cfg.cache_dir, split, out, cfg.methods, list(fusion), normalisation, ids, max_examples))


def quality(
    cfg: PriorsConfig, k: int = 3, n_random: int = 3, max_examples: int | None = None,
    extra_methods: list[str] | None = None, out: str | None = None,
) -> dict:
    """Measure the quality of the configured (and ``extra_methods``) priors; written into the cache."""
    from eg_train.foundation.data.source import load_split
    from priors.cache import PriorCache
    from priors.quality import QualitySettings, measure_quality, reference_split

    split = load_examples(cfg)
    reference = reference_split(load_split(cfg.data, cfg.split), split)
    settings = QualitySettings(k=k, n_random=n_random, seed=cfg.seed, max_examples=max_examples)
    methods = build_methods(cfg, split.label_names)
    result = measure_quality(PriorCache(cfg.cache_dir), split, methods, reference, settings, extra_methods or [])
    if out:
        from eg_train.foundation.io import atomic_write_json

        atomic_write_json(out, result, default=str)
    return result
