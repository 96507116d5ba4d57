"""Benchmark: cost of the IG alignment step vs a CE-only step, and fidelity of the training-time IG.

    python scripts/bench_train.py [--quick] --out FILE.json

MiniLM-L6 (embedded ``all-minilm-l6-v2``), Banking77, batch 32. One optimisation step (forward,
backward, AdamW step) is timed for CE only (``prior: none`` path), for CE + alignment at the
default IG settings, with the classifier forward and the IG path in length-sorted groups
(``--length-buckets``, ``--ig-length-buckets``) and for CE + alignment on a share of the rows
(``--align-fractions``), interleaved on the *same* batches so that machine load affects both alike;
medians are reported. The warped rule's calibration (run once per ``recalibrate_every`` steps)
is timed separately and reported amortised. Fidelity: per example, the Spearman correlation at
word level between the training-time IG (the rule used in training) and captum
``IntegratedGradients`` with 50 Gauss-Legendre steps, averaged over held-out test examples.
Writes ``FILE.json`` and a markdown table ``FILE.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eg_train.foundation.attribution import IGConfig, integrated_gradients, word_attributions  # noqa: E402
from eg_train.foundation.data import DataSpec, load_split  # noqa: E402
from eg_train.foundation.device import autocast  # noqa: E402
from eg_train.training.datamodule import EncodedDataset, collate  # noqa: E402
from eg_train.training.module import EGModule  # noqa: E402
from eg_train.foundation.words import split_words  # noqa: E402
from priors.quality.agreement import spearman  # noqa: E402

log = logging.getLogger("bench_train")


def _batches(split, tok, n_batches: int, batch_size: int, seed: int, with_priors: bool):
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(split), size=n_batches * batch_size, replace=False)
    sub = type(split)(split.dataset.select(sorted(rows.tolist())), split.label_names, split.source)
    # Prior content does not change the cost; random word scores stand in for the fused prior.
    priors = [rng.random(len(split_words(t))).astype(np.float32) for t in sub.dataset["text"]] if with_priors else None
    ds = EncodedDataset(sub, tok, max_length=128, priors=priors)
    items = [ds[i] for i in range(len(ds))]
    return [collate(items[i * batch_size : (i + 1) * batch_size], tok.pad_token_id) for i in range(n_batches)]


def _default_length_buckets() -> int:
    import inspect

    return int(inspect.signature(EGModule.__init__).parameters["length_buckets"].default)


def _strip_priors(batch):
    out = dict(batch)
    out["has_prior"] = torch.zeros_like(batch["has_prior"])
    return out


def _step(module, opt, batch, precision: str = "fp32") -> float:
    t0 = time.perf_counter()
    with autocast(precision):  # Lightning's bf16-mixed: the forward (and its graph) under autocast
        out = module.compute_losses(batch)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    return time.perf_counter() - t0


def profile_aligned_step(module, batch, precision: str = "fp32", repeats: int = 2) -> dict[str, float]:
    """Where an aligned step's time goes (medians over ``repeats``): the CE forward, the IG's
    forward over the S interpolated copies, its first-order ``autograd.grad`` (with graph), and
    the final backward through CE + alignment (which includes the double backward)."""
    import torch.nn.functional as F

    from eg_train.foundation.attribution.integrated_gradients import _select_output
    from eg_train.foundation.encoding import length_groups

    parts: dict[str, list[float]] = {"ce_forward": [], "ig_forward": [], "ig_grad_with_graph": [], "backward": []}
    rows = torch.nonzero(batch["has_prior"]).flatten()
    sub = module._ig_rows(batch, rows)
    alphas, weights = module.ig_rule
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        with autocast(precision):
            t = time.perf_counter()
            logits = module(batch)
            ce = F.cross_entropy(logits, batch["labels"])
            parts["ce_forward"].append(time.perf_counter() - t)
            t_fwd = t_grad = 0.0
            total = ce
            for grp, width in length_groups(sub["attention_mask"], module.ig.length_buckets):
                ids, am = sub["input_ids"][grp, :width], sub["attention_mask"][grp, :width]
                emb = module.model.get_input_embeddings()
                x, xb = emb(ids), emb(sub["baseline_ids"][grp, :width])
                s, b = len(alphas), len(grp)
                a = torch.as_tensor(alphas, dtype=x.dtype)
                path = (xb.unsqueeze(0) + a.view(s, 1, 1, 1) * (x - xb).unsqueeze(0)).flatten(0, 1)
                t = time.perf_counter()
                out = module.model(inputs_embeds=path, attention_mask=am.repeat(s, 1)).logits
                f = _select_output(out, sub["labels"][grp].repeat(s), module.ig.output).view(s, b)
                t_fwd += time.perf_counter() - t
                t = time.perf_counter()
                (g,) = torch.autograd.grad((f * torch.as_tensor(weights, dtype=f.dtype)[:, None]).sum(), path, create_graph=True)
                t_grad += time.perf_counter() - t
                total = total + ((x - xb) * g.view(s, b, *g.shape[1:]).sum(0)).sum(-1).pow(2).mean()
            parts["ig_forward"].append(t_fwd)
            parts["ig_grad_with_graph"].append(t_grad)
        t = time.perf_counter()
        total.backward()
        parts["backward"].append(time.perf_counter() - t)
    module.zero_grad(set_to_none=True)
    return {k: statistics.median(v) for k, v in parts.items()}


def fidelity(module: EGModule, batch, captum_steps: int = 50, extra_rules: dict | None = None, group: int = 16,
             precision: str = "fp32") -> dict[str, float]:
    """Mean per-example word-level Spearman of training-time IG vs captum IG (``captum_steps``).

    ``precision`` bf16 computes the training-time IG under bf16 autocast; the reference is fp32.

    Examples are processed in length-sorted groups trimmed to their longest member (the
    reference's cost and memory grow with ``captum_steps`` times the padded length).
    """
    from captum.attr import IntegratedGradients

    model = module.model.eval()
    emb = model.get_input_embeddings()

    def forward(e, am, tt):
        return model(inputs_embeds=e, attention_mask=am, token_type_ids=tt).logits

    rules = {"training_rule": module.ig_rule, **(extra_rules or {})}
    rhos: dict[str, list[float]] = {name: [] for name in rules}
    order = torch.argsort(batch["attention_mask"].sum(-1))
    for rows in torch.split(order, group):
        sub = module._ig_rows(batch, rows)
        width = int(sub["attention_mask"].sum(-1).max())
        for k in ("input_ids", "attention_mask", "baseline_ids", "token_type_ids", "word_ids"):
            if k in sub:
                sub[k] = sub[k][:, :width]
        n_w = batch["word_mask"].shape[1]
        n_words = sub["word_mask"].sum(-1).tolist()
        ref = IntegratedGradients(forward).attribute(
            emb(sub["input_ids"]).detach(),
            baselines=emb(sub["baseline_ids"]).detach(),
            target=sub["labels"],
            additional_forward_args=(sub["attention_mask"], sub.get("token_type_ids")),
            n_steps=captum_steps,
            method="gausslegendre",
            internal_batch_size=len(rows) * 10,
        ).sum(-1)
        ref_w = word_attributions(ref, sub["word_ids"], n_w).detach().numpy()
        for name, rule in rules.items():
            with autocast(precision):
                attr = integrated_gradients(
                    model, sub["input_ids"], sub["attention_mask"], sub["labels"], sub["baseline_ids"],
                    sub.get("token_type_ids"), module.ig, create_graph=False, rule=rule,
                )
            ours = word_attributions(attr, sub["word_ids"], n_w).detach().numpy()
            rhos[name] += [spearman(ours[i, : int(n)], ref_w[i, : int(n)]) for i, n in enumerate(n_words)]
    model.train()
    return {name: float(np.nanmean(v)) for name, v in rhos.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON output path (a .md table is written beside it)")
    ap.add_argument("--quick", action="store_true", help="fewer timed steps and fidelity examples (< 3 min)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--timed-steps", type=int, default=None, help="timed steps per setting (default 3 quick, 8 full)")
    ap.add_argument("--fidelity-examples", type=int, default=None, help="default 32 quick, 64 full")
    ap.add_argument("--ig-steps", type=int, default=None, help="override the default IG steps")
    ap.add_argument("--ig-method", default=None, help="override the default IG quadrature")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps timings stable on a shared CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--align-fractions", type=float, nargs="*", default=[0.5],
                    help="also time CE + align on this share of each batch's rows (model.align_fraction)")
    ap.add_argument("--length-buckets", type=int, nargs="*", default=[4, 8],
                    help="model.length_buckets values to time (the classifier forward in length-sorted groups)")
    ap.add_argument("--ig-length-buckets", type=int, nargs="*", default=[4, 8],
                    help="ig.length_buckets values to time with each --length-buckets value")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: every step under bf16 autocast (Lightning's bf16-mixed); the fidelity reference stays fp32")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    timed = args.timed_steps or (3 if args.quick else 8)
    n_fid = args.fidelity_examples or (32 if args.quick else 64)

    defaults = IGConfig()
    ig = IGConfig(steps=args.ig_steps or defaults.steps, method=args.ig_method or defaults.method)
    train = load_split(DataSpec(preset="banking77"), "train")
    test = load_split(DataSpec(preset="banking77"), "test")
    module = EGModule("all-minilm-l6-v2", train.label_names, beta=1.0, ig=ig, lr=5e-5)
    tok = module.tokenizer
    batches = _batches(train, tok, timed + 1, args.batch_size, args.seed, with_priors=True)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=5e-5)

    t0 = time.perf_counter()
    module.maybe_calibrate(batches[0], step=0)
    calib_s = time.perf_counter() - t0 if ig.needs_calibration else 0.0
    log.info("IG rule: alphas %s weights %s", np.round(module.ig_rule[0], 3), np.round(module.ig_rule[1], 3))

    # Every setting is (name, with priors, forward length_buckets, ig.length_buckets, align_fraction);
    # ratios are against the first (CE with one padded forward, the reference cost).
    settings = [("CE only, one padded forward", False, 1, ig.length_buckets, 1.0)]
    settings += [(f"CE only, `length_buckets` {n}", False, n, ig.length_buckets, 1.0) for n in args.length_buckets]
    settings += [(f"CE + align, padded CE forward, `ig.length_buckets` {ig.length_buckets}", True, 1, ig.length_buckets, 1.0)]
    settings += [(f"CE + align, `length_buckets` {n}, `ig.length_buckets` {m}", True, n, m, 1.0)
                 for n in args.length_buckets for m in args.ig_length_buckets]
    settings += [(f"CE + align on {f:g} of the rows (`model.align_fraction`), padded CE forward", True, 1,
                  ig.length_buckets, f) for f in args.align_fractions]
    times: dict[str, list[float]] = {name: [] for name, *_ in settings}
    for i, batch in enumerate(batches):  # interleaved; batch 0 is warm-up for all
        for name, priors, n, m, f in settings:
            module.options.length_buckets, module.ig.length_buckets, module.options.align_fraction = n, m, f
            t = _step(module, opt, batch if priors else _strip_priors(batch), args.precision)
            if i > 0:
                times[name].append(t)
        log.info("batch %d (%s tokens): %s", i, tuple(batch["input_ids"].shape),
                 {name: round(t[-1], 2) for name, t in times.items() if t})
    module.options.length_buckets, module.ig.length_buckets, module.options.align_fraction = 1, ig.length_buckets, 1.0

    train_peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fid_batch = _batches(test, tok, 1, n_fid, args.seed + 1, with_priors=False)[0]
    plain = IGConfig(steps=ig.steps, method="gausslegendre")
    fid = fidelity(module, fid_batch, 50, {f"gausslegendre_{ig.steps}": plain.rule()}, precision=args.precision)
    module.hparams["length_buckets"], module.ig.length_buckets = _default_length_buckets(), ig.length_buckets
    profile = profile_aligned_step(module, batches[1], args.precision)
    module.hparams["length_buckets"] = 1

    ref = settings[0][0]
    medians = {name: statistics.median(t) for name, t in times.items()}
    align_ref = next(name for name, priors, n, *_ in settings if priors)
    amortised = calib_s / ig.recalibrate_every if ig.needs_calibration else 0.0
    # Like for like (issue 22 §2): the aligned step over the CE step with the same classifier
    # forward (the same length_buckets), at the defaults (model.length_buckets, ig.length_buckets).
    ce_of = {n: name for name, priors, n, m, f in settings if not priors and name != ref}
    ce_of.setdefault(1, ref)
    default_n = _default_length_buckets()
    like = {name: medians[name] / medians[ce_of[n]] for name, priors, n, m, f in settings if priors and n in ce_of}
    default_align = next((name for name, priors, n, m, f in settings
                          if priors and n == default_n and m == ig.length_buckets and f == 1.0), align_ref)
    result = {
        "model": "all-minilm-l6-v2",
        "dataset": "banking77",
        "batch_size": args.batch_size,
        "ig_method": ig.method,
        "ig_steps": ig.steps,
        "ig_alphas": [round(float(a), 4) for a in module.ig_rule[0]],
        "timed_steps_per_setting": timed,
        "settings": [{"name": name, "with_priors": priors, "length_buckets": n, "ig_length_buckets": m,
                      "align_fraction": f, "step_s_median": medians[name], "over_reference_ce": medians[name] / medians[ref],
                      "step_s_all": times[name]} for name, priors, n, m, f in settings],
        "align_step_over_ce_step": like[default_align],
        "align_step_over_ce_step_setting": default_align,
        "align_step_over_ce_step_with_amortised_calibration_like_for_like":
            (medians[default_align] + amortised) / medians[ce_of[next(n for name, _, n, *_ in settings if name == default_align)]],
        "aligned_step_profile_s": profile,
        "precision": args.precision,
        "calibration_s": calib_s,
        "recalibrate_every": ig.recalibrate_every,
        "align_step_over_ce_step_with_amortised_calibration": (medians[align_ref] + amortised) / medians[ref],
        "fidelity_examples": n_fid,
        "captum_steps": 50,
        "spearman_vs_captum_ig": fid["training_rule"],
        f"spearman_vs_captum_ig_plain_gausslegendre_{ig.steps}": fid[f"gausslegendre_{ig.steps}"],
        "peak_rss_mb": train_peak_rss,
        "peak_rss_mb_including_fidelity_reference": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "quick": args.quick,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = [
        f"| setting | median s/step | ratio vs {ref} | ratio vs CE with the same forward | Spearman vs captum IG-50 |",
        "|---|---|---|---|---|",
        *(f"| {name} | {medians[name]:.3f} | {medians[name] / medians[ref]:.2f} | "
          f"{f'{like[name]:.2f}' if name in like else ''} | "
          f"{f'{fid_rule:.3f}' if priors else ''} |" for name, priors, *_ in settings
          for fid_rule in [fid["training_rule"]]),
        f"| (plain gausslegendre, {ig.steps} steps, fidelity only) | | | | {fid[f'gausslegendre_{ig.steps}']:.3f} |",
        "",
        f"**Aligned step over CE step, like for like** (`{default_align}` over the CE step with the same "
        f"forward): **{like[default_align]:.2f}x**; with the calibration amortised "
        f"{result['align_step_over_ce_step_with_amortised_calibration_like_for_like']:.2f}x. Precision: {args.precision}.",
        "",
        "Aligned step, where the time goes (s, default grouping): " + ", ".join(f"{k} {v:.3f}" for k, v in profile.items()),
        "",
        f"MiniLM-L6, Banking77, batch {args.batch_size}, {timed} timed steps per setting (interleaved, the same "
        f"batches), {args.threads} torch thread(s); IG {ig.method}, {ig.steps} steps (the same rule in every aligned "
        f"row: grouping and align_fraction change the cost, not the attribution of a row); calibration "
        f"{calib_s:.2f}s every {ig.recalibrate_every} steps; fidelity on {n_fid} test examples; peak RSS of the "
        f"timed training steps {result['peak_rss_mb']:.0f} MB.",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
