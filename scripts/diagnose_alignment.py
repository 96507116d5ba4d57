"""Why does explanation-guided training learn slower than CE? Gradient norms of the two losses.

For real training batches with their fused priors, measures ``||grad CE||`` and
``||grad beta * align||`` over all trainable weights, at the pretrained initialisation (random
classification head) and at a CE-trained checkpoint, plus the prior agreement between the
methods (mean per-example Spearman between LIME, CAP and IG word scores). Medians over batches.

    python scripts/diagnose_alignment.py --cache outputs/banking77_5shot/prior_cache \
        --ce-model outputs/banking77_5shot/runs/ce-seed0-<key>/model --out results/banking77_5shot_diagnostics.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eg_train.foundation.data import DataSpec  # noqa: E402
from eg_train.training.datamodule import EGDataModule, PriorSpec  # noqa: E402
from eg_train.training.module import EGModule  # noqa: E402


def grad_norms(module: EGModule, batches: list[dict]) -> dict[str, float]:
    params = [p for p in module.parameters() if p.requires_grad]

    def norm(grads) -> float:
        return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))

    rows = []
    module.maybe_calibrate(batches[0], 0)
    for batch in batches:
        out = module.compute_losses(batch)
        g_ce = torch.autograd.grad(out.ce, params, retain_graph=True, allow_unused=True)
        g_align = torch.autograd.grad(module.hparams.beta * out.align, params, allow_unused=True)
        rows.append({"ce": float(out.ce.detach()), "align": float(out.align.detach()), "grad_ce": norm(g_ce), "grad_align": norm(g_align)})
    res = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    res["grad_ratio_align_over_ce"] = float(np.median([r["grad_align"] / r["grad_ce"] for r in rows]))
    return res


def prior_agreement(cache_dir: str, split, methods: list[str]) -> dict[str, float]:
    from scipy.stats import spearmanr

    from priors.cache import PriorCache

    cache = PriorCache(cache_dir)
    scores = {m: cache.scores_for(split, m, on_missing="skip") for m in methods}
    out = {}
    for a, b in itertools.combinations(methods, 2):
        rhos = [spearmanr(x, y).statistic for x, y in zip(scores[a], scores[b])
                if x is not None and y is not None and len(x) > 2 and np.std(x) > 0 and np.std(y) > 0]
        out[f"{a}~{b}"] = float(np.mean(rhos))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", required=True, help="prior cache folder")
    ap.add_argument("--ce-model", required=True, help="CE-trained checkpoint (model/ folder)")
    ap.add_argument("--out", required=True, help="JSON output (a .md table is written beside it)")
    ap.add_argument("--preset", default="banking77")
    ap.add_argument("--k-shot", type=int, default=5)
    ap.add_argument("--sample-seed", type=int, default=0)
    ap.add_argument("--methods", default="lime,cap,ig")
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    methods = args.methods.split(",")
    dm = EGDataModule.from_spec(DataSpec(preset=args.preset), k_shot=args.k_shot, seed=args.sample_seed, batch_size=16,
                      prior=PriorSpec(cache_dir=args.cache, methods=methods, fusion="mean"))
    dm.setup("fit")
    batches = list(itertools.islice(iter(dm.train_dataloader()), args.batches))
    res: dict = {"config": vars(args), "grad_norms": {}}
    for name, path in [("pretrained_init", "all-minilm-l6-v2"), ("ce_trained", args.ce_model)]:
        module = EGModule(model_name=path, label_names=dm.label_names, beta=args.beta)
        res["grad_norms"][name] = grad_norms(module, batches)
    res["prior_spearman"] = prior_agreement(args.cache, dm.splits["train"], methods)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    lines = [f"# Alignment diagnostics ({args.preset} {args.k_shot}-shot, beta {args.beta}, fused {'+'.join(methods)})", "",
             "| model | CE | align | ‖∇CE‖ | ‖∇β·align‖ | ratio |", "|---|---|---|---|---|---|"]
    for name, g in res["grad_norms"].items():
        lines.append(f"| {name} | {g['ce']:.3f} | {g['align']:.3f} | {g['grad_ce']:.3f} | {g['grad_align']:.3f} | {g['grad_ratio_align_over_ce']:.2f} |")
    lines += ["", "Mean per-example Spearman between priors: "
              + ", ".join(f"{k} {v:.2f}" for k, v in res["prior_spearman"].items()), ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return res


if __name__ == "__main__":
    main()
