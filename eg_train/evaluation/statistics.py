"""Paired comparisons of two models: intervals a reviewer accepts.

Two models compared on the same test examples with the same seeds are *paired* twice: by seed
(same initialisation order, same data order) and by example (the same texts). Two intervals:

- :func:`paired_t`: over seeds only, ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` of the per-seed
  differences. With 3-5 seeds it is wide, and honest about seed variance.
- :func:`paired_bootstrap`: over test examples *and* seeds (a two-level bootstrap: each resample
  draws seeds with replacement and, independently, test examples with replacement, the same
  examples for both models), percentile interval of the mean difference. It adds the test-set
  sampling variance to the seed variance, as the paired bootstrap of NLP evaluation does
  (Koehn 2004; Dror et al. 2018), and needs per-example scores (``predictions.jsonl``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t``)."""
    from scipy.stats import t

    if df < 1:
        raise ValueError("a t interval needs at least 2 paired values")
    return float(t.ppf(0.975, df))


def stats(xs: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std, n and the values."""
    a = np.asarray(xs, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size), "values": a.tolist()}


def paired_t(xs: Sequence[float], base: Sequence[float]) -> dict[str, Any]:
    """``xs - base`` paired by position (seed): :func:`stats` plus ``ci95``, the 95 % t interval
    of the mean difference (None with a single pair)."""
    if len(xs) != len(base):
        raise ValueError(f"paired values need equal lengths, got {len(xs)} and {len(base)}")
    d = stats([x - b for x, b in zip(xs, base)])
    if d["n"] > 1:
        half = t975(d["n"] - 1) * d["std"] / math.sqrt(d["n"])
        d["ci95"] = [d["mean"] - half, d["mean"] + half]
    else:
        d["ci95"] = None
    return d


@dataclass(frozen=True)
class BootstrapInterval:
    """Mean paired difference ``a - b`` and its percentile interval."""

    mean: float
    low: float
    high: float
    level: float
    n_seeds: int
    n_examples: int
    n_boot: int
    resampled: str  # "examples and seeds" or "examples" (one seed)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0, chunk: int = 500,
) -> BootstrapInterval:
    """Two-level paired bootstrap of ``mean(a - b)`` (module docstring).

    ``a``, ``b``: per-example scores of shape ``[seeds, examples]`` (e.g. 0/1 correctness), row
    ``s`` of both from the same seed and column ``j`` the same test example. A 1-d input is one seed.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same [seeds, examples] shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("no paired scores")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = a - b
    S, N = d.shape
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        B = min(chunk, n_boot - start)
        # Example weights (multinomial counts / N, shared by both models and all seeds of a resample)
        # and seed weights: the resampled mean is sum_s w_s * (d[s] @ v).
        v = rng.multinomial(N, np.full(N, 1.0 / N), size=B) / N  # [B, N]
        per_seed = v @ d.T  # [B, S]
        w = rng.multinomial(S, np.full(S, 1.0 / S), size=B) / S if S > 1 else np.ones((B, 1))
        out[start : start + B] = (per_seed * w).sum(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(out, [tail, 1 - tail])
    return BootstrapInterval(
        mean=float(d.mean()), low=float(lo), high=float(hi), level=level, n_seeds=S, n_examples=N,
        n_boot=n_boot, resampled="examples and seeds" if S > 1 else "examples",
    )


__all__ = ["BootstrapInterval", "paired_bootstrap", "paired_t", "stats", "t975"]
