"""The main job end to end: CE baseline -> priors (LIME, CAP, IG) -> fused priors -> explanation-
guided training -> attacks -> evaluation -> reports.

    eg-train demo [--config configs/pipeline_demo.yaml] [--out_dir outputs/demo] [--seeds '[0,1,2]']

Every step writes into ``out_dir`` and is skipped when its output already exists, so an
interrupted run resumes where it stopped (the prior cache resumes inside a step too). The resolved
configuration is saved as ``out_dir/pipeline.yaml``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eg_train.data.source import DataSpec

log = logging.getLogger("eg_train.pipeline")


@dataclass
class TrainedVariant:
    """One trained model: a name and the priors it aligns to (empty list = CE baseline)."""

    name: str
    priors: list[str] = field(default_factory=list)
    fusion: str = "mean"


@dataclass
class PipelineConfig:
    """What the main job runs. Defaults: the embedded models on a Banking77 5-shot subset."""

    out_dir: str = "outputs/demo"
    data: DataSpec = field(default_factory=lambda: DataSpec(preset="banking77", classes=10))
    k_shot: int = 5
    train_config: str = "configs/demo.yaml"
    train_overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    llm: str = "smollm2-135m-instruct"
    slm: str = "all-minilm-l6-v2"
    n_samples: int = 64
    ridge_lambda: float = 1.0
    variants: list[TrainedVariant] = field(
        default_factory=lambda: [TrainedVariant("ce"), TrainedVariant("cap_hybrid_mean", ["lime", "cap", "ig"])]
    )
    ig_prior_seed: int = 0  # the CE run whose IG gives the IG prior
    test_subset: int | None = 300
    attack_seed: int = 0
    faithfulness_examples: int = 100  # comprehensiveness / sufficiency on a seeded test subset
    eval_ig_steps: int = 20


def _train(cfg: PipelineConfig, variant: TrainedVariant, seed: int, cache_dir: Path | None) -> Path:
    from eg_train.train import fit

    run_dir = Path(cfg.out_dir) / "runs" / f"{variant.name}-seed{seed}"
    if (run_dir / "model" / "config.json").is_file():
        log.info("%s seed %d: trained model exists, skipping (%s)", variant.name, seed, run_dir)
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted run without an exported model: start it again
    data = {k: v for k, v in asdict(cfg.data).items() if v not in (None, {}, [])}
    prior = (
        {"cache_dir": str(cache_dir), "methods": variant.priors, "fusion": variant.fusion, "on_missing": "error"}
        if variant.priors
        else None
    )
    overrides = [
        f"--seed_everything={seed}",
        f"--trainer.default_root_dir={run_dir}",
        f"--model.model_name={cfg.slm}",
        f"--data.data={json.dumps(data)}",
        f"--data.k_shot={cfg.k_shot}",
        f"--data.seed={seed}",
        f"--data.prior={json.dumps(prior) if prior else 'none'}",
        *cfg.train_overrides,
    ]
    if not variant.priors:
        overrides.append("--model.beta=0")
    fit(cfg.train_config, overrides)
    return run_dir


def _priors(cfg: PipelineConfig, seed: int, ce_model: Path, methods: list[str]) -> Path:
    from priors.cli import run_compute
    from priors.config import PriorsConfig, load_examples
    from priors.report import write_heatmap_report

    cache_dir = Path(cfg.out_dir) / f"prior_cache-seed{seed}"
    pcfg = PriorsConfig(
        data=cfg.data,
        k_shot=cfg.k_shot,
        sample_seed=seed,  # the training data module samples its k-shot set with the same seed
        methods=methods,
        llm=cfg.llm,
        n_samples=cfg.n_samples,
        ridge_lambda=cfg.ridge_lambda,
        seed=seed,
        slm_checkpoint=str(ce_model),
        cache_dir=str(cache_dir),
    )
    for summary in run_compute(pcfg):
        log.info("priors: %s", summary)
    split = load_examples(pcfg)
    write_heatmap_report(str(cache_dir), split, str(Path(cfg.out_dir) / f"priors-seed{seed}.html"), methods)
    return cache_dir


def run_pipeline(cfg: PipelineConfig) -> dict:
    """Run every step; returns a summary (also written to ``out_dir/summary.json``)."""
    from eg_train.evaluation.cli import attack, evaluate, report
    from eg_train.evaluation.evaluate import EvalConfig

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    (out / "pipeline.yaml").write_text(yaml.safe_dump(json.loads(json.dumps(asdict(cfg))), sort_keys=False))
    timings: dict[str, float] = {}
    t = time.perf_counter()
    needed = sorted({m for v in cfg.variants for m in v.priors})
    attacks_dir = out / "attacks"
    if not attacks_dir.exists():
        attack(cfg.data, str(attacks_dir), subset=cfg.test_subset, subset_seed=cfg.attack_seed)
    timings["attacks_s"] = time.perf_counter() - t

    eval_dirs: list[str] = []
    caches: dict[int, Path] = {}
    for seed in cfg.seeds:
        ce = next((v for v in cfg.variants if not v.priors), TrainedVariant("ce"))
        t = time.perf_counter()
        ce_run = _train(cfg, ce, seed, None)
        timings[f"train_{ce.name}_seed{seed}_s"] = time.perf_counter() - t
        if needed:
            t = time.perf_counter()
            caches[seed] = _priors(cfg, seed, ce_run / "model", needed)
            timings[f"priors_seed{seed}_s"] = time.perf_counter() - t
        for variant in cfg.variants:
            run = ce_run
            if variant.priors:
                t = time.perf_counter()
                run = _train(cfg, variant, seed, caches[seed])
                timings[f"train_{variant.name}_seed{seed}_s"] = time.perf_counter() - t
            eval_dir = out / "eval" / f"{variant.name}-seed{seed}"
            if not (eval_dir / "metrics.json").is_file():
                evaluate(str(run / "model"), cfg.data, str(eval_dir), str(attacks_dir), method=variant.name,
                         seed=seed, subset=cfg.test_subset, subset_seed=cfg.attack_seed,
                         params=EvalConfig(faithfulness_examples=cfg.faithfulness_examples, ig_steps=cfg.eval_ig_steps))
            eval_dirs.append(str(eval_dir))
    first = cfg.seeds[0]
    html = report(
        eval_dirs, str(out / "report"), str(attacks_dir),
        priors_cache=str(caches[first]) if needed else None,
        priors_data=cfg.data if needed else None,
        priors_methods=needed or ["lime", "cap", "ig"],
        heatmap_checkpoint=str(out / "runs" / f"{cfg.variants[-1].name}-seed{first}" / "model"),
        overwrite=True,
    )
    summary = {"report": html, "runs": eval_dirs, "timings": {k: round(v, 1) for k, v in timings.items()}}
    for d in eval_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        summary[Path(d).name] = {
            "accuracy": m["clean"]["accuracy"],
            **{f"adv_{k}": a["accuracy"] for k, a in m["attacks"].items()},
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import ActionConfigFile, ArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = ArgumentParser(prog="eg-train demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(PipelineConfig, None, as_group=False)
    ns = parser.parse_args(argv)
    cfg = parser.instantiate_classes(ns)
    d = cfg.as_dict()
    d.pop("config", None)
    data = d.pop("data")
    variants = [v if isinstance(v, TrainedVariant) else TrainedVariant(**v) for v in d.pop("variants")]
    summary = run_pipeline(PipelineConfig(data=data if isinstance(data, DataSpec) else DataSpec(**data), variants=variants, **d))
    print(json.dumps(summary, indent=2))
