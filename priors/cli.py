"""``eg-priors``: compute, fuse-view and consolidate attribution priors.

    eg-priors compute --config configs/priors_demo.yaml [--n_samples 100 --world_size 2 --rank 0 ...]
    eg-priors report  --config configs/priors_demo.yaml --out outputs/priors.html
    eg-priors consolidate --cache_dir outputs/prior_cache
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from priors.config import PriorsConfig, build_methods, load_examples

log = logging.getLogger("priors")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="eg-priors", description="Offline attribution priors for eg-train.")
    sub = parser.add_subcommands(dest="command")
    for name, help_ in (
        ("compute", "compute priors into the cache"),
        ("fuse", "store normalised, fused (hybrid) priors in the cache"),
        ("report", "write an HTML heatmap report"),
    ):
        p = ArgumentParser(description=help_)
        p.add_argument("--config", action=ActionConfigFile)
        p.add_class_arguments(PriorsConfig, None, as_group=False)
        if name == "report":
            p.add_argument("--out", default="outputs/priors_report.html")
            p.add_argument("--ids", type=list[str] | None, default=None)
            p.add_argument("--max_examples", type=int, default=20)
            p.add_argument("--fusion", type=list[str], default=["mean", "max"])
            p.add_argument("--normalisation", default="minmax")
        if name == "fuse":
            p.add_argument("--fusion", type=list[str], default=["mean", "max"])
            p.add_argument("--normalisation", default="minmax")
        sub.add_subcommand(name, p, help=help_)
    p = ArgumentParser(description="merge all cache parts into <cache_dir>/priors")
    p.add_argument("--cache_dir", required=True)
    sub.add_subcommand("consolidate", p, help="merge all parts into one load_from_disk-able dataset")
    return parser


def run_compute(cfg: PriorsConfig) -> list[dict]:
    """Compute every configured method into the cache; returns one summary dict per method."""
    from priors.cache import PriorCache
    from priors.compute import compute_priors, shard_from_env

    rank, world = shard_from_env(cfg.rank, cfg.world_size)
    split = load_examples(cfg)
    cache = PriorCache(cfg.cache_dir)
    summaries = []
    for method in build_methods(cfg, split.label_names):
        s = compute_priors(
            split, method, cache, batch_size=cfg.batch_size, rank=rank, world_size=world, skip_invalid=cfg.skip_invalid
        )
        # The resolved configuration lives beside the records it produced.
        cfg_dir = Path(cfg.cache_dir) / "configs"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        (cfg_dir / f"{method.name}-{s.config_hash}.json").write_text(
            json.dumps({"priors_config": asdict(cfg), "method_config": method.config()}, indent=2, default=str)
        )
        summaries.append(
            {
                "method": s.method,
                "config_hash": s.config_hash,
                "computed": s.computed,
                "already_cached": s.skipped_done,
                "skipped_invalid": len(s.skipped_invalid),
                "queries": s.queries,
                "proxy_queries": s.proxy_queries,
                "seconds_per_example": round(s.seconds_per_example, 3),
            }
        )
        log.info("%s", json.dumps(summaries[-1]))
    if world == 1:
        cache.consolidate()
    return summaries


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv if argv is not None else sys.argv[1:])
    cmd = args.command
    sub = args[cmd]
    if cmd == "consolidate":
        from priors.cache import PriorCache

        print(PriorCache(sub.cache_dir).consolidate())
        return
    cfg_ns = sub.clone()
    for extra in ("config", "out", "ids", "max_examples", "fusion", "normalisation"):
        if extra in cfg_ns:
            del cfg_ns[extra]
    cfg = _parser_namespace_to_config(cfg_ns)
    if cmd == "compute":
        print(json.dumps(run_compute(cfg), indent=2))
    elif cmd == "fuse":
        from priors.cache import fuse_into_cache

        split = load_examples(cfg)
        for how in sub.fusion:
            name, chash = fuse_into_cache(cfg.cache_dir, split, cfg.methods, how, sub.normalisation)
            print(json.dumps({"method": name, "config_hash": chash, "components": cfg.methods}))
        from priors.cache import PriorCache

        PriorCache(cfg.cache_dir).consolidate()
    elif cmd == "report":
        from priors.report import write_heatmap_report

        split = load_examples(cfg)
        path = write_heatmap_report(
            cfg.cache_dir, split, sub.out, cfg.methods, sub.fusion, sub.normalisation, sub.ids, sub.max_examples
        )
        print(path)


def _parser_namespace_to_config(ns) -> PriorsConfig:
    from eg_train.foundation.data.source import DataSpec

    d = ns.as_dict()
    data = d.pop("data")
    data = data if isinstance(data, DataSpec) else DataSpec(**data)
    from priors.focus import FocusConfig

    focus = d.pop("focus", None) or {}
    focus = focus if isinstance(focus, FocusConfig) else FocusConfig(**focus)
    return PriorsConfig(data=data, focus=focus, **d)


if __name__ == "__main__":
    main()
