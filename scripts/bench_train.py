"""Benchmark: cost of the IG alignment step vs a CE-only step, and fidelity of the training-time IG.

    python scripts/bench_train.py [--quick] --out FILE.json

MiniLM-L6 (embedded ``all-minilm-l6-v2``), Banking77, batch 32. One optimisation step (forward,
backward, AdamW step) is timed for CE only (``prior: none`` path), for CE + alignment at the
default IG settings, with the classifier forward and the IG path in length-sorted groups
(``--length-buckets``, ``--ig-length-buckets``) and for CE + alignment on a share of the rows
(``--align-fractions``), with the alignment gradient on the top blocks only (``--align-top-layers``),
alone and combined, and for the default aligned step as composed before the exact means of issue 23, interleaved on the *same* batches so that machine load affects both alike;
medians are reported. The warped rule's calibration (run once per ``recalibrate_every`` steps)
is timed separately and reported amortised. Fidelity: per example, the Spearman correlation at
word level between the training-time IG (the rule used in training) and captum
``IntegratedGradients`` with 50 Gauss-Legendre steps, averaged over held-out test examples; for
the approximations that leave the IG unchanged (``align_fraction``, ``align_top_layers``), the cosine
of their alignment gradient with the exact one.
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


def _before_exact_means_loss(module, batch):
    """The loss (CE, or CE + alignment with priors) as the step composed it before issue 23's exact means (the same value and
    gradients, tests/eg_train/training/test_module.py): the model's own word-embedding lookup in
    each CE length group (the CE-only step shares one lookup now too), the IG's own lookups of inputs and baselines in each IG group, and
    equal-count IG groups instead of the min-padding ones. A timing reference only."""
    import torch.nn.functional as F

    from eg_train.foundation.attribution.integrated_gradients import _ig_dense
    from eg_train.foundation.encoding import length_groups, ungroup

    groups = length_groups(batch["attention_mask"], module.options.length_buckets)
    tt = batch.get("token_type_ids")
    logits = ungroup([module.model(input_ids=batch["input_ids"][r, :w], attention_mask=batch["attention_mask"][r, :w],
                                   token_type_ids=None if tt is None else tt[r, :w]).logits for r, w in groups], groups)
    ce = F.cross_entropy(logits, batch["labels"])
    if not batch["has_prior"].any():
        return ce
    sub = module._ig_rows(batch, module.aligned_rows(torch.nonzero(batch["has_prior"]).flatten()))
    alphas, weights = module.ig_rule
    emb = module.model.get_input_embeddings()
    groups = length_groups(sub["attention_mask"], module.ig.length_buckets)
    types = sub.get("token_type_ids")
    attrs = []
    with module._attribution_mode(dropout=module.options.ig_dropout):
        for r, w in groups:
            attr = _ig_dense(module.model, emb(sub["input_ids"][r, :w]), emb(sub["baseline_ids"][r, :w]),
                             sub["attention_mask"][r, :w], sub["labels"][r], None if types is None else types[r, :w],
                             alphas, weights, module.ig, True)
            attrs.append(F.pad(attr, (0, sub["input_ids"].shape[1] - w)))
    words = word_attributions(ungroup(attrs, groups), sub["word_ids"], sub["word_mask"].shape[1])
    return ce + module.current_beta * module.alignment_loss(words, sub["prior"], sub["word_mask"])


def _step(module, opt, batch, precision: str = "fp32", before_exact_means: bool = False) -> float:
    t0 = time.perf_counter()
    with autocast(precision):  # Lightning's bf16-mixed: the forward (and its graph) under autocast
        loss = _before_exact_means_loss(module, batch) if before_exact_means else module.compute_losses(batch).loss
    opt.zero_grad(set_to_none=True)
    module.backward(loss)  # EGModule's hook (align_top_layers restricts it to the weights)
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
    emb = module.model.get_input_embeddings()
    b_all = len(batch["labels"])
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        with autocast(precision):
            t = time.perf_counter()
            both = emb(torch.cat([batch["input_ids"], sub["baseline_ids"]]))  # the step's one lookup
            logits = module(batch, embeds=both[:b_all])
            ce = F.cross_entropy(logits, batch["labels"])
            parts["ce_forward"].append(time.perf_counter() - t)
            x_rows, x_base_rows = both[:b_all][rows], both[b_all:]
            t_fwd = t_grad = 0.0
            total = ce
            module.model.eval()  # the IG runs with dropout off, as in training
            for grp, width in length_groups(sub["attention_mask"], module.ig.length_buckets, min_padding=True):
                am = sub["attention_mask"][grp, :width]
                x, xb = x_rows[grp, :width], x_base_rows[grp, :width]
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
            module.model.train()
            parts["ig_forward"].append(t_fwd)
            parts["ig_grad_with_graph"].append(t_grad)
        t = time.perf_counter()
        total.backward()
        parts["backward"].append(time.perf_counter() - t)
    module.zero_grad(set_to_none=True)
    return {k: statistics.median(v) for k, v in parts.items()}


def alignment_gradient_cosine(module: EGModule, batch, fractions: list[float], tops: list[int],
                              draws: int = 3) -> dict[str, float]:
    """The cosine (float64) of an approximate alignment gradient (all trainable weights) with the
    exact one on all the batch's rows: per ``align_fraction`` (mean over ``draws`` random row
    draws; the IG of a drawn row is unchanged, the step follows fewer rows' gradients), per
    ``align_top_layers`` (the same IG, the gradient of the lower weights dropped) and per pair."""
    params = [p for p in module.parameters() if p.requires_grad]
    saved = module.options.align_fraction, module.options.align_top_layers
    module.options.align_fraction = 1.0

    def grad(b, top) -> torch.Tensor:
        module.options.align_top_layers = top
        gs = torch.autograd.grad(module.compute_losses(b).align, params, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).double().flatten() for g, p in zip(gs, params)])

    def cos(a, b) -> float:
        return float((a @ b) / (a.norm() * b.norm()))

    full = grad(batch, None)
    rows = torch.nonzero(batch["has_prior"]).flatten()
    gen = torch.Generator().manual_seed(1234)
    out = {}
    for f, top in [(f, None) for f in fractions] + [(1.0, t) for t in tops] + [(f, t) for f in fractions for t in tops]:
        values = []
        for _ in range(draws if f < 1.0 else 1):
            pick = rows[torch.randperm(len(rows), generator=gen)[: max(1, round(f * len(rows)))]]
            drawn = dict(batch)
            drawn["has_prior"] = torch.zeros_like(batch["has_prior"])
            drawn["has_prior"][pick] = True
            values.append(cos(grad(drawn, top), full))
        out[_approx_name(f, top)] = statistics.mean(values)
    module.options.align_fraction, module.options.align_top_layers = saved
    return out


def _approx_name(fraction: float, top: int | None) -> str:
    parts = ([f"align_fraction {fraction:g}"] if fraction < 1.0 else []) + ([f"align_top_layers {top}"] if top is not None else [])
    return ", ".join(parts)


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
    ap.add_argument("--align-top-layers", type=int, nargs="*", default=[3, 1],
                    help="also time CE + align with the alignment gradient on the top N blocks only "
                         "(model.align_top_layers), alone and with each --align-fractions value")
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
    # Fused, as EGModule.configure_optimizers builds it for training.
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=5e-5, fused=True)

    t0 = time.perf_counter()
    module.maybe_calibrate(batches[0], step=0)
    calib_s = time.perf_counter() - t0 if ig.needs_calibration else 0.0
    log.info("IG rule: alphas %s weights %s", np.round(module.ig_rule[0], 3), np.round(module.ig_rule[1], 3))

    # The IG's fidelity where the rule was calibrated: the loaded model (a fresh head).
    fid_batch = _batches(test, tok, 1, n_fid, args.seed + 1, with_priors=False)[0]
    plain = IGConfig(steps=ig.steps, method="gausslegendre")
    fid = fidelity(module, fid_batch, 50, {f"gausslegendre_{ig.steps}": plain.rule()}, precision=args.precision)

    # The approximations' gradient fidelity at the start (the loaded MiniLM, a fresh head) and
    # after the timed steps (which train the model towards the random priors).
    grad_cos_initial = alignment_gradient_cosine(module, batches[1], args.align_fractions, args.align_top_layers) \
        if args.align_fractions or args.align_top_layers else {}

    # Every setting is (name, with priors, forward length_buckets, ig.length_buckets, align_fraction);
    # ratios are against the first (CE with one padded forward, the reference cost).
    settings = [("CE only, one padded forward", False, 1, ig.length_buckets, 1.0)]
    settings += [(f"CE only, `length_buckets` {n}", False, n, ig.length_buckets, 1.0) for n in args.length_buckets]
    settings += [(f"CE + align, padded CE forward, `ig.length_buckets` {ig.length_buckets}", True, 1, ig.length_buckets, 1.0)]
    settings += [(f"CE + align, `length_buckets` {n}, `ig.length_buckets` {m}", True, n, m, 1.0)
                 for n in args.length_buckets for m in args.ig_length_buckets]
    # The default aligned step as composed before issue 23's exact means, timed beside it.
    before = f"CE + align, `length_buckets` {_default_length_buckets()}, `ig.length_buckets` {ig.length_buckets}, " \
             "before the exact means (separate embedding lookups, equal-count IG groups)"
    before_ce = f"CE only, `length_buckets` {_default_length_buckets()}, before the shared embedding lookup"
    settings += [(before, True, _default_length_buckets(), ig.length_buckets, 1.0),
                 (before_ce, False, _default_length_buckets(), ig.length_buckets, 1.0)]
    n_def = _default_length_buckets()
    settings += [(f"CE + align on {f:g} of the rows (`model.align_fraction`), `length_buckets` {n_def}", True, n_def,
                  ig.length_buckets, f) for f in args.align_fractions]
    # Approximations by align_top_layers (alone and with each align_fraction): name -> top layers.
    top_of = {}
    for t in args.align_top_layers:
        for f in [1.0, *args.align_fractions]:
            name = f"CE + align, {_approx_name(f, t)}, `length_buckets` {n_def}"
            settings.append((name, True, n_def, ig.length_buckets, f))
            top_of[name] = t
    times: dict[str, list[float]] = {name: [] for name, *_ in settings}
    for i, batch in enumerate(batches):  # interleaved; batch 0 is warm-up for all
        for name, priors, n, m, f in settings:
            module.options.length_buckets, module.ig.length_buckets, module.options.align_fraction = n, m, f
            module.options.align_top_layers = top_of.get(name)
            t = _step(module, opt, batch if priors else _strip_priors(batch), args.precision, name in (before, before_ce))
            if i > 0:
                times[name].append(t)
        log.info("batch %d (%s tokens): %s", i, tuple(batch["input_ids"].shape),
                 {name: round(t[-1], 2) for name, t in times.items() if t})
    module.options.length_buckets, module.ig.length_buckets, module.options.align_fraction = 1, ig.length_buckets, 1.0
    module.options.align_top_layers = None

    train_peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # After the timed steps (which trained the model towards random priors): the rule calibrated at
    # the start (stale, as training uses it until the next recalibration), then recalibrated.
    fid_stale = fidelity(module, fid_batch, 50, precision=args.precision)["training_rule"]
    module.maybe_calibrate(batches[0], step=ig.recalibrate_every)
    fid_recalibrated = fidelity(module, fid_batch, 50, precision=args.precision)["training_rule"]
    grad_cos_trained = alignment_gradient_cosine(module, batches[1], args.align_fractions, args.align_top_layers) \
        if args.align_fractions or args.align_top_layers else {}
    module.options.length_buckets, module.ig.length_buckets = _default_length_buckets(), ig.length_buckets
    profile = profile_aligned_step(module, batches[1], args.precision)
    module.options.length_buckets = 1

    ref = settings[0][0]
    medians = {name: statistics.median(t) for name, t in times.items()}
    align_ref = next(name for name, priors, n, *_ in settings if priors)
    amortised = calib_s / ig.recalibrate_every if ig.needs_calibration else 0.0
    # Like for like (issue 22 §2): the aligned step over the CE step with the same classifier
    # forward (the same length_buckets), at the defaults (model.length_buckets, ig.length_buckets).
    ce_of = {n: name for name, priors, n, m, f in settings if not priors and name not in (ref, before_ce)}
    ce_of.setdefault(1, ref)
    default_n = _default_length_buckets()
    like = {name: medians[name] / medians[ce_of[n]] for name, priors, n, m, f in settings if priors and n in ce_of}
    like[before] = medians[before] / medians[before_ce]  # the step before the exact means, on both sides
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
                      "align_fraction": f, "align_top_layers": top_of.get(name), "step_s_median": medians[name], "over_reference_ce": medians[name] / medians[ref],
                      "step_s_all": times[name]} for name, priors, n, m, f in settings],
        "align_step_over_ce_step": like[default_align],
        "align_step_over_ce_step_setting": default_align,
        "align_step_over_ce_step_with_amortised_calibration_like_for_like":
            (medians[default_align] + amortised) / medians[ce_of[next(n for name, _, n, *_ in settings if name == default_align)]],
        "align_step_before_exact_means_over_ce_step": medians[before] / medians[before_ce],
        "exact_means_speedup_of_the_ce_step": medians[before_ce] / medians[ce_of[_default_length_buckets()]],
        "exact_means_speedup_of_the_aligned_step": medians[before] / medians[default_align],
        "aligned_step_profile_s": profile,
        "precision": args.precision,
        "calibration_s": calib_s,
        "recalibrate_every": ig.recalibrate_every,
        "align_step_over_ce_step_with_amortised_calibration": (medians[align_ref] + amortised) / medians[ref],
        "approximation_gradient_cosine_vs_exact": {"initial_model": grad_cos_initial,
                                                    "after_the_timed_steps": grad_cos_trained},
        "fidelity_examples": n_fid,
        "captum_steps": 50,
        "spearman_vs_captum_ig": fid["training_rule"],
        f"spearman_vs_captum_ig_plain_gausslegendre_{ig.steps}": fid[f"gausslegendre_{ig.steps}"],
        "spearman_vs_captum_ig_after_the_timed_steps_stale_rule": fid_stale,
        "spearman_vs_captum_ig_after_the_timed_steps_recalibrated": fid_recalibrated,
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
        f"{result['align_step_over_ce_step_with_amortised_calibration_like_for_like']:.2f}x. Precision: {args.precision}. "
        f"Before the exact means (shared embedding lookup, min-padding IG groups), timed beside it: "
        f"{medians[before] / medians[before_ce]:.2f}x over the CE step before them (the exact means make the aligned step "
        f"{medians[before] / medians[default_align]:.2f}x and the CE step {medians[before_ce] / medians[ce_of[_default_length_buckets()]]:.2f}x faster).",
        "",
        *(["Approximations, cosine of their alignment gradient (all weights, one training batch) with the exact one "
           "(`align_fraction`: mean of 3 row draws), initial model / after the timed steps: "
           + ", ".join(f"{k}: {v:.3f} / {grad_cos_trained[k]:.3f}" for k, v in grad_cos_initial.items()), ""]
          if grad_cos_initial else []),
        f"IG Spearman vs captum IG-50 (the table: at the calibration, on the loaded model): after the timed steps, which "
        f"train the model towards random priors, {fid_stale:.3f} with the rule calibrated at the start and "
        f"{fid_recalibrated:.3f} recalibrated (training recalibrates every {ig.recalibrate_every} steps).",
        "",
        "Aligned step, where the time goes (s, default grouping): " + ", ".join(f"{k} {v:.3f}" for k, v in profile.items()),
        "",
        f"MiniLM-L6, Banking77, batch {args.batch_size}, {timed} timed steps per setting (interleaved, the same "
        f"batches), {args.threads} torch thread(s); IG {ig.method}, {ig.steps} steps (the same rule in every aligned "
        f"row: grouping, align_fraction and align_top_layers change the cost, not the attribution of a row); calibration "
        f"{calib_s:.2f}s every {ig.recalibrate_every} steps; fidelity on {n_fid} test examples; peak RSS of the fidelity reference and "
        f"timed training steps {result['peak_rss_mb']:.0f} MB.",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
