"""Model-aware attacks: our DeepWordBug / PWWS / TextFooler-style against TextAttack's, one run.

    python scripts/bench_attacks.py [--quick] --out results/bench/bench_attacks.json

Victim: the CE model of Banking77 5-shot (all-MiniLM-L6-v2), by default ``runs/bench_attacks_ce/model``.
When it is missing the script trains it first (through ``eg_train.training.api.fit``; 14 minutes
on a loaded 2-core machine), the same as ``eg-train fit --config configs/banking77_5shot.yaml --data.prior none
--trainer.default_root_dir=runs/bench_attacks_ce --model.lr=0.0003 --trainer.max_epochs=10``; a model
there that was trained with another configuration is refused, never reused (``--retrain`` replaces
it). ``--checkpoint DIR`` attacks a model of your own instead. PWWS reads WordNet 3.0 (the
``wordnet`` extra that ``scripts/run.sh`` installs; see ``eg_train/evaluation/ATTACKS.md``).
The same seeded test examples for every row. TextAttack 0.3.11 runs in its own environment
(``scripts/textattack_env.py`` builds it under ``.bench_env/``; never a project dependency); where
it cannot be built or a recipe cannot run offline, its fields are ``null`` with the reason.
Both sides use one torch thread, the same query budget and the same WordNet files; wall times
are the attack loops alone (model loading excluded on both sides, lazy resources such as
WordNet included on both).

Writes ``clean_accuracy`` and per recipe ``success_rate_ours`` / ``_textattack``, ``queries_ours`` /
``_textattack``, ``speedup_vs_textattack``, ``accuracy_under_attack``, ``perturbed_word_pct``
(rates and accuracies in %), and ``eval``: every recipe of ours on ``--n-eval`` test texts
(wall time of one model's full model-aware evaluation). A markdown table goes next to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


DEFAULT_VICTIM_RUN = REPO / "runs" / "bench_attacks_ce"
VICTIM_CONFIG = REPO / "configs" / "banking77_5shot.yaml"
VICTIM_OVERRIDES = ("--data.prior=none", "--model.lr=0.0003", "--trainer.max_epochs=10")  # 0.0003: YAML reads 3e-4 as a string


def victim_config(run_dir: Path):
    """The :class:`~eg_train.training.api.TrainConfig` of the default victim (CE, no prior)."""
    from eg_train.training.api import TrainConfig

    return TrainConfig.from_yaml(VICTIM_CONFIG, VICTIM_OVERRIDES, run_dir=str(run_dir))


def _same_training(saved: Path, cfg) -> bool:
    """Whether the run config at ``saved`` trains what ``cfg`` trains (its folder aside: a moved checkout)."""
    import dataclasses

    import yaml

    from eg_train.training.api import TrainConfig

    if not saved.is_file():
        return False
    try:
        old = TrainConfig.from_mapping(yaml.safe_load(saved.read_text()))
    except (ValueError, TypeError, yaml.YAMLError):  # written by another version of the options
        return False
    return dataclasses.replace(old, run_dir=cfg.run_dir, ckpt_path=None, overwrite=False) == dataclasses.replace(
        cfg, ckpt_path=None, overwrite=False)


def ensure_victim(run_dir: Path = DEFAULT_VICTIM_RUN, retrain: bool = False) -> Path:
    """The default victim's ``model/`` folder, trained into ``run_dir`` when it is not there yet.

    A finished run is reused only when its saved ``config.yaml`` is this configuration; a run
    without ``model/`` (an interrupted training) is trained again from the start.
    """
    from eg_train.training.api import fit
    from eg_train.training.rundir import CONFIG_FILE, MODEL_DIR

    cfg = victim_config(run_dir)
    model, saved = run_dir / MODEL_DIR, run_dir / CONFIG_FILE
    if model.is_dir() and not retrain:
        if _same_training(saved, cfg):
            return model
        sys.exit(f"{run_dir}: holds a model trained with another configuration than this benchmark's victim; "
                 "pass --retrain to replace it, or --checkpoint to attack it on purpose")
    cfg.overwrite = run_dir.exists()
    print(f"[bench_attacks] training the victim into {run_dir} (CE, {VICTIM_CONFIG.name} "
          f"{' '.join(VICTIM_OVERRIDES)})", file=sys.stderr, flush=True)
    result = fit(cfg)
    return result.model_dir


def _pct(x):
    return None if x is None else round(100.0 * x, 2)


def ours(checkpoint: str, test, recipes: list[str], budget: int, seed: int, wordnet_dir: str | None) -> dict:
    from eg_train.evaluation.attacks.recipes import ModelAttackConfig, Resources
    from eg_train.evaluation.attacks.run_model import attack_examples, summarise
    from eg_train.evaluation.attacks.victim import VictimModel

    cfg = ModelAttackConfig(recipes=tuple(recipes), query_budget=budget, seed=seed, wordnet_dir=wordnet_dir)
    victim = VictimModel.from_checkpoint(checkpoint, batch_size=cfg.batch_size)
    resources = Resources(cfg)
    texts, labels = list(test.dataset["text"]), list(test.dataset["label"])
    out = {}
    for name in recipes:
        t0 = time.time()
        outcomes = attack_examples(victim, name, texts, labels, cfg, resources, progress=False)
        seconds = time.time() - t0
        source = resources.wordnet.source if name == "pwws" and resources.wordnet is not None else None
        res = summarise(name, outcomes, seconds, source).as_dict()
        res["status"] = [o.status for o in outcomes]
        res["examples"] = [{"original": o.original.state.text, "attacked": o.final.state.text}
                           for o in outcomes if o.status == "succeeded"][:5]
        out[name] = res
    return out


def textattack_side(checkpoint: str, test, recipe: str, budget: int, seed: int, env: dict, timeout: int) -> dict:
    """Run the TextAttack worker; ``{"error": ...}`` when it cannot."""
    spec = {"checkpoint": checkpoint, "recipe": recipe, "texts": list(test.dataset["text"]),
            "labels": list(test.dataset["label"]), "query_budget": budget, "seed": seed, "threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(spec))
        run_env = {**os.environ, **{k: v for k, v in env.items() if k != "python"}, "OMP_NUM_THREADS": "1"}
        try:
            proc = subprocess.run([env["python"], str(REPO / "scripts" / "bench_attacks_textattack.py"), str(inp), str(outp)],
                                  env=run_env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if proc.returncode != 0 or not outp.exists():
            tail = [x for x in proc.stderr.strip().splitlines() if x.strip()][-1:] or ["no output"]
            return {"error": f"exit {proc.returncode}: {tail[0][:300]}"}
        return json.loads(outp.read_text())


def summarise_textattack(rows: list[dict]) -> dict:
    n = len(rows)
    st = [r["status"] for r in rows]
    succ, fail = st.count("succeeded"), st.count("failed")
    q = [r["queries"] for r in rows if r["status"] != "skipped"]
    pct = [r["perturbed_pct"] for r in rows if r["status"] == "succeeded"]
    return {
        "succeeded": succ, "failed": fail, "skipped": st.count("skipped"),
        "success_rate": succ / (succ + fail) if succ + fail else None,
        "accuracy_under_attack": fail / n if n else None,
        "avg_queries": sum(q) / len(q) if q else None,
        "perturbed_word_pct": sum(pct) / len(pct) if pct else None,
        "status": st,
    }


def markdown(res: dict) -> str:
    lines = [f"# Model-aware attacks vs TextAttack ({res['textattack_version']})", "",
             f"`{res['command']}`", "",
             f"Victim: `{res['checkpoint']}` (Banking77 5-shot CE, all-MiniLM-L6-v2); {res['n']} test texts "
             f"(seed {res['seed']}), query budget {res['query_budget']}, 1 torch thread each side. "
             f"Clean accuracy **{res['clean_accuracy']:.1f} %**. {res['machine']}.", "",
             "| recipe | success % ours | success % TextAttack | Δ | queries ours | queries TextAttack | "
             "acc. under attack % ours (TA) | perturbed words % ours (TA) | wall s ours | wall s TextAttack | speedup |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(x, d=1):
        return "null" if x is None else f"{x:.{d}f}"

    for name, r in res["recipes"].items():
        diff = None if r["success_rate_textattack"] is None else r["success_rate_ours"] - r["success_rate_textattack"]
        lines.append(
            f"| {name} | {f(r['success_rate_ours'])} | {f(r['success_rate_textattack'])} | {f(diff)} | "
            f"{f(r['queries_ours'])} | {f(r['queries_textattack'])} | {f(r['accuracy_under_attack'])} "
            f"({f(r['accuracy_under_attack_textattack'])}) | {f(r['perturbed_word_pct'])} "
            f"({f(r['perturbed_word_pct_textattack'])}) | {f(r['seconds_ours'])} | {f(r['seconds_textattack'])} | "
            f"{f(r['speedup_vs_textattack'])}× |")
    for name, r in res["recipes"].items():
        if r.get("textattack_error"):
            lines.append(f"\n- TextAttack {name}: null — {r['textattack_error']}")
        if r.get("status_agreement") is not None:
            lines.append(f"- {name}: same outcome (succeeded / failed / skipped) on {r['status_agreement']:.1f} % of the examples")
    ev = res.get("eval")
    if ev:
        lines += ["", f"**One model, every recipe of ours on {ev['n']} test texts: {ev['seconds']:.0f} s** "
                  f"(target ≤ 600 s).", "",
                  "| recipe | clean % | acc. under attack % | success % | perturbed words % | queries | skipped | s |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in ev["recipes"].items():
            lines.append(f"| {name} | {f(r['clean_accuracy'])} | {f(r['accuracy_under_attack'])} | "
                         f"{f(r['attack_success_rate'])} | {f(r['avg_perturbed_word_pct'])} | {f(r['avg_queries'])} | "
                         f"{r['skipped']} | {f(r['seconds'], 0)} |")
    if res.get("textattack_env_error"):
        lines += ["", f"TextAttack environment: {res['textattack_env_error']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 texts, deepwordbug + pwws, no 500-text evaluation")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "bench_attacks.json")
    ap.add_argument("--checkpoint", default=None,
                    help="victim model folder (default: the CE victim in runs/bench_attacks_ce, trained when missing)")
    ap.add_argument("--retrain", action="store_true", help="train the default victim again even if it is there")
    ap.add_argument("--n", type=int, default=None, help="texts attacked by both sides (default 40; quick 5)")
    ap.add_argument("--n-eval", type=int, default=None, help="texts for the all-recipe timing (default 500; quick 0)")
    ap.add_argument("--recipes", nargs="+", default=["deepwordbug", "pwws"])
    ap.add_argument("--eval-recipes", nargs="+", default=["deepwordbug", "pwws", "textfooler"])
    ap.add_argument("--query-budget", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-textattack", action="store_true")
    ap.add_argument("--textattack-timeout", type=int, default=3600)
    args = ap.parse_args()
    n = args.n or (5 if args.quick else 40)
    n_eval = args.n_eval if args.n_eval is not None else (0 if args.quick else 500)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    from eg_train.evaluation.attacks.run_model import attack_examples  # noqa: F401  (fail early on import errors)
    from eg_train.evaluation.api import subsample
    from eg_train.foundation.data.source import DataSpec, load_split

    if args.checkpoint is None:
        args.checkpoint = str(ensure_victim(retrain=args.retrain))
    elif not Path(args.checkpoint).is_dir():
        sys.exit(f"{args.checkpoint}: no such model folder (leave --checkpoint out to use the default victim, "
                 "trained when missing)")
    full_test = load_split(DataSpec(preset="banking77"), "test")
    test = subsample(full_test, n, args.seed)

    env, env_error, ta_version = None, None, None
    if not args.no_textattack:
        try:
            import textattack_env

            env = textattack_env.build()
            ta_version = textattack_env.TEXTATTACK
        except Exception as err:  # record why, still produce our numbers
            env_error = f"{type(err).__name__}: {err}"
    wordnet_dir = str(Path(env["NLTK_DATA"]) / "corpora" / "wordnet") if env else None

    mine = ours(args.checkpoint, test, args.recipes, args.query_budget, args.seed, wordnet_dir)
    recipes = {}
    for name in args.recipes:
        o = mine[name]
        ta = textattack_side(args.checkpoint, test, name, args.query_budget, args.seed, env, args.textattack_timeout) if env else {"error": env_error or "skipped (--no-textattack)"}
        ts = summarise_textattack(ta["examples"]) if "examples" in ta else None
        agree = None
        if ts:
            agree = 100.0 * sum(a == b for a, b in zip(o["status"], ts["status"])) / len(o["status"])
        recipes[name] = {
            "success_rate_ours": _pct(o["attack_success_rate"]),
            "success_rate_textattack": _pct(ts["success_rate"]) if ts else None,
            "queries_ours": o["avg_queries"],
            "queries_textattack": ts["avg_queries"] if ts else None,
            "seconds_ours": o["seconds"],
            "seconds_textattack": round(ta["seconds"], 2) if ts else None,
            "speedup_vs_textattack": round(ta["seconds"] / o["seconds"], 2) if ts and o["seconds"] > 0 else None,
            "accuracy_under_attack": _pct(o["accuracy_under_attack"]),
            "accuracy_under_attack_textattack": _pct(ts["accuracy_under_attack"]) if ts else None,
            "perturbed_word_pct": o["avg_perturbed_word_pct"],
            "perturbed_word_pct_textattack": ts["perturbed_word_pct"] if ts else None,
            "skipped_ours": o["skipped"],
            "skipped_textattack": ts["skipped"] if ts else None,
            "status_agreement": agree,
            "synonym_source": o["synonym_source"],
            "textattack_error": ta.get("error"),
            "examples_ours": o["examples"],
        }
    clean = 100.0 * (len(test) - mine[args.recipes[0]]["skipped"]) / len(test)
    result = {
        "command": "python scripts/bench_attacks.py " + " ".join(sys.argv[1:]),
        "checkpoint": str(Path(args.checkpoint).relative_to(REPO)) if Path(args.checkpoint).is_relative_to(REPO) else args.checkpoint,
        "n": len(test), "seed": args.seed, "query_budget": args.query_budget,
        "clean_accuracy": clean,
        "textattack_version": ta_version or "TextAttack (not run)",
        "textattack_env_error": env_error,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "recipes": recipes,
    }
    if n_eval > 0:
        test_eval = subsample(full_test, n_eval, args.seed)
        t0 = time.time()
        ev = ours(args.checkpoint, test_eval, args.eval_recipes, args.query_budget, args.seed, wordnet_dir)
        result["eval"] = {
            "n": len(test_eval), "seconds": round(time.time() - t0, 1),
            "recipes": {k: {kk: (_pct(vv) if kk in ("clean_accuracy", "accuracy_under_attack", "attack_success_rate") else vv)
                            for kk, vv in v.items() if kk not in ("status", "examples")} for k, v in ev.items()},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
