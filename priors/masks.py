"""Seeded perturbation masks (1 = word kept). The all-ones mask is always row 0."""

from __future__ import annotations

import hashlib

import numpy as np


def example_rng(seed: int, example_id: str) -> np.random.Generator:
    """A generator that depends only on (seed, example id), so shards reproduce a single run."""
    digest = int.from_bytes(hashlib.sha1(example_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def sample_masks(d: int, n: int, rng: np.random.Generator, keep_prob: float = 0.5) -> np.ndarray:
    """``n`` masks over ``d`` words: row 0 all ones, the rest Bernoulli(``keep_prob``)."""
    if d < 1:
        raise ValueError("cannot perturb a text with no words")
    if n < 2:
        raise ValueError(f"need at least 2 perturbations (got n={n})")
    masks = (rng.random((n, d)) < keep_prob).astype(np.uint8)
    masks[0] = 1
    return masks


def cosine_kernel(masks: np.ndarray, width: float = 0.25) -> np.ndarray:
    """LIME text kernel: ``exp(-D²/width²)`` with D the cosine distance of each mask to all-ones."""
    kept = masks.sum(axis=1).astype(np.float64)
    d = masks.shape[1]
    cos = np.where(kept > 0, kept / np.sqrt(np.maximum(kept, 1) * d), 0.0)
    dist = 1.0 - cos
    return np.exp(-(dist**2) / width**2)
