"""Faithfulness of a prior to its own LLM: deletion AOPC against random word orders.

For an example with words ``w_1..w_d``, gold label ``y`` and a word ranking ``r`` (the prior's
scores, descending, ties to the earlier word), the deletion curve removes the top-``k`` words
(``x`` without them, punctuation kept: the same ``x ⊙ m`` the prior was fitted on) and
measures how far the LLM's score falls:

    AOPC(r) = mean_{k ∈ ks(d)} [ f(x) − f(x without r's top-k words) ]
    ks(d)   = the distinct values of max(1, ceil(b · d)) for b in ``bins``

``f`` is the scorer's log-probability of the gold label (with whatever renormalisation,
contrast or calibration the prior's scorer applies); the priors' own regression targets are
monotone in it, and the log scale keeps one confident example from outweighing the rest.
The reference is the same curve for ``n_random`` uniformly random orders per example (seeded
by the example id), and

    deletion_aopc_ratio_vs_random = mean_examples AOPC(prior) / mean_examples AOPC(random)

(> 1: the prior ranks first the words the LLM's score depends on; 1: no better than chance).
Every query of every example goes to the scorer in one batched call. When the random reference
does not lower ``f`` on average (raw ``log p`` of a small LLM often *rises* as words go: shorter
texts are more fluent), the ratio is undefined (NaN) and ``deletion_aopc_gain_vs_random``
(``AOPC(prior) − AOPC(random)``, in nats) is the figure to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from eg_train.foundation.words import Words
from priors.masks import example_rng

# ``score_fn(texts, labels, examples)``: ``examples[i]`` is the index of the example query ``i``
# belongs to (a contrast over the unmasked text's confusable labels needs it).
ScoreFn = Callable[[list[str], list[int], list[int]], np.ndarray]
DEFAULT_BINS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)


def deletion_sizes(d: int, bins: Sequence[float] = DEFAULT_BINS) -> list[int]:
    """The distinct ``k = max(1, ceil(b · d))`` (capped at ``d``), ascending; [] for ``d = 0``."""
    if d <= 0:
        return []
    return sorted({min(d, max(1, math.ceil(b * d - 1e-9))) for b in bins})


def ranking(scores: np.ndarray) -> np.ndarray:
    """Word indices by descending score, ties to the earlier word."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


@dataclass
class DeletionResult:
    """Mean AOPC of the prior's order and of random orders, their ratio, and per-example values."""

    aopc: float
    aopc_random: float
    ratio: float
    n: int
    queries: int
    per_example: list[float] = field(repr=False, default_factory=list)
    per_example_random: list[float] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "deletion_aopc": self.aopc,
            "deletion_aopc_random": self.aopc_random,
            "deletion_aopc_ratio_vs_random": self.ratio,
            "deletion_aopc_gain_vs_random": self.aopc - self.aopc_random,
            "deletion_n": self.n,
            "deletion_queries": self.queries,
        }


def deletion_aopc(
    words: Sequence[Words],
    scores: Sequence[np.ndarray],
    labels: Sequence[int],
    score_fn: ScoreFn,
    *,
    ids: Sequence[str] | None = None,
    bins: Sequence[float] = DEFAULT_BINS,
    n_random: int = 3,
    seed: int = 0,
) -> DeletionResult:
    """Deletion AOPC of each prior ranking and of ``n_random`` random orders (module docstring)."""
    if not (len(words) == len(scores) == len(labels)):
        raise ValueError("words, scores and labels must have the same length")
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(words))]
    texts: list[str] = []
    ys: list[int] = []
    owners: list[int] = []
    index: dict[tuple[int, str], int] = {}  # (example, kept text) -> query row: no text scored twice

    def query(j: int, text: str) -> int:
        key = (j, text)
        if key not in index:
            index[key] = len(texts)
            texts.append(text)
            ys.append(int(labels[j]))
            owners.append(j)
        return index[key]

    plans = []  # per example: (row of x, [rows of the prior's curve], [[rows of each random curve]])
    for j, (w, s) in enumerate(zip(words, scores)):
        d = len(w)
        if d == 0 or len(s) != d:
            raise ValueError(f"example {ids[j]!r}: {len(s)} scores for {d} words")
        ks = deletion_sizes(d, bins)
        rng = example_rng(seed, ids[j])
        orders = [ranking(s)] + [rng.permutation(d) for _ in range(n_random)]
        curves = []
        for order in orders:
            rows = []
            for k in ks:
                keep = np.ones(d, dtype=np.uint8)
                keep[order[:k]] = 0
                rows.append(query(j, w.keep(keep)))
            curves.append(rows)
        # x itself as the priors score it (their all-ones mask: whitespace collapsed).
        plans.append((query(j, w.keep(np.ones(d, dtype=np.uint8))), curves[0], curves[1:]))
    f = np.asarray(score_fn(texts, ys, owners), dtype=np.float64) if texts else np.zeros(0)
    if not np.isfinite(f).all():
        raise ValueError("the scorer returned non-finite scores")
    per, per_rand = [], []
    for full, prior_rows, random_rows in plans:
        per.append(float(np.mean(f[full] - f[prior_rows])))
        per_rand.append(float(np.mean([np.mean(f[full] - f[r]) for r in random_rows])))
    a, ar = (float(np.mean(per)), float(np.mean(per_rand))) if per else (float("nan"), float("nan"))
    ratio = a / ar if ar > 0 else float("nan")  # a random order that does not lower f: no reference
    return DeletionResult(a, ar, ratio, len(per), len(texts), per, per_rand)


__all__ = ["DEFAULT_BINS", "DeletionResult", "ScoreFn", "deletion_aopc", "deletion_sizes", "ranking"]
