"""Benchmark of the shortcut audit (issue 24): does it find, rank and prove a planted artefact it is not told
about, and does it stay quiet on clean data?

    python scripts/bench_audit.py [--quick] --out results/bench/bench_audit.json

Cases: the shortcut builder's kinds (every kind in ``eg_train.foundation.data.shortcut.KINDS``) × strengths
× positions (every position the builder offers among ``random`` / ``end``: a builder without a position
option inserts at random word boundaries only), plus ``clean`` (strength 0: no artefact in training).
Each case: Banking77 5-shot on its first ``--classes`` intents with ``--val_per_class`` validation texts per
class (the audit's held-out split; they carry the artefact as the training texts do), a CE model trained with
``eg_train.training.api.fit``, the LLM prior computed with ``priors.api.compute`` (``--prior``, SmolLM2 with
``--n_samples`` perturbations: the expensive part), then ``eg_train.evaluation.api.audit`` with the priors
cached. Per case:

- ``ce_reliance``: CE's shortcut reliance on the counter-shortcut test texts (what the benchmark knows);
- ``recall_at_5``: share of classes whose planted artefact is among the class's 5 best-scored confirmed
  features (a feature counts when its words contain the artefact's, or when it is a part of at least 2
  words of a longer artefact: features have at most 3 words);
- ``confirmed``: confirmed features; ``false_confirmations_per_10_classes``: confirmed features that
  contain no planted artefact of their class, per 10 classes (every confirmed feature on ``clean``);
- ``seconds``: the audit's wall time (priors cached); ``over_ce_fit``: that over the CE fit's wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def shortcut_cases(quick: bool) -> list[dict]:
    """Every (kind, strength, position) the builder offers, or the --quick subset, then ``clean``."""
    from eg_train.foundation.data import shortcut

    kinds = list(shortcut.KINDS)
    strengths = [1.0, 0.7] if quick else [1.0, 0.9, 0.7]
    has_position = any(f.name == "position" for f in fields(shortcut.ShortcutConfig))
    offered = getattr(shortcut, "POSITIONS", ("random",)) if has_position else ("random",)
    positions = [p for p in ("random", "end") if p in offered] or ["random"]
    if quick:
        positions = positions[:1] + [p for p in positions[1:] if p == "end"][:1]
    cases = []
    for kind in kinds:
        for s in strengths:
            for pos in positions:
                if quick and pos != "random" and s != 1.0:
                    continue
                cases.append({"name": f"{kind}-s{s:g}-{pos}", "kind": kind, "strength": s, "position": pos})
    cases.append({"name": "clean", "kind": "word", "strength": 0.0, "position": "random"})
    return cases


def build_case(case: dict, args, work: Path):
    from eg_train.experiment.shortcut import ShortcutBenchmarkConfig, build_data
    from eg_train.foundation.data.shortcut import ShortcutConfig
    from eg_train.foundation.data.source import DataSpec

    sc = {"kind": case["kind"], "strength": case["strength"], "rest": "clean", "seed": 0}
    if case["position"] != "random":
        sc["position"] = case["position"]
    cfg = ShortcutBenchmarkConfig(out_dir=str(work), data=DataSpec(preset="banking77", classes=args.classes),
                                  k_shot=args.k_shot, val_per_class=args.val_per_class, shortcut=ShortcutConfig(**sc))
    return build_data(cfg)


def train_ce(spec, args, run_dir: Path):
    """The CE model with the training API (the 8-intent shortcut benchmark's recipe); returns TrainResult."""
    import yaml

    from eg_train.foundation.data.fewshot import SampleSpec
    from eg_train.training.api import TrainConfig, fit

    mapping = yaml.safe_load((ROOT / "configs" / "banking77_5shot.yaml").read_text())
    mapping["trainer"].update({"max_epochs": args.epochs, "enable_progress_bar": False})
    mapping["model"].update({"lr": 3.0e-4})
    tc = TrainConfig.from_mapping(mapping)
    tc.run_dir, tc.seed, tc.overwrite = str(run_dir), 0, True
    tc.model.model_name = "all-minilm-l6-v2"
    tc.data.sample = SampleSpec(spec, args.k_shot, 0, "train")
    tc.trainer.accelerator = "cpu"
    tc.prior = None
    return fit(tc)


def reuse_sibling_priors(spec, args, cache: Path, siblings: list[Path]) -> int:
    """Copy into ``cache`` the priors other cases computed for the very same texts (found by the text
    fingerprint, re-keyed with this case's ids): a strength-0.7 case shares most texts with the 1.0 and
    clean cases (same artefact, same insertion draw per row). Returns the number of records copied."""
    from eg_train.foundation.data.fewshot import SampleSpec
    from eg_train.foundation.words import text_fingerprint
    from priors.cache import PriorCache

    split = SampleSpec(spec, args.k_shot, 0, "train").load()
    mine = PriorCache(cache)
    done = {i for h in mine.config_hashes(args.prior) for i in mine.done_ids(args.prior, h)}
    wanted = {text_fingerprint(t): (i, y) for i, t, y in zip(split.dataset["id"], split.dataset["text"], split.dataset["label"])
              if i not in done}
    copied = 0
    for other in siblings:
        if other == cache or not (other / "parts").is_dir() or not PriorCache(other).config_hashes(args.prior):
            continue  # nothing of this method there (a sibling computed another prior)
        records = PriorCache(other).records(args.prior)
        by_hash: dict[str, list[dict]] = {}
        for r in records:
            if r["fingerprint"] in wanted:
                rid, y = wanted.pop(r["fingerprint"])
                by_hash.setdefault(r["config_hash"], []).append({**r, "id": rid, "label": int(y)})
        for chash, recs in by_hash.items():
            mine.append(recs, args.prior, chash)
            copied += len(recs)
    return copied


def compute_priors(spec, args, cache: Path) -> float:
    from priors.api import compute
    from priors.config import PriorsConfig

    reused = reuse_sibling_priors(spec, args, cache, sorted(cache.parent.parent.glob(f"*/{cache.name}")))
    if reused:
        print(f"{cache}: {reused} priors reused from other cases (same texts)", flush=True)
    t = time.perf_counter()
    compute(PriorsConfig(data=spec, k_shot=args.k_shot, sample_seed=0, methods=[args.prior], llm=args.llm,
                         n_samples=args.n_samples, demonstrations_per_class=0, cache_dir=str(cache)))
    return time.perf_counter() - t


def ce_reliance(model_dir: Path, data) -> float:
    from eg_train.evaluation.shortcut import evaluate_shortcut_model

    return evaluate_shortcut_model(model_dir, data, ig_examples=0, train_ig_examples=0)["shortcut_reliance"]


def score_case(doc: dict, artefacts: list[str] | None, n_classes: int) -> dict:
    """recall@5, confirmed count and false confirmations per 10 classes of one audit."""
    def hits(feature: str, label: int) -> bool:
        """The feature contains the artefact, or is a part of it of at least 2 words: the audit's features
        have at most max_n (3) words, so a 4-word artefact ("sent from my iphone") is found as a part."""
        if not artefacts:
            return False
        a = artefacts[label].lower().split()
        f = feature.split()
        if any(f[k : k + len(a)] == a for k in range(len(f) - len(a) + 1)):
            return True
        return len(f) >= 2 and any(a[k : k + len(f)] == f for k in range(len(a) - len(f) + 1))

    confirmed = doc["confirmed"]
    false = [c for c in confirmed if not hits(c["feature"], c["label"])]
    recall = None
    if artefacts:
        found = 0
        for label in range(n_classes):
            mine = sorted([c for c in confirmed if c["label"] == label], key=lambda c: -c["score"])[:5]
            found += any(hits(c["feature"], label) for c in mine)
        recall = found / n_classes
    return {"recall_at_5": recall, "confirmed": len(confirmed),
            "false_confirmations_per_10_classes": 10 * len(false) / n_classes,
            "false_confirmed": [{"class": c["class"], "feature": c["feature"], "flip_rate": c["flip_rate"],
                                 "flip_rate_control": c["flip_rate_control"], "model_share": c["model_share"],
                                 "prior_share": c["prior_share"], "texts": c["texts"]} for c in false]}


def run_case(case: dict, args, root: Path) -> dict:
    from eg_train.evaluation.api import audit
    from eg_train.evaluation.audit import AuditConfig
    from eg_train.foundation.data.shortcut import shortcut_metadata

    work = root / case["name"]
    data, spec = build_case(case, args, work)
    meta = shortcut_metadata(data["train"])
    planted = case["strength"] > 0
    done = work / "ce_fit.json"  # a resumed case reuses its CE model (and its fit time); the prior cache resumes
    if done.is_file() and (work / "ce" / "model" / "config.json").is_file():
        fit = json.loads(done.read_text())
    else:
        t = time.perf_counter()
        res = train_ce(spec, args, work / "ce")
        fit = {"ce_fit_seconds": time.perf_counter() - t, "val_acc": res.metrics.get("val_acc")}
        done.write_text(json.dumps(fit))
    ce_s, val_acc, model_dir = fit["ce_fit_seconds"], fit.get("val_acc"), work / "ce" / "model"
    prior_s = compute_priors(spec, args, work / "prior_cache")
    t = time.perf_counter()
    llm = None if args.audit_llm == "none" else (args.llm if args.audit_llm == "same" else args.audit_llm)
    path = audit(str(model_dir), spec, str(work / "audit"), str(work / "prior_cache"), [args.prior], k_shot=args.k_shot,
                 heldout_split="validation", params=AuditConfig(candidates_per_class=args.candidates_per_class, llm=llm,
                                                                llm_scope=args.llm_scope, llm_contrast=args.llm_contrast,
                                                                label_encoder=args.label_encoder, label_alpha=args.label_alpha),
                 overwrite=True)
    audit_s = time.perf_counter() - t
    doc = json.loads(Path(path).read_text())
    artefacts = meta["artefacts"] if planted else None
    cleared = [c for c in doc["candidates"] if c.get("cleared_by_label")]
    # The same audit as the label check found it: its confirmed features plus those the check cleared.
    without_label = score_case({"confirmed": doc["confirmed"] + cleared}, artefacts, len(meta["label_names"]))
    out = {"kind": case["kind"], "strength": case["strength"], "position": case["position"],
           "artefacts": meta["artefacts"] if planted else None,
           "ce_reliance": ce_reliance(model_dir, data), "val_acc": val_acc,
           **score_case(doc, meta["artefacts"] if planted else None, len(meta["label_names"])),
           "llm": llm, "llm_tested": doc["counts"].get("llm_tested", 0), "llm_evidence": doc["counts"].get("llm_evidence", 0),
           "llm_pairs": doc["counts"].get("llm_pairs", 0),
           "llm_evidence_features": [f"{c['class']}: {c['feature']}" for c in doc["candidates"] if c.get("llm_evidence")],
           "label_cleared_features": [f"{c['class']}: {c['feature']} (p {c['label_p']:.3f})" for c in cleared],
           "without_label_check": {k: without_label[k] for k in ("recall_at_5", "confirmed",
                                                                 "false_confirmations_per_10_classes")},
           "seconds": round(audit_s, 1), "ce_fit_seconds": round(ce_s, 1), "over_ce_fit": round(audit_s / ce_s, 3),
           "over_ce_fit_without_llm": round((audit_s - doc["seconds"].get("llm", 0) - doc["seconds"].get("llm_load", 0)) / ce_s, 3),
           "audit_inner_seconds": doc["seconds"], "prior_seconds": round(prior_s, 1),
           "confirmed_features": [f"{c['class']}: {c['feature']} ({c['position']})" for c in doc["confirmed"]],
           "audit": str(path)}
    return out


def write_markdown(res: dict, path: Path) -> None:
    s = res["settings"]
    lines = [
        "# Shortcut audit benchmark (issue 24)", "",
        f"Produced by `{res['command']}` on {res['machine']} (a shared 2-core CPU, loaded by other jobs: "
        "the seconds are indicative, the ratio to the CE fit beside them on the same load).", "",
        f"Banking77 {s['k_shot']}-shot, first {s['classes']} intents, {s['val_per_class']} validation texts per class "
        f"(the audit's held-out split); CE: all-MiniLM-L6-v2, {s['epochs']} epochs (`eg_train.training.api.fit`; "
        "its fit time is that of the run that trained it: a resumed case reuses its model and fit time); "
        f"prior: {s['prior']} from {s['llm']} with n = {s['n_samples']} perturbations (`priors.api.compute`, cached "
        f"before the audit); audit defaults, {s['candidates_per_class']} candidates per class proved; LLM counterfactual: "
        + ("off" if s.get("audit_llm", "none") == "none" else
           f"{s['llm'] if s.get('audit_llm') == 'same' else s.get('audit_llm')} (CAP prompt, contrast {s.get('llm_contrast')}, "
           f"scope {s.get('llm_scope')})")
        + ".", "",
        "Audit s is the audit's wall time with the priors cached (the LLM's load and scoring included: `llm s`); "
        "audit / CE fit without the LLM check is in the JSON (`over_ce_fit_without_llm`).", "",
        f"Positions offered by the builder today: {', '.join(res['positions_offered'])}"
        + ("" if "end" in res["positions_offered"] else " (no `end` option yet: those cases were not run)") + "."
        + (f" Strength 0.9 at k = {s['k_shot']} plants floor(0.9·{s['k_shot']} + ½) = "
           f"{int(0.9 * s['k_shot'] + 0.5)} texts per class." if s["k_shot"] == 5 else ""), "",
        "| case | CE reliance | recall@5 | confirmed | false / 10 classes | LLM evidence / LLM-tested | audit s | llm s | CE fit s | audit / CE fit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in res["cases"].items():
        r = "n/a" if c["recall_at_5"] is None else f"{c['recall_at_5']:.2f}"
        llm_s = c.get("audit_inner_seconds", {}).get("llm", 0) + c.get("audit_inner_seconds", {}).get("llm_load", 0)
        lines.append(f"| {name} | {100 * c['ce_reliance']:.1f} % | {r} | {c['confirmed']} | "
                     f"{c['false_confirmations_per_10_classes']:.2f} | {c.get('llm_evidence', 0)} / {c.get('llm_tested', 0)} | "
                     f"{c['seconds']:.1f} | {llm_s:.1f} | {c['ce_fit_seconds']:.1f} | {c['over_ce_fit']:.2f} |")
    t = res["targets"]
    lines += ["", "Targets:", "",
              f"- recall@5 ≥ 0.9 wherever CE reliance ≥ 20 %: **{'met' if t['recall']['met'] else 'not met'}** "
              f"({t['recall']['detail']})",
              f"- clean data: ≤ 1 confirmed feature per 10 classes: **{'met' if t['clean']['met'] else 'not met'}** "
              f"({t['clean']['detail']})",
              f"- audit wall time ≤ one CE fit: **{'met' if t['time']['met'] else 'not met'}** ({t['time']['detail']})", ""]
    lines += ["Confirmed features per case (class: feature (position)); false confirmations are listed with their texts in the JSON:", ""]
    for name, c in res["cases"].items():
        lines.append(f"- {name}: " + ("; ".join(c["confirmed_features"]) or "none"))
    lines += ["", "Features the LLM counterfactual calls class evidence (so not confirmed), per case:", ""]
    for name, c in res["cases"].items():
        lines.append(f"- {name}: " + ("; ".join(c.get("llm_evidence_features", [])) or "none"))
    if s.get("label_encoder"):
        lines += ["", f"The label-relatedness check ({s['label_encoder']}, level {s['label_alpha']}): the same audits "
                  "without it (its confirmed features plus those it cleared), and the features it cleared:", "",
                  "| case | recall@5 without → with | confirmed without → with | false / 10 classes without → with |",
                  "|---|---|---|---|"]
        for name, c in res["cases"].items():
            w = c["without_label_check"]
            r = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
            lines.append(f"| {name} | {r(w['recall_at_5'])} → {r(c['recall_at_5'])} | {w['confirmed']} → {c['confirmed']} | "
                         f"{w['false_confirmations_per_10_classes']:.2f} → {c['false_confirmations_per_10_classes']:.2f} |")
        lines.append("")
        for name, c in res["cases"].items():
            lines.append(f"- {name}: " + ("; ".join(c.get("label_cleared_features", [])) or "none"))
    not_run = [c["name"] for c in shortcut_cases(bool(s.get("quick"))) if c["name"] not in res["cases"]]
    if not_run:
        lines += ["", f"Not run (partial table): {', '.join(not_run)}."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def targets(cases: dict) -> dict:
    relied = {n: c for n, c in cases.items() if c["recall_at_5"] is not None and c["ce_reliance"] >= 0.2}
    bad = [n for n, c in relied.items() if c["recall_at_5"] < 0.9]
    clean = cases.get("clean")
    times = {n: c["over_ce_fit"] for n, c in cases.items()}
    return {
        "recall": {"met": bool(relied) and not bad,
                   "detail": f"{len(relied)} cases with reliance ≥ 20 %; below 0.9: {', '.join(bad) or 'none'}"},
        "clean": {"met": clean is not None and clean["false_confirmations_per_10_classes"] <= 1.0,
                  "detail": "not run" if clean is None else f"{clean['false_confirmations_per_10_classes']:.2f} per 10 classes"},
        "time": {"met": all(x <= 1.0 for x in times.values()),
                 "detail": f"audit / CE fit max {max(times.values()):.2f}, median "
                           f"{sorted(times.values())[len(times) // 2]:.2f}" if times else "none"},
    }


def merge(paths: list[str], out: Path) -> dict:
    """One result file from several runs of this script with the same settings (e.g. run side by side)."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    if not docs:
        raise SystemExit("bench_audit.py: --merge needs at least one result file")
    for d in docs:
        d["settings"].pop("work_dir", None)
        if d["settings"] != docs[0]["settings"]:
            raise SystemExit(f"bench_audit.py: {paths[docs.index(d)]} was run with other settings")
    res = dict(docs[0])
    res["cases"] = {k: v for d in docs for k, v in d["cases"].items()}
    res["runs"] = sorted({d["command"] for d in docs})  # the processes that measured the cases, side by side
    quick = " --quick" if docs[0]["settings"].get("quick") else ""
    res["command"] = f"python scripts/bench_audit.py{quick} --cases {','.join(res['cases'])} --out {out}"
    res["targets"] = targets(res["cases"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    write_markdown(res, out.with_suffix(".md"))
    return res


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="strengths 1.0 / 0.7 only (and one position)")
    p.add_argument("--out", default="results/bench/bench_audit.json")
    p.add_argument("--work_dir", default="outputs/bench_audit")
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--k_shot", type=int, default=5)
    p.add_argument("--val_per_class", type=int, default=6)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--prior", default="lime")
    p.add_argument("--llm", default="smollm2-135m-instruct")
    p.add_argument("--n_samples", type=int, default=16)
    p.add_argument("--candidates_per_class", type=int, default=3)
    p.add_argument("--audit_llm", default="gemma3-270m",
                   help="the LLM of the audit's LLM counterfactual (default: the audit's and the pipeline's default LLM); "
                        "'same': the prior's --llm; 'none': off")
    p.add_argument("--llm_scope", default="flipping", choices=["flipping", "tested"])
    p.add_argument("--llm_contrast", default="none", choices=["none", "full"], help="the LLM counterfactual's log p")
    p.add_argument("--label_encoder", default=None,
                   help="the audit's label-relatedness check (e.g. all-minilm-l6-v2; default: off)")
    p.add_argument("--label_alpha", type=float, default=0.05, help="the label check's level")
    p.add_argument("--cases", default=None, help="comma-separated case names to run (default: all)")
    p.add_argument("--merge", nargs="*", default=None,
                   help="no run: combine the cases of these result files (same settings) into --out")
    args = p.parse_args(argv)
    if args.merge is not None:
        return merge(args.merge, Path(args.out))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from eg_train.foundation.data import shortcut

    cases = shortcut_cases(args.quick)
    if args.cases:  # any case of the full list may be named, --quick only sets the default list
        by_name = {c["name"]: c for c in shortcut_cases(False)}
        unknown = [n for n in args.cases.split(",") if n not in by_name]
        if unknown:
            raise SystemExit(f"bench_audit.py: unknown cases {unknown}; choose from {sorted(by_name)}")
        cases = [by_name[n] for n in args.cases.split(",")]  # in the order given
    out = Path(args.out)
    res = {"command": " ".join(["python scripts/bench_audit.py", *(argv if argv is not None else sys.argv[1:])]),
           "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
           "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cases", "work_dir")},
           "kinds": list(shortcut.KINDS),
           "positions_offered": list(getattr(shortcut, "POSITIONS", ("random",))), "cases": {}}
    if out.is_file():  # resume: cases already measured with the same settings are kept
        old = json.loads(out.read_text())
        if old.get("settings") == res["settings"]:
            res["cases"] = old.get("cases", {})
    for case in cases:
        if case["name"] in res["cases"]:
            continue
        t = time.perf_counter()
        res["cases"][case["name"]] = run_case(case, args, Path(args.work_dir))
        print(f"{case['name']}: {json.dumps({k: v for k, v in res['cases'][case['name']].items() if k in ('ce_reliance', 'recall_at_5', 'confirmed', 'false_confirmations_per_10_classes', 'seconds', 'over_ce_fit')})} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        res["targets"] = targets(res["cases"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")
        write_markdown(res, out.with_suffix(".md"))
    return res


if __name__ == "__main__":
    main()
