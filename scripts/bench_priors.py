"""Benchmark of the prior stage: this project's CAP prior against captum's ``Lime``.

    python scripts/bench_priors.py [--quick] --out FILE.json

The CAP prior (class-aware prompt, ``z = -1/log p``, n = 100 perturbations) on SmolLM2 for a
fixed, seeded selection of Banking77 test examples, measured side by side in one run with
captum 0.9's ``Lime`` attributing the same prompts with the same model:

* **ours**: ``CapPrior.compute`` (prefix keys/values computed once, batched scoring).
* **captum, default**: ``Lime(forward_func)`` with its defaults (``SkLearnLasso(alpha=0.01)``,
  exponential cosine kernel, ``perturbations_per_eval=1``). Each word is one interpretable
  feature (``inputs`` = ones, ``baselines`` = zeros, ``feature_mask`` = word index); the
  forward function builds the full class-aware prompt from the kept words and runs one full,
  uncached forward per prompt. ``perturb_func`` replays *our* seeded masks, so both sides score
  exactly the same prompts (same work, and a probability-by-probability comparison).
* **captum, batched**: the same with ``perturbations_per_eval`` tuned by a sweep on the first
  example(s); the forward pads a batch of full prompts (left padding, attention mask).

The captum forward is given every benefit that does not change what it computes: it projects
only the label positions to the vocabulary (``logits_to_keep``), not the whole prompt.

Methods alternate per example (the order flips every example) so drift in machine load hits
both; speedups are medians of per-example time ratios. ``--captum-samples m < 100`` times
captum on the first ``m`` of the 100 masks and scales its time by ``100/m`` (flagged in the
JSON as ``captum_time_extrapolated``); ``--quick`` does that so it fits in ~3 minutes on a
2-core machine. The full run times all 100. Both methods run with the same torch threads
(``--threads``, default 1, recorded in the JSON).

Writes the JSON at ``--out`` and a markdown table next to it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

log = logging.getLogger("bench_priors")

N_SAMPLES = 100  # perturbations per example (the CAP prior's n)
TARGETS = {"speedup_vs_captum_lime": 20.0, "speedup_vs_captum_lime_batched": 5.0, "max_abs_prob_diff": 1e-4}


# --------------------------------------------------------------------------- captum reference
def full_prompt_rows(tokenizer, template, words, masks: torch.Tensor, label_text: str) -> list[tuple[list[int], int]]:
    """Token ids of each full prompt ``template.render(words.keep(mask), label)`` and the
    number of label tokens at its end (tokenised as one string, as a captum user would)."""
    rows = []
    for mask in masks.round().to(torch.long).tolist():
        kept = words.keep(mask)
        prompt = tokenizer(template.render(kept))["input_ids"]
        full = tokenizer(template.render(kept, label_text))["input_ids"]
        if full[: len(prompt)] != prompt:
            raise ValueError(f"the label does not start on a token boundary in {template.render(kept, label_text)!r}")
        rows.append((full, len(full) - len(prompt)))
    return rows


@torch.inference_mode()
def full_prompt_log_probs(model, rows: Sequence[tuple[list[int], int]], pad_id: int) -> torch.Tensor:
    """``log p(label tokens | prompt)`` for each row from one uncached, left-padded forward."""
    L = max(len(ids) for ids, _ in rows)
    K = max(n for _, n in rows) + 1
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), L), dtype=torch.long)
    for r, (seq, _) in enumerate(rows):
        ids[r, L - len(seq) :] = torch.tensor(seq)
        att[r, L - len(seq) :] = 1
    pos = (att.cumsum(dim=1) - 1).clamp_min(0)  # unpadded positions for left-padded rows
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=K).logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # [B, K, V]: positions L-K … L-1
    out = torch.empty(len(rows), dtype=torch.float64)
    for r, (seq, n) in enumerate(rows):
        cols = torch.arange(K - n - 1, K - 1)
        out[r] = logp[r, cols, torch.tensor(seq[-n:])].double().sum()
    return out


def make_captum_forward(model, tokenizer, template, words, label_text: str, record: list | None = None) -> Callable:
    """Captum forward: binary word masks ``[k, d]`` -> CAP target ``-1/log p(gold)`` ``[k]``.

    ``record`` (a list) receives the float64 ``log p`` of every prompt, in call order.
    """
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def forward(masks: torch.Tensor) -> torch.Tensor:
        rows = full_prompt_rows(tokenizer, template, words, masks, label_text)
        logp = full_prompt_log_probs(model, rows, pad_id)
        if record is not None:
            record.extend(logp.tolist())
        return (-1.0 / logp.clamp_max(-1e-6)).float()

    return forward


def replay_masks(masks: np.ndarray) -> Callable:
    """A captum ``perturb_func`` (generator) that yields the given masks, one ``[1, d]`` row each."""

    def perturb(original_inp, **kwargs):
        for row in masks:
            yield torch.as_tensor(row, dtype=torch.long).unsqueeze(0)

    return perturb


def captum_lime(forward: Callable, masks: np.ndarray, interpretable_model=None, similarity_func=None):
    """captum ``Lime`` with its defaults except ``perturb_func`` (replays ``masks``)."""
    from captum.attr import Lime

    return Lime(forward, interpretable_model=interpretable_model, similarity_func=similarity_func,
                perturb_func=replay_masks(masks))


def captum_attribute(lime, d: int, n: int, perturbations_per_eval: int = 1) -> np.ndarray:
    """Attribute one text with ``d`` words (each word one feature) over ``n`` perturbations."""
    out = lime.attribute(
        torch.ones(1, d),
        baselines=torch.zeros(1, d),
        feature_mask=torch.arange(d).unsqueeze(0),
        n_samples=n,
        perturbations_per_eval=perturbations_per_eval,
    )
    return out.detach().reshape(-1).double().numpy()


# --------------------------------------------------------------------------- measurement
def _timed(fn: Callable):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None, None
    from scipy.stats import pearsonr, spearmanr

    return float(pearsonr(a, b)[0]), float(spearmanr(a, b)[0])


def select_examples(split, count: int, seed: int) -> list[int]:
    """A fixed, seeded selection of example indices."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(len(split), size=count, replace=False))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON output (a markdown table is written beside it, .md)")
    ap.add_argument("--quick", action="store_true", help="few examples, captum timed on a subset of the masks")
    ap.add_argument("--examples", type=int, default=None, help="examples timed (default 5, quick 2)")
    ap.add_argument("--captum-samples", type=int, default=None,
                    help=f"masks captum scores per example, timing scaled to {N_SAMPLES} (default {N_SAMPLES}, quick 10)")
    ap.add_argument("--sweep", default=None,
                    help="perturbations_per_eval values for the captum sweep (default 8,16,32,64,100; quick 5,10)")
    ap.add_argument("--sweep-examples", type=int, default=None, help="examples the sweep runs on (default 1)")
    ap.add_argument("--llm", default="smollm2-135m-instruct")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0, help="example selection and mask seed")
    ap.add_argument("--scorer-batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared 2-core machine two OpenMP threads per process "
                         "oversubscribe the cores and timings swing ~5x; 0 = torch's default)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    n_examples = args.examples or (2 if args.quick else 5)
    m_captum = args.captum_samples or (10 if args.quick else N_SAMPLES)
    sweep = [int(v) for v in (args.sweep or ("5,10" if args.quick else "8,16,32,64,100")).split(",")]
    n_sweep = args.sweep_examples or 1
    if not 1 <= m_captum <= N_SAMPLES:
        raise SystemExit(f"--captum-samples must be in 1..{N_SAMPLES} (got {m_captum})")
    sweep = sorted({min(v, m_captum) for v in sweep if v > 1})
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from tqdm import tqdm

    from eg_train.foundation.data import DataSpec, load_split
    from eg_train.foundation.data.source import readable_label
    from eg_train.foundation.models import load_causal_lm
    from priors.base import PriorBatch
    from priors.methods.cap import CapPrior, neg_inv_log
    from priors.prompts import class_aware_template
    from priors.ridge import ridge_cholesky
    from priors.scorer import LabelScorer

    t0 = time.perf_counter()
    model, tokenizer = load_causal_lm(args.llm)
    model.eval()
    split = load_split(DataSpec(preset="banking77"), args.split)
    template = class_aware_template(split.label_names)

    class RecordingScorer(LabelScorer):
        """Keeps the last ``log p`` it returned: the probabilities the timed CAP run used."""

        def log_prob(self, texts, labels):
            self.last_log_prob = super().log_prob(texts, labels)
            return self.last_log_prob

    scorer = RecordingScorer(model, tokenizer, template, split.label_names, batch_size=args.scorer_batch_size)
    cap = CapPrior(scorer, model_id=args.llm, n_samples=N_SAMPLES, ridge_lambda=1.0, seed=args.seed)
    log.info("model and data loaded in %.1fs", time.perf_counter() - t0)

    chosen = select_examples(split, n_examples + n_sweep + 1, args.seed)
    warm_i, sweep_idx, bench_idx = chosen[0], chosen[1 : 1 + n_sweep], chosen[1 + n_sweep :]

    def example(i: int):
        row = split.dataset[i]
        batch = PriorBatch([row["id"]], [row["text"]], [int(row["label"])])
        masks = cap.masks_for(batch)[0]
        label_text = readable_label(split.label_names[batch.labels[0]])
        return batch, masks, label_text

    def run_captum(batch, masks, label_text, ppe: int, record: list | None = None, n: int = m_captum):
        forward = make_captum_forward(model, tokenizer, template, batch.words[0], label_text, record)
        return captum_attribute(captum_lime(forward, masks[:n]), masks.shape[1], n, ppe)

    # Warm-up (not timed): first calls allocate, pick kernels and build the prefix keys/values.
    batch, masks, label_text = example(warm_i)
    cap.compute(batch)
    run_captum(batch, masks, label_text, ppe=1, n=4)

    scale = N_SAMPLES / m_captum
    sweep_times: dict[int, list[float]] = {v: [] for v in sweep}
    for i in tqdm(sweep_idx, desc="perturbations_per_eval sweep"):
        batch, masks, label_text = example(i)
        for v in sweep:
            t, _ = _timed(lambda: run_captum(batch, masks, label_text, ppe=v))
            sweep_times[v].append(t * scale)
    sweep_median = {v: statistics.median(ts) for v, ts in sweep_times.items()}
    best_ppe = min(sweep_median, key=sweep_median.get)
    log.info("sweep (s per example, scaled to n=%d): %s -> best perturbations_per_eval=%d",
             N_SAMPLES, {v: round(t, 2) for v, t in sweep_median.items()}, best_ppe)

    per_example = []
    prob_diffs, logprob_diffs = [], []
    for k, i in enumerate(tqdm(bench_idx, desc="examples")):
        batch, masks, label_text = example(i)
        record: list[float] = []
        runs = {
            "ours": lambda: cap.compute(batch)[0].scores,  # sets scorer.last_log_prob (this example's n)
            "captum_default": lambda: run_captum(batch, masks, label_text, ppe=1, record=record),
            "captum_batched": lambda: run_captum(batch, masks, label_text, ppe=best_ppe),
        }
        order = list(runs) if k % 2 == 0 else list(reversed(runs))  # alternate who goes first
        times, outputs = {}, {}
        for name in order:
            times[name], outputs[name] = _timed(runs[name])
        times["captum_default"] *= scale
        times["captum_batched"] *= scale

        # Same masks, same model: the log p our timed run used against captum's full prompts.
        sub = masks[:m_captum]
        ours_lp = scorer.last_log_prob[:m_captum]
        captum_lp = np.asarray(record)
        prob_diffs.append(float(np.max(np.abs(np.exp(ours_lp) - np.exp(captum_lp)))))
        logprob_diffs.append(float(np.max(np.abs(ours_lp - captum_lp))))

        # Attributions: captum's default (Lasso + kernel) vs ours, and a matched fit: captum's
        # SkLearnRidge(alpha=1) on captum's targets vs our Cholesky ridge on ours (same masks).
        from captum._utils.models.linear_model import SkLearnRidge
        from torch.utils.data import DataLoader, TensorDataset

        ridge = SkLearnRidge(alpha=1.0)
        z_captum = torch.from_numpy(neg_inv_log(captum_lp)).float()
        ridge.fit(DataLoader(TensorDataset(torch.from_numpy(sub).float(), z_captum, torch.ones(len(sub))),
                             batch_size=len(sub)))
        matched_captum = ridge.representation().detach().reshape(-1).double().numpy()
        matched_ours, _ = ridge_cholesky(torch.from_numpy(sub).unsqueeze(0).double(),
                                         torch.from_numpy(neg_inv_log(ours_lp)).unsqueeze(0), 1.0)
        matched_ours = matched_ours[0].numpy()
        pearson, spearman = _corr(outputs["ours"].astype(np.float64), outputs["captum_default"])
        per_example.append({
            "id": batch.ids[0], "words": len(batch.words[0]), "order": order,
            "seconds": {name: round(t, 4) for name, t in times.items()},
            "speedup_vs_captum_lime": times["captum_default"] / times["ours"],
            "speedup_vs_captum_lime_batched": times["captum_batched"] / times["ours"],
            "max_abs_prob_diff": prob_diffs[-1], "max_abs_log_prob_diff": logprob_diffs[-1],
            "attr_pearson_vs_captum_default": pearson, "attr_spearman_vs_captum_default": spearman,
            "matched_ridge_max_abs_attr_diff": float(np.max(np.abs(matched_ours - matched_captum))),
        })
        log.info("%s: ours %.2fs, captum %.1fs, captum batched %.1fs, max |Δp| %.2e",
                 batch.ids[0], times["ours"], times["captum_default"], times["captum_batched"], prob_diffs[-1])

    def med(key: str, sub: str | None = None) -> float | None:
        vals = [e[key][sub] if sub else e[key] for e in per_example]
        vals = [v for v in vals if v is not None]
        return float(statistics.median(vals)) if vals else None  # None: e.g. Lasso kept no word

    result = {
        "speedup_vs_captum_lime": med("speedup_vs_captum_lime"),
        "speedup_vs_captum_lime_batched": med("speedup_vs_captum_lime_batched"),
        "max_abs_prob_diff": max(prob_diffs),
        "max_abs_log_prob_diff": max(logprob_diffs),
        "examples_per_minute": 60.0 / med("seconds", "ours"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "n_examples": len(per_example),
        "median_seconds": {name: med("seconds", name) for name in ("ours", "captum_default", "captum_batched")},
        "attr_pearson_vs_captum_default_median": med("attr_pearson_vs_captum_default"),
        "attr_spearman_vs_captum_default_median": med("attr_spearman_vs_captum_default"),
        "matched_ridge_max_abs_attr_diff": max(e["matched_ridge_max_abs_attr_diff"] for e in per_example),
        "best_perturbations_per_eval": best_ppe,
        "sweep_seconds_per_example": {str(v): sweep_times[v] for v in sweep},
        "sweep_examples": [split.dataset[i]["id"] for i in sweep_idx],
        "captum_samples_timed": m_captum,
        "captum_time_extrapolated": m_captum != N_SAMPLES,
        "targets": TARGETS,
        "per_example": per_example,
        "machine": {
            "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "loadavg_at_end": os.getloadavg(),
        },
        "config": {
            "quick": args.quick, "llm": args.llm, "dataset": "banking77", "split": args.split, "seed": args.seed,
            "n_samples": N_SAMPLES, "ridge_lambda": 1.0, "scorer_batch_size": args.scorer_batch_size,
            "shared_prefix_attention": bool(scorer._shared_prefix),
            "prefix_tokens": len(scorer.prefix_ids), "warmup_example": split.dataset[warm_i]["id"],
            "ours": "CapPrior.compute, one example per call (prefix keys/values computed once per process)",
            "captum_default": "captum.attr.Lime defaults (SkLearnLasso(alpha=0.01), exp cosine kernel width 1, "
                              "perturbations_per_eval=1); perturb_func replays our masks; full uncached forward "
                              "per prompt, logits only at the label positions",
            "captum_batched": f"as captum_default with perturbations_per_eval={best_ppe} (best of the sweep), "
                              "left-padded batches with attention mask",
            "matched_ridge": "captum SkLearnRidge(alpha=1.0), uniform weights, on captum's z vs priors.ridge "
                             "ridge_cholesky(lambda=1) on our z, same masks",
            "captum": __import__("captum").__version__,
            "transformers": __import__("transformers").__version__,
        },
        "seconds_total": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(markdown(result))
    log.info("wrote %s and %s (%.0fs)", out, out.with_suffix(".md"), result["seconds_total"])
    print(markdown(result))
    return result


def markdown(r: dict) -> str:
    """The README table."""
    def ok(key, value):
        if key not in TARGETS or value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        good = value <= TARGETS[key] if key == "max_abs_prob_diff" else value >= TARGETS[key]
        return ("≤ " if key == "max_abs_prob_diff" else "≥ ") + f"{TARGETS[key]:g} " + ("✅" if good else "❌")

    def num(value, fmt: str) -> str:
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    s = r["median_seconds"]
    m = r["machine"]
    note = (f"captum timed on {r['captum_samples_timed']} of {r['config']['n_samples']} masks, scaled"
            if r["captum_time_extrapolated"] else f"all {r['config']['n_samples']} masks timed")
    lines = [
        f"CAP prior, n = {r['config']['n_samples']}, {r['config']['llm']}, Banking77 ({r['n_examples']} examples; "
        f"{m['nproc']} CPUs, {m['torch_threads']} torch threads; {note}; medians)",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| ours (s / example) | {s['ours']:.2f} | |",
        f"| captum Lime, defaults (s / example) | {s['captum_default']:.1f} | |",
        f"| captum Lime, perturbations_per_eval={r['best_perturbations_per_eval']} (s / example) | "
        f"{s['captum_batched']:.1f} | |",
        f"| speedup_vs_captum_lime | {r['speedup_vs_captum_lime']:.1f}× | {ok('speedup_vs_captum_lime', r['speedup_vs_captum_lime'])} |",
        f"| speedup_vs_captum_lime_batched | {r['speedup_vs_captum_lime_batched']:.1f}× | "
        f"{ok('speedup_vs_captum_lime_batched', r['speedup_vs_captum_lime_batched'])} |",
        f"| max_abs_prob_diff | {r['max_abs_prob_diff']:.1e} | {ok('max_abs_prob_diff', r['max_abs_prob_diff'])} |",
        f"| max_abs_log_prob_diff | {r['max_abs_log_prob_diff']:.1e} | |",
        f"| examples_per_minute (ours) | {r['examples_per_minute']:.1f} | |",
        f"| peak_rss_mb (whole run) | {r['peak_rss_mb']:.0f} | |",
        f"| attribution Spearman vs captum default (Lasso) | {num(r['attr_spearman_vs_captum_default_median'], '.2f')} | |",
        f"| matched ridge max abs attribution diff | {r['matched_ridge_max_abs_attr_diff']:.1e} | |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
