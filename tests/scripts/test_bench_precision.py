"""The fidelity measures of ``scripts/bench_precision.py`` against scipy, and its report layout."""

import importlib.util
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_precision.py"
_spec = importlib.util.spec_from_file_location("bench_precision", _PATH)
bench_precision = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_precision)


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 5, 12).astype(float), rng.normal(size=12)
        assert abs(bench_precision.spearman(a, b) - spearmanr(a, b).statistic) < 1e-12
    assert np.isnan(bench_precision.spearman(np.ones(4), np.arange(4.0)))


def test_top_k_agreement():
    a = np.array([0.9, 0.1, 0.8, 0.7, 0.0])
    assert bench_precision.top_k_agreement(a, a) == 1.0
    assert bench_precision.top_k_agreement(a, np.array([0.9, 0.8, 0.1, 0.7, 0.0])) == 2 / 3
    assert bench_precision.top_k_agreement(np.array([1.0, 2.0]), np.array([2.0, 1.0])) == 1.0  # k capped by length


def test_interleaving_alternates_the_order():
    assert bench_precision._order(0) == ("fp32", "bf16") and bench_precision._order(1) == ("bf16", "fp32")
    s = bench_precision._speedup({"fp32": [2.0, 4.0, 3.0], "bf16": [1.0, 1.5, 2.0]})
    assert s["speedup"] == 3.0 / 1.5 and s["n_timed"] == 3
