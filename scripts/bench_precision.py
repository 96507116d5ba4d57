"""Benchmark: every stage in fp32 and in bf16, side by side in one run, and bf16's fidelity to fp32.

    python scripts/bench_precision.py [--quick] --out results/bench/bench_precision.json [--e2e]

Per stage, the two precisions run interleaved on the same inputs (fp32 first on even items, bf16
first on odd ones) so that the load of a shared machine affects both alike; speedups are ratios
of medians (``fp32 / bf16``). ``uptime`` is recorded before and after.

- ``priors_cap`` / ``priors_lime``: the prior stage's defaults (``PriorsConfig``: Gemma 3 270M,
  one demonstration per class for CAP, 100 perturbations) on Banking77 5-shot training examples,
  the LLM in fp32 and in bf16 weights (``dtype: bfloat16``). Fidelity per example: Spearman of
  the bf16 word scores against the fp32 ones (median over examples), top-3 agreement (shared
  words among the top 3 / 3, mean), and the largest change of a scored log-probability.
- ``train_ce`` / ``train_aligned``: one optimisation step of MiniLM-L6 (batch 32, the default IG
  and length-grouped forward), fp32 against bf16 autocast (Lightning's ``bf16-mixed``); fidelity:
  the training-time IG under bf16 against captum IG-50 in fp32 (mean per-example Spearman).
- ``attacks``: DeepWordBug and TextFooler (victim and sentence encoder) against a CE MiniLM
  victim (trained here on Banking77 5-shot if ``--victim`` is absent), success rates per precision.
- ``matmul``: one matrix product of each model's shapes in fp32 and bf16, the ceiling of the stages'
  gains on this CPU (the rest of a stage's work is not made faster by bf16).
- ``--e2e``: the demo pipeline (``configs/pipeline_demo.yaml`` unless ``--e2e-config``, seeds
  ``--e2e-seeds``, default 0 1 2) once with ``precision: fp32`` and once with ``precision: bf16`` into
  ``outputs/bench_precision_e2e/``: accuracy per variant and seed, bf16 − fp32 paired by seed with a 95 %
  t interval, and the total times. Not part of ``--quick``.

Writes ``FILE.json`` (``stages: {priors_cap | priors_lime: {speedup, spearman_median,
top3_agreement, max_abs_logp_diff}, train_ce: {speedup}, train_aligned: {speedup,
ig_spearman_vs_captum}, attacks: {speedup, success_rate_fp32, success_rate_bf16}}``) and
``FILE.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from eg_train.foundation.device import autocast, cpu_bf16_flags  # noqa: E402
from priors.quality.agreement import spearman  # noqa: E402

log = logging.getLogger("bench_precision")
PRECISIONS = ("fp32", "bf16")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001 - informational only
        return "n/a"


def top_k_agreement(a: np.ndarray, b: np.ndarray, k: int = 3) -> float:
    """Shared words among the ``k`` highest of each (``k`` capped by the length), over ``k``."""
    k = min(k, len(a))
    if k == 0:
        return float("nan")
    ta = set(np.argsort(-np.asarray(a), kind="stable")[:k].tolist())
    tb = set(np.argsort(-np.asarray(b), kind="stable")[:k].tolist())
    return len(ta & tb) / k


def _order(i: int) -> tuple[str, ...]:
    return PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]


def _speedup(times: dict[str, list[float]]) -> dict:
    med = {p: statistics.median(t) for p, t in times.items()}
    return {"speedup": med["fp32"] / med["bf16"], "median_s_fp32": med["fp32"], "median_s_bf16": med["bf16"],
            "n_timed": len(times["fp32"])}


# ------------------------------------------------------------------------------------- priors
def bench_priors(n_examples: int, seed: int, llm: str | None, n_samples: int | None = None) -> dict:
    from eg_train.foundation.data import DataSpec
    from priors.base import PriorBatch
    from priors.config import PriorsConfig, load_examples
    from priors.scorer import LabelScorer

    base = PriorsConfig(data=DataSpec(preset="banking77"), split="train", k_shot=5, sample_seed=seed,
                        methods=["lime", "cap"], **({"llm": llm} if llm else {}),
                        **({"n_samples": n_samples} if n_samples else {}))
    split = load_examples(base)
    from eg_train.foundation.models import load_causal_lm

    model32, tok = load_causal_lm(base.llm)
    model16 = copy.deepcopy(model32).to(torch.bfloat16)
    methods = {}
    for p, model in (("fp32", model32), ("bf16", model16)):
        cfg = copy.deepcopy(base)
        cfg.dtype = "float32" if p == "fp32" else "bfloat16"
        # The LLM factory would load the weights again; share the two loaded copies instead.
        ms = _build_with_model(cfg, split, model, tok)
        methods[p] = {m.name: m for m in ms}

    rng = np.random.default_rng(seed)
    rows = sorted(rng.choice(len(split), size=min(n_examples, len(split)), replace=False).tolist())
    record: dict[str, list[np.ndarray]] = {p: [] for p in PRECISIONS}
    current = {"p": "fp32"}
    original = LabelScorer.log_prob

    def recording(self, *a, **k):
        out = original(self, *a, **k)
        record[current["p"]].append(np.asarray(out))
        return out

    LabelScorer.log_prob = recording
    out: dict[str, dict] = {}
    try:
        for name in ("cap", "lime"):
            times = {p: [] for p in PRECISIONS}
            scores = {p: [] for p in PRECISIONS}
            for p in PRECISIONS:
                record[p].clear()
            for j, r in enumerate(rows):
                ex = split.dataset[r]
                batch = PriorBatch([ex["id"]], [ex["text"]], [int(ex["label"])])
                for p in _order(j):
                    current["p"] = p
                    t0 = time.perf_counter()
                    res = methods[p][name].compute(batch)
                    times[p].append(time.perf_counter() - t0)
                    scores[p].append(np.asarray(res[0].scores, dtype=np.float64))
                log.info("%s example %d/%d: fp32 %.2fs bf16 %.2fs", name, j + 1, len(rows), times["fp32"][-1], times["bf16"][-1])
            rhos = [spearman(a, b) for a, b in zip(scores["fp32"], scores["bf16"])]
            top3 = [top_k_agreement(a, b) for a, b in zip(scores["fp32"], scores["bf16"])]
            diffs = [float(np.max(np.abs(a - b))) for a, b in zip(record["fp32"], record["bf16"]) if len(a)]
            out[f"priors_{name}"] = {
                **_speedup(times),
                "spearman_median": float(np.nanmedian(rhos)),
                "spearman_min": float(np.nanmin(rhos)),
                "top3_agreement": float(np.nanmean(top3)),
                "max_abs_logp_diff": max(diffs) if diffs else None,
                "examples": len(rows),
                "llm": base.llm,
                "n_samples": base.n_samples,
            }
    finally:
        LabelScorer.log_prob = original
    return out


def _build_with_model(cfg, split, model, tok):
    """``build_methods`` with an already loaded LLM (one fp32 and one bf16 copy for the whole run)."""
    from priors.base import BuildContext
    from priors.methods import build_from_config

    ctx = BuildContext(cfg, list(split.label_names), factories={
        "llm": lambda: (model, tok), "focus": lambda: None, "examples": lambda: split,
    })
    return [build_from_config(name, ctx) for name in cfg.methods]


# ------------------------------------------------------------------------------------ training
def bench_train(timed: int, n_fid: int, seed: int) -> dict:
    from bench_train import _batches, _step, _strip_priors, fidelity

    from eg_train.foundation.data import DataSpec, load_split
    from eg_train.training.module import EGModule

    train = load_split(DataSpec(preset="banking77"), "train")
    test = load_split(DataSpec(preset="banking77"), "test")
    torch.manual_seed(seed)
    module = EGModule("all-minilm-l6-v2", train.label_names, beta=1.0, lr=5e-5)
    batches = _batches(train, module.tokenizer, timed + 1, 32, seed, with_priors=True)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=5e-5)
    module.maybe_calibrate(batches[0], step=0)
    times = {k: {p: [] for p in PRECISIONS} for k in ("train_ce", "train_aligned")}
    for i, batch in enumerate(batches):  # batch 0: warm-up of every setting
        for p in _order(i):
            for kind, b in (("train_ce", _strip_priors(batch)), ("train_aligned", batch)):
                with autocast(p):
                    t = _step(module, opt, b)
                if i > 0:
                    times[kind][p].append(t)
        log.info("train batch %d: %s", i, {k: {p: round(v[p][-1], 2) for p in PRECISIONS} for k, v in times.items() if v["fp32"]})
    fid_batch = _batches(test, module.tokenizer, 1, n_fid, seed + 1, with_priors=False)[0]
    fid = {p: fidelity(module, fid_batch, 50, precision=p)["training_rule"] for p in PRECISIONS}
    return {
        "train_ce": _speedup(times["train_ce"]),
        "train_aligned": {**_speedup(times["train_aligned"]), "ig_spearman_vs_captum": fid["bf16"],
                          "ig_spearman_vs_captum_fp32": fid["fp32"], "fidelity_examples": n_fid},
    }


# ------------------------------------------------------------------------------------- attacks
def ensure_victim(path: Path, seed: int) -> Path:
    """A CE MiniLM on Banking77 5-shot (trained here, ~1-3 min, when ``path`` has no model)."""
    if (path / "config.json").is_file():
        return path
    from eg_train.foundation.data import DataSpec, load_split
    from eg_train.foundation.data.fewshot import sample_k_per_class
    from eg_train.training.datamodule import EncodedDataset, collate
    from eg_train.training.module import EGModule

    log.info("training the attack victim into %s", path)
    train = sample_k_per_class(load_split(DataSpec(preset="banking77"), "train"), 5, seed)
    torch.manual_seed(seed)
    module = EGModule("all-minilm-l6-v2", train.label_names, beta=0.0, lr=3e-4)
    ds = EncodedDataset(train, module.tokenizer, max_length=64)
    items = [ds[i] for i in range(len(ds))]
    opt = torch.optim.AdamW(module.parameters(), lr=3e-4)
    rng = np.random.default_rng(seed)
    module.model.train()
    for epoch in range(8):
        order = rng.permutation(len(items))
        for s in range(0, len(order), 32):
            batch = collate([items[i] for i in order[s : s + 32]], module.tokenizer.pad_token_id)
            with autocast("bf16"):  # the victim is shared by both sides; bf16 only trains it faster
                loss = module.compute_losses(batch).ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        log.info("victim epoch %d: loss %.3f", epoch, float(loss))
    module.export(path)
    return path


def bench_attacks(victim_dir: Path, n: int, seed: int, recipes: list[str]) -> dict:
    from eg_train.evaluation.attacks.recipes import ModelAttackConfig, Resources
    from eg_train.evaluation.attacks.run_model import attack_examples
    from eg_train.evaluation.attacks.victim import VictimModel
    from eg_train.foundation.data import DataSpec, load_split

    test = load_split(DataSpec(preset="banking77"), "test")
    rows = sorted(np.random.default_rng(seed).choice(len(test), size=n, replace=False).tolist())
    texts, labels = [test.dataset[r]["text"] for r in rows], [int(test.dataset[r]["label"]) for r in rows]
    cfg = ModelAttackConfig(recipes=tuple(recipes), seed=seed, synonym_source="embedding")
    resources = Resources(cfg)
    victims = {p: VictimModel.from_checkpoint(str(victim_dir), batch_size=cfg.batch_size) for p in PRECISIONS}
    # Lazy resources (synonym table, encoder weights) built before timing: neither side pays them.
    if any(r in ("textfooler", "pwws") for r in recipes):
        resources.embedding_neighbours  # noqa: B018
    if "textfooler" in recipes:
        resources.encoder  # noqa: B018
    times = {p: [] for p in PRECISIONS}
    wins = {p: 0 for p in PRECISIONS}
    attacked = {p: 0 for p in PRECISIONS}
    per_recipe: dict[str, dict] = {}
    for j, name in enumerate(recipes * 2):  # each recipe twice, the order of precisions alternating
        for p in _order(j):
            resources.encoder._cache.clear()  # each side pays its own encoder forwards
            victims[p]._cache.clear()
            with autocast(p):
                t0 = time.perf_counter()
                outcomes = attack_examples(victims[p], name, texts, labels, cfg, resources, progress=False)
                dt = time.perf_counter() - t0
            times[p].append(dt)
            if j < len(recipes):
                ok = sum(o.status == "succeeded" for o in outcomes)
                skipped = sum(o.status == "skipped" for o in outcomes)  # misclassified before the attack
                wins[p] += ok
                attacked[p] += len(outcomes) - skipped
                per_recipe.setdefault(name, {})[f"success_rate_{p}"] = 100.0 * ok / max(1, len(outcomes) - skipped)
                per_recipe[name][f"seconds_{p}"] = dt
        log.info("attack %s: %s", name, {p: round(times[p][-1], 1) for p in PRECISIONS})
    # Per recipe pass the totals are comparable; the median over passes of the summed time.
    total = {p: [sum(times[p][k * len(recipes) : (k + 1) * len(recipes)]) for k in range(2)] for p in PRECISIONS}
    return {
        **_speedup(total),
        "success_rate_fp32": 100.0 * wins["fp32"] / max(1, attacked["fp32"]),
        "success_rate_bf16": 100.0 * wins["bf16"] / max(1, attacked["bf16"]),
        "recipes": per_recipe,
        "texts": n,
    }


# ------------------------------------------------------------------------------ matrix products
MATMUL_SHAPES = {  # (rows, inner, cols): the models' own products
    "minilm_ffn": (512, 384, 1536),  # MiniLM-L6 feed-forward, 32 texts x 16 tokens
    "gemma_ffn": (512, 640, 2048),  # Gemma 3 270M feed-forward
    "gemma_vocab": (64, 640, 262144 // 8),  # an eighth of Gemma's vocabulary projection, label positions only
}


def bench_matmul(repeats: int = 7, calls: int = 10) -> dict:
    """The ceiling of every stage's bf16 gain: one matrix product per model shape, fp32 against bf16
    (interleaved, medians). A stage also does work that bf16 does not speed up (element-wise ops,
    conversions, the optimiser, Python), so its speedup stays under this one."""
    out = {}
    gen = torch.Generator().manual_seed(0)
    for name, (m, k, n) in MATMUL_SHAPES.items():
        a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
        pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
        times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        for i in range(repeats):
            for p in _order(i):
                x, y = pairs[p]
                x @ y  # warm-up: oneDNN picks its kernel on the first call
                t0 = time.perf_counter()
                for _ in range(calls):
                    x @ y
                times[p].append((time.perf_counter() - t0) / calls)
        st = _speedup(times)
        flops = 2.0 * m * k * n
        st.update(gflops_fp32=flops / st["median_s_fp32"] / 1e9, gflops_bf16=flops / st["median_s_bf16"] / 1e9, shape=[m, k, n])
        out[name] = st
    return {"matmul": {**_speedup({p: [sum(out[s][f"median_s_{p}"] for s in out)] for p in PRECISIONS}), "shapes": out}}


# -------------------------------------------------------------------------------- end to end
def bench_e2e(config: str, out_root: Path, seeds: list[int]) -> dict:
    """The demo pipeline in fp32 and then in bf16 (fresh out_dirs, ``seeds``): accuracy per variant and
    seed, bf16 − fp32 paired by seed with a t interval, total time (run one after the other, so the
    time ratio carries the machine's load changes: ``uptime`` is kept beside each)."""
    from eg_train.evaluation.statistics import paired_t
    from eg_train.experiment.pipeline import parse_config, run_pipeline

    res: dict = {"config": config, "seeds": seeds}
    for p in PRECISIONS:
        results = out_root / f"e2e_{p}" / "results"
        cfg = parse_config(["--config", config, "--precision", p, "--out_dir", str(out_root / f"e2e_{p}"),
                            "--results", str(results), "--seeds", json.dumps(seeds)])
        up = _uptime()
        t0 = time.perf_counter()
        run_pipeline(cfg)
        methods = json.loads(results.with_suffix(".json").read_text())["methods"]
        res[p] = {"total_s": time.perf_counter() - t0, "uptime_before": up, "uptime_after": _uptime(),
                  "accuracy": {v: m["metrics"]["accuracy"]["values"] for v, m in methods.items()}}
    res["paired_bf16_minus_fp32"] = {v: paired_t(res["bf16"]["accuracy"][v], acc)
                                     for v, acc in res["fp32"]["accuracy"].items()}
    res["speedup"] = res["fp32"]["total_s"] / res["bf16"]["total_s"]
    return res


# ------------------------------------------------------------------------------------- report
def markdown(r: dict) -> str:
    s = r["stages"]
    lines = ["| stage | fp32 s (median) | bf16 s (median) | speedup | fidelity of bf16 |", "|---|---|---|---|---|"]
    for name, st in s.items():
        if name.startswith("priors"):
            fid = (f"Spearman median {st['spearman_median']:.3f} (min {st['spearman_min']:.3f}), top-3 agreement "
                   f"{st['top3_agreement']:.3f}, max abs Δlog p {st['max_abs_logp_diff']:.3f}")
        elif name == "train_aligned":
            fid = (f"IG vs captum IG-50 (fp32): {st['ig_spearman_vs_captum']:.3f} "
                   f"(fp32 IG: {st['ig_spearman_vs_captum_fp32']:.3f})")
        elif name == "attacks":
            fid = f"success {st['success_rate_fp32']:.1f} % fp32, {st['success_rate_bf16']:.1f} % bf16"
        elif name == "matmul":
            fid = "ceiling (no fidelity question): " + ", ".join(
                f"{k} {v['gflops_fp32']:.0f} → {v['gflops_bf16']:.0f} GFLOP/s ({v['speedup']:.2f}x)" for k, v in st["shapes"].items())
        else:
            fid = ""
        lines.append(f"| {name} | {st['median_s_fp32']:.3f} | {st['median_s_bf16']:.3f} | {st['speedup']:.2f}x | {fid} |")
    lines += ["", f"CPU bf16 flags: {', '.join(r['cpu_bf16_flags']) or 'none'}; torch {r['torch']}, "
              f"{r['torch_threads']} thread(s); quick: {r['quick']}; load before: `{r['uptime_before']}`, after: "
              f"`{r['uptime_after']}` (a shared machine: the two precisions interleaved, medians)."]
    if r.get("e2e"):
        e = r["e2e"]
        lines += ["", f"End to end (`{Path(e['config']).name}`, seeds {e['seeds']}, fp32 then bf16): total "
                  f"{e['fp32']['total_s']:.0f} s against {e['bf16']['total_s']:.0f} s ({e['speedup']:.2f}x; load "
                  f"`{e['fp32']['uptime_before']}` / `{e['bf16']['uptime_before']}` at the starts).", "",
                  "| variant | fp32 accuracy per seed | bf16 accuracy per seed | bf16 − fp32, mean [95 % t interval] |",
                  "|---|---|---|---|"]
        for v, d in e["paired_bf16_minus_fp32"].items():
            ci = "n/a" if d["ci95"] is None else f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
            per = lambda p: ", ".join(f"{100 * a:.1f}" for a in e[p]["accuracy"][v])  # noqa: E731
            lines.append(f"| {v} | {per('fp32')} | {per('bf16')} | {100 * d['mean']:+.1f} {ci} |")
    else:
        lines += ["", "End-to-end demo pair: not run (pass --e2e)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON output path (a .md table is written beside it)")
    ap.add_argument("--quick", action="store_true", help="few examples and steps (< 10 min on 2 idle cores)")
    ap.add_argument("--prior-examples", type=int, default=None, help="default 2 quick, 12 full")
    ap.add_argument("--timed-steps", type=int, default=None, help="default 3 quick, 8 full")
    ap.add_argument("--fidelity-examples", type=int, default=None, help="default 16 quick, 64 full")
    ap.add_argument("--attack-texts", type=int, default=None, help="default 8 quick, 40 full")
    ap.add_argument("--recipes", nargs="+", default=["deepwordbug", "textfooler"])
    ap.add_argument("--llm", default=None, help="the prior LLM (default: PriorsConfig's)")
    ap.add_argument("--n-samples", type=int, default=None, help="perturbations per prior example (default 32 quick, the stage's 100 full)")
    ap.add_argument("--victim", type=Path, default=REPO / "runs" / "bench_precision_ce" / "model")
    ap.add_argument("--stages", nargs="*", default=["matmul", "priors", "train", "attacks"],
                    choices=["matmul", "priors", "train", "attacks"], help="none with --e2e: the end-to-end pair alone")
    ap.add_argument("--e2e", action="store_true", help="also run the demo pipeline in fp32 and bf16 (long)")
    ap.add_argument("--e2e-config", default=str(REPO / "configs" / "pipeline_demo.yaml"))
    ap.add_argument("--e2e-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    q = args.quick
    result: dict = {"uptime_before": _uptime(), "cpu_bf16_flags": cpu_bf16_flags(), "torch": torch.__version__,
                    "torch_threads": args.threads, "machine": platform.processor() or platform.machine(), "quick": q,
                    "stages": {}}
    t0 = time.perf_counter()
    if "matmul" in args.stages:
        result["stages"].update(bench_matmul())
    if "priors" in args.stages:
        result["stages"].update(bench_priors(args.prior_examples or (2 if q else 12), args.seed, args.llm,
                                             args.n_samples or (32 if q else None)))
    if "train" in args.stages:
        result["stages"].update(bench_train(args.timed_steps or (3 if q else 8), args.fidelity_examples or (16 if q else 64), args.seed))
    if "attacks" in args.stages:
        victim = ensure_victim(args.victim, args.seed)
        result["stages"]["attacks"] = bench_attacks(victim, args.attack_texts or (8 if q else 40), args.seed, args.recipes)
    if args.e2e:
        result["e2e"] = bench_e2e(args.e2e_config, REPO / "outputs" / "bench_precision_e2e", args.e2e_seeds)
    result["wall_s"] = time.perf_counter() - t0
    result["uptime_after"] = _uptime()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
