"""Competence of the scoring LLM under the prompt a prior was scored with (docs/design.md#competence).

A perturbation prior can only carry class evidence the LLM has: if the LLM cannot tell the gold
label from the other labels on the *unmasked* text, the log-probabilities it gives masked texts
track fluency rather than evidence. Measured as the accuracy of the argmax over the label space
and the rank of the gold label (1 = first), on the unmasked texts, with exactly the prompt (and
calibration, demonstrations) of the prior's scorer.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def label_logprob_matrix(scorer, texts: Sequence[str]) -> np.ndarray:
    """``[n, K]`` log-probabilities of every label for every text under ``scorer``'s prompt.

    Uses ``scorer.label_logprobs(texts)`` (the shared-cache implementation); a scorer without
    it scores every (text, label) row through ``scorer.log_prob`` without renormalisation,
    which is exact but costs ``K`` rows per text.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, len(scorer.label_names)))
    if hasattr(scorer, "label_logprobs"):
        out = scorer.label_logprobs(texts)
        out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
        return out.astype(np.float64)
    K = len(scorer.label_names)
    previous = getattr(scorer, "renormalise", False)
    scorer.renormalise = False  # the raw per-label scores; renormalising does not move the argmax
    try:
        flat = scorer.log_prob([t for t in texts for _ in range(K)], [y for _ in texts for y in range(K)])
    finally:
        scorer.renormalise = previous
    return np.asarray(flat, dtype=np.float64).reshape(len(texts), K)


def gold_ranks(logprobs: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """Rank of the gold label per row: 1 + the number of labels scored strictly higher."""
    lp = np.asarray(logprobs, dtype=np.float64)
    g = np.asarray(gold, dtype=np.int64)
    gold_lp = lp[np.arange(len(g)), g]
    return 1 + (lp > gold_lp[:, None]).sum(axis=1)


def competence(logprobs: np.ndarray, gold: Sequence[int]) -> dict[str, float]:
    """``llm_accuracy`` (argmax = gold; ties count as correct only if gold is first among them),
    ``median_gold_rank``, ``mean_gold_rank``, ``mean_log_p_gold`` (renormalised over the labels),
    ``chance`` (1/K) and ``n``."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.ndim != 2 or len(lp) != len(gold):
        raise ValueError(f"logprobs must be [n, K] with n = {len(gold)}, got shape {lp.shape}")
    if not np.isfinite(lp).all():
        raise ValueError("label log-probabilities are not finite")
    n, K = lp.shape
    if n == 0:
        return {"llm_accuracy": float("nan"), "median_gold_rank": float("nan"), "mean_gold_rank": float("nan"),
                "mean_log_p_gold": float("nan"), "chance": 1.0 / max(K, 1), "n": 0}
    g = np.asarray(gold, dtype=np.int64)
    ranks = gold_ranks(lp, g)
    norm = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
    return {
        "llm_accuracy": float((lp.argmax(axis=1) == g).mean()),
        "median_gold_rank": float(np.median(ranks)),
        "mean_gold_rank": float(ranks.mean()),
        "mean_log_p_gold": float(norm[np.arange(n), g].mean()),
        "chance": 1.0 / K,
        "n": int(n),
    }


__all__ = ["competence", "gold_ranks", "label_logprob_matrix"]
