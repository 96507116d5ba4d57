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


def test_matmul_ceiling_and_e2e_pair_are_reported():
    st = bench_precision.bench_matmul(repeats=1, calls=1)["matmul"]
    assert set(st["shapes"]) == set(bench_precision.MATMUL_SHAPES)
    for name, row in st["shapes"].items():
        m, k, n = bench_precision.MATMUL_SHAPES[name]
        assert row["gflops_fp32"] == 2.0 * m * k * n / row["median_s_fp32"] / 1e9 and row["speedup"] > 0
    from eg_train.evaluation.statistics import paired_t

    e2e = {"config": "configs/pipeline_demo.yaml", "seeds": [0, 1], "speedup": 1.5,
           "fp32": {"total_s": 300.0, "uptime_before": "load 1", "accuracy": {"ce": [0.80, 0.70]}},
           "bf16": {"total_s": 200.0, "uptime_before": "load 2", "accuracy": {"ce": [0.81, 0.69]}}}
    e2e["paired_bf16_minus_fp32"] = {"ce": paired_t([0.81, 0.69], [0.80, 0.70])}
    md = bench_precision.markdown({"stages": {"matmul": st}, "cpu_bf16_flags": [], "torch": "x", "torch_threads": 1,
                                   "quick": True, "uptime_before": "", "uptime_after": "", "e2e": e2e})
    assert "| matmul |" in md and "minilm_ffn" in md
    assert "| ce | 80.0, 70.0 | 81.0, 69.0 | +0.0 [" in md and "300 s against 200 s (1.50x" in md
