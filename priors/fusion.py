"""Per-example normalisation and element-wise fusion of priors (docs/design.md#normalisation-and-fusion).

Both are registries: ``@register_normalisation("name")`` / ``@register_fusion("name")`` make a
function available by name to :func:`normalise` / :func:`fuse` (and so to ``eg-priors fuse`` and
the configs); nothing else needs to change to add one.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from eg_train.foundation.registry import Registry

Normalisation = Callable[[np.ndarray], np.ndarray]
Fusion = Callable[[np.ndarray], np.ndarray]

NORMALISATIONS: Registry[Normalisation] = Registry("normalisation")
FUSIONS: Registry[Fusion] = Registry("fusion")


def register_normalisation(name: str) -> Callable[[Normalisation], Normalisation]:
    """Decorator: a per-example normalisation ``float64 [d] -> [d]`` available by name."""
    return NORMALISATIONS.register(name)


def register_fusion(name: str) -> Callable[[Fusion], Fusion]:
    """Decorator: a fusion ``[methods, d] -> [d]`` of normalised priors available by name."""
    return FUSIONS.register(name)


@register_normalisation("minmax")
def _minmax(s: np.ndarray) -> np.ndarray:
    """Map to [0, 1]; a constant vector maps to zeros."""
    span = s.max() - s.min() if s.size else 0.0
    return (s - s.min()) / span if span > 0 else np.zeros_like(s)


@register_normalisation("l1")
def _l1(s: np.ndarray) -> np.ndarray:
    """Divide by the sum of absolute values (zeros stay zeros)."""
    total = np.abs(s).sum()
    return s / total if total > 0 else np.zeros_like(s)


@register_normalisation("softmax")
def _softmax(s: np.ndarray) -> np.ndarray:
    """Exponentiate and sum to 1."""
    if not s.size:
        return s
    e = np.exp(s - s.max())
    return e / e.sum()


@register_fusion("mean")
def _mean(stacked: np.ndarray) -> np.ndarray:
    return stacked.mean(axis=0)


@register_fusion("max")
def _max(stacked: np.ndarray) -> np.ndarray:
    return stacked.max(axis=0)


def normalise(scores: np.ndarray, how: str = "minmax") -> np.ndarray:
    """Normalise one example's word scores with the registered normalisation ``how``."""
    fn = NORMALISATIONS[how]
    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ValueError(f"non-finite prior scores: {s}")
    return fn(s).astype(np.float32)


def fuse(priors: Sequence[np.ndarray], how: str = "mean", normalisation: str = "minmax") -> np.ndarray:
    """Normalise each prior and combine them element-wise with the registered fusion ``how``."""
    if not priors:
        raise ValueError("nothing to fuse")
    fusion = FUSIONS[how]
    lengths = {len(p) for p in priors}
    if len(lengths) != 1:
        raise ValueError(f"priors of one example have different word counts: {sorted(lengths)}")
    return fusion(np.stack([normalise(p, normalisation) for p in priors]))
