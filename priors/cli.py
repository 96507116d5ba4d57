"""``eg-priors``: compute, fuse-view and consolidate attribution priors.

    eg-priors compute --config configs/priors_demo.yaml [--n_samples 100 --world_size 2 --rank 0 ...]
    eg-priors report  --config configs/priors_demo.yaml --out outputs/priors.html
    eg-priors quality --config configs/priors_demo.yaml [--out quality.json --k 3 --n_random 3]
    eg-priors consolidate --cache_dir outputs/prior_cache
"""

from __future__ import annotations

import json
import logging

from jsonargparse import ActionConfigFile, ArgumentParser

from priors.api import compute, fuse, heatmap_report, quality
from priors.config import PriorsConfig

log = logging.getLogger("priors")


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="eg-priors", description="Offline attribution priors for eg-train.")
    sub = parser.add_subcommands(dest="command")
    for name, help_ in (
        ("compute", "compute priors into the cache"),
        ("fuse", "store normalised, fused (hybrid) priors in the cache"),
        ("report", "write an HTML heatmap report"),
        ("quality", "measure prior quality on the cached examples and store it in the cache"),
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
        if name == "quality":
            p.add_argument("--out", type=str | None, default=None, help="also write the JSON here")
            p.add_argument("--k", type=int, default=3, help="precision@k of the prior's top words")
            p.add_argument("--n_random", type=int, default=3, help="random orders per example (deletion reference)")
            p.add_argument("--max_examples", type=int | None, default=None, help="seeded subset of the examples")
            p.add_argument("--extra_methods", type=list[str], default=[], help="cached methods by name, e.g. hybrid_mean")
        if name == "fuse":
            p.add_argument("--fusion", type=list[str], default=["mean", "max"])
            p.add_argument("--normalisation", default="minmax")
        sub.add_subcommand(name, p, help=help_)
    p = ArgumentParser(description="merge all cache parts into <cache_dir>/priors")
    p.add_argument("--cache_dir", required=True)
    sub.add_subcommand("consolidate", p, help="merge all parts into one load_from_disk-able dataset")
    return parser


# The stage's API lives in priors.api; kept under these names for existing callers.
run_compute = compute
run_quality = quality


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``eg-priors``: a user error prints one line and exits 2 (traceback with ``--verbose``)."""
    from eg_train.foundation.errors import run_main

    code = run_main(_main, "eg-priors", argv)  # DataError, PriorCacheError, ... are UserErrors
    if code:
        raise SystemExit(code)


def _main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    cmd = args.command
    sub = args[cmd]
    if cmd == "consolidate":
        from priors.cache import PriorCache

        print(PriorCache(sub.cache_dir).consolidate())
        return
    cfg_ns = sub.clone()
    for extra in ("config", "out", "ids", "max_examples", "fusion", "normalisation", "k", "n_random", "extra_methods"):
        if extra in cfg_ns:
            del cfg_ns[extra]
    cfg = _parser_namespace_to_config(cfg_ns)
    if cmd == "compute":
        print(json.dumps(compute(cfg), indent=2))
    elif cmd == "fuse":
        for line in fuse(cfg, sub.fusion, sub.normalisation):
            print(json.dumps(line))
    elif cmd == "report":
        print(heatmap_report(cfg, sub.out, sub.fusion, sub.normalisation, sub.ids, sub.max_examples))
    elif cmd == "quality":
        print(json.dumps(quality(cfg, sub.k, sub.n_random, sub.max_examples, sub.extra_methods, sub.out), indent=2))


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
