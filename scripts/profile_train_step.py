"""Profile: where a CE step and an aligned step (CE + IG alignment, double backward) spend their time.

    python scripts/profile_train_step.py [--batches 2] --out FILE.json

MiniLM-L6 (embedded ``all-minilm-l6-v2``), Banking77, batch 32, the default options
(``model.length_buckets`` 4, 3-node warped IG in 4 groups), 1 torch thread. Each step (forward,
backward, AdamW step) runs under ``torch.profiler`` after a warm-up, alternating CE and aligned on
the same batches; the self CPU time of every aten operator is summed into a few kinds (matrix
products, embedding backward, element-wise, ...), medians over the profiled batches. Writes
``FILE.json`` and a markdown table ``FILE.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import _batches, _strip_priors  # noqa: E402
from eg_train.foundation.data import DataSpec, load_split  # noqa: E402
from eg_train.training.module import EGModule  # noqa: E402

# aten operator -> kind; the first matching prefix wins, anything else is "other".
KINDS = (
    ("matrix products (mm, addmm, bmm)", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("embedding backward (its dense fill is under fill / zeros)", ("aten::embedding_dense_backward", "aten::embedding_backward")),
    ("optimiser (fused AdamW)", ("aten::_fused_adamw",)),
    ("GELU and its derivatives", ("aten::gelu",)),
    ("softmax and its derivatives", ("aten::_softmax", "aten::softmax", "aten::_softmax_backward_data")),
    ("layer norm and its derivatives", ("aten::native_layer_norm",)),
    ("dropout masks", ("aten::bernoulli",)),
    ("fill / zeros", ("aten::fill_", "aten::zero_")),
    ("element-wise arithmetic (mul, add, sub, div, copy)", ("aten::mul", "aten::add", "aten::sub", "aten::div",
                                                           "aten::copy_", "aten::neg", "aten::where", "aten::pow",
                                                           "aten::tanh", "aten::sum", "aten::masked_fill")),
)


def kind_of(name: str) -> str:
    return next((kind for kind, prefixes in KINDS if name.startswith(prefixes)), "other")


def _profiled_step(module, opt, batch) -> tuple[float, dict[str, float], int]:
    """One optimisation step under the profiler: wall s, self CPU s per kind, aten operator calls."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        out = module.compute_losses(batch)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    per_kind: dict[str, float] = {}
    calls = 0
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::"):
            continue
        calls += ev.count
        kind = kind_of(ev.key)
        per_kind[kind] = per_kind.get(kind, 0.0) + ev.self_cpu_time_total / 1e6
    return sum(per_kind.values()), per_kind, calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON output path (a .md table is written beside it)")
    ap.add_argument("--batches", type=int, default=2, help="profiled batches per step kind (after one warm-up)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train = load_split(DataSpec(preset="banking77"), "train")
    module = EGModule("all-minilm-l6-v2", train.label_names, beta=1.0)
    batches = _batches(train, module.tokenizer, args.batches + 1, args.batch_size, args.seed, with_priors=True)
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=5e-5, fused=True)
    module.maybe_calibrate(batches[0], step=0)
    steps = {"ce": (lambda b: _strip_priors(b)), "aligned": (lambda b: b)}
    seen: dict[str, list[tuple[float, dict[str, float], int]]] = {k: [] for k in steps}
    for i, batch in enumerate(batches):  # batch 0: warm-up
        for name, prepare in steps.items():
            got = _profiled_step(module, opt, prepare(batch))
            if i > 0:
                seen[name].append(got)
    kinds = [k for k, _ in KINDS] + ["other"]
    med = {name: {k: statistics.median(p.get(k, 0.0) for _, p, _ in runs) for k in kinds} for name, runs in seen.items()}
    total = {name: statistics.median(t for t, _, _ in runs) for name, runs in seen.items()}
    calls = {name: statistics.median(c for _, _, c in runs) for name, runs in seen.items()}
    result = {"model": "all-minilm-l6-v2", "dataset": "banking77", "batch_size": args.batch_size,
              "length_buckets": module.options.length_buckets, "ig": {"steps": module.ig.steps, "method": module.ig.method,
                                                                      "length_buckets": module.ig.length_buckets},
              "profiled_batches": args.batches, "torch_threads": 1, "torch": torch.__version__,
              "self_cpu_s": med, "total_self_cpu_s": total, "aten_calls": calls}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = ["| operator kind | CE step, s | aligned step, s | share of the aligned step | aligned / CE |",
          "|---|---|---|---|---|"]
    for k in kinds:
        c, a = med["ce"][k], med["aligned"][k]
        md.append(f"| {k} | {c:.3f} | {a:.3f} | {a / total['aligned']:.0%} | {a / c if c > 0 else float('nan'):.1f}x |")
    md.append(f"| **all aten operators** | {total['ce']:.3f} | {total['aligned']:.3f} | 100% | "
              f"{total['aligned'] / total['ce']:.1f}x |")
    md += ["", f"aten operator calls: CE step {calls['ce']:.0f}, aligned step {calls['aligned']:.0f}. Self CPU time under "
           f"torch.profiler (medians of {args.batches} profiled batches, 1 thread); the profiler's own overhead is included."]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
