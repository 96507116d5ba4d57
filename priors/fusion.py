"""Per-example normalisation and element-wise fusion of priors (SPEC §2)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

NORMALISATIONS = ("minmax", "l1", "softmax")
FUSIONS = ("mean", "max")


def normalise(scores: np.ndarray, how: str = "minmax") -> np.ndarray:
    """Normalise one example's word scores.

    ``minmax`` maps to [0, 1] (a constant vector maps to zeros), ``l1`` divides by the sum of
    absolute values, ``softmax`` exponentiates and sums to 1.
    """
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError(f"non-finite prior scores: {s}")
    if how == "minmax":
        span = s.max() - s.min() if s.size else 0.0
        out = (s - s.min()) / span if span > 0 else np.zeros_like(s)
    elif how == "l1":
        total = np.abs(s).sum()
        out = s / total if total > 0 else np.zeros_like(s)
    elif how == "softmax":
        e = np.exp(s - s.max()) if s.size else s
        out = e / e.sum() if s.size else s
    else:
        raise ValueError(f"unknown normalisation {how!r}; choose from {NORMALISATIONS}")
    return out.astype(np.float32)


def fuse(priors: Sequence[np.ndarray], how: str = "mean", normalisation: str = "minmax") -> np.ndarray:
    """Normalise each prior and combine them element-wise (``mean`` or ``max``)."""
    if not priors:
        raise ValueError("nothing to fuse")
    lengths = {len(p) for p in priors}
    if len(lengths) != 1:
        raise ValueError(f"priors of one example have different word counts: {sorted(lengths)}")
    stacked = np.stack([normalise(p, normalisation) for p in priors])
    if how == "mean":
        return stacked.mean(axis=0)
    if how == "max":
        return stacked.max(axis=0)
    raise ValueError(f"unknown fusion {how!r}; choose from {FUSIONS}")
