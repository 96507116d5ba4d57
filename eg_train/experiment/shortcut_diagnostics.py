"""Why a prior does or does not pull a model off a shortcut: the alignment gradient against CE's.

For a few real training batches of the shortcut data with a variant's fused prior, measures at the
pretrained initialisation (random head) and at the CE-trained model (which has learned the
shortcut): the CE loss and the alignment loss, ``||grad CE||``, ``||grad align||`` (β = 1, over all
trainable weights), their ratio and the cosine between the two gradients (negative: the alignment
pushes against the direction CE wants, e.g. off the artefact CE relies on). Medians over batches.
The same computation as ``scripts/diagnose_alignment.py``, on any :class:`DataSpec`.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch

from eg_train.foundation.data.source import DataSpec


def _gradients(module, batches: list[dict]) -> dict[str, float]:
    params = [p for p in module.parameters() if p.requires_grad]

    def flat(grads) -> torch.Tensor:
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, params)])

    rows = []
    module.maybe_calibrate(batches[0], 0)
    for batch in batches:
        out = module.compute_losses(batch)
        g_ce = flat(torch.autograd.grad(out.ce, params, retain_graph=True, allow_unused=True))
        g_al = flat(torch.autograd.grad(out.align, params, allow_unused=True))
        n_ce, n_al = float(g_ce.norm()), float(g_al.norm())
        rows.append({"ce": float(out.ce.detach()), "align": float(out.align.detach()), "grad_ce": n_ce,
                     "grad_align": n_al, "ratio_align_over_ce": n_al / max(n_ce, 1e-12),
                     "cosine": float(g_ce @ g_al) / max(n_ce * n_al, 1e-12)})
    return {k: float(np.median([r[k] for r in rows])) for k in rows[0]}


def alignment_diagnostics(
    spec: DataSpec,
    k_shot: int,
    sample_seed: int,
    cache_dir: str,
    variants: Sequence[tuple[str, Sequence[str], str]],
    models: dict[str, str],
    batches: int = 4,
    batch_size: int = 16,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{variant: {model state: medians}}`` for ``variants`` = ``(name, prior methods, fusion)`` and
    ``models`` = ``{state name: checkpoint}`` (e.g. the embedded SLM and the CE model)."""
    from eg_train.training.datamodule import EGDataModule, PriorSpec
    from eg_train.training.module import EGModule

    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, methods, fusion in variants:
        torch.manual_seed(0)
        dm = EGDataModule.from_spec(spec, k_shot=k_shot, seed=sample_seed, batch_size=batch_size,
                                    prior=PriorSpec(cache_dir=cache_dir, methods=list(methods), fusion=fusion))
        dm.setup("fit")
        torch.manual_seed(0)
        taken = list(itertools.islice(iter(dm.train_dataloader()), batches))
        out[name] = {}
        for state, path in models.items():
            torch.manual_seed(0)  # the same random head for every variant at the initialisation
            module = EGModule(model_name=path, label_names=dm.label_names, beta=1.0)
            out[name][state] = _gradients(module, taken)
    return out


__all__ = ["alignment_diagnostics"]
