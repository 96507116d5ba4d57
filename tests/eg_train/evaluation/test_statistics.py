"""Paired intervals: known answers, the normal approximation, and scipy's t quantiles."""

import math

import numpy as np
import pytest

from eg_train.evaluation.statistics import paired_bootstrap, paired_t, t975


def test_t975_matches_scipy_at_table_entries_and_is_never_narrower_between_them():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 30, 120):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-3)
    for df in (35, 50, 100, 500):
        assert t975(df) >= scipy_stats.t.ppf(0.975, df) - 1e-3
    with pytest.raises(ValueError):
        t975(0)


def test_paired_t_known_answer():
    d = paired_t([3.0, 5.0, 7.0], [2.0, 3.0, 4.0])  # differences 1, 2, 3: mean 2, sd 1
    assert d["mean"] == pytest.approx(2.0) and d["std"] == pytest.approx(1.0)
    half = 4.302653 / math.sqrt(3)  # t_{0.975, 2} (scipy.stats.t)
    assert d["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert paired_t([1.0], [0.5])["ci95"] is None
    with pytest.raises(ValueError, match="equal lengths"):
        paired_t([1.0, 2.0], [1.0])


def test_identical_models_give_a_zero_interval():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, size=(3, 200))
    iv = paired_bootstrap(a, a.copy(), n_boot=500)
    assert (iv.mean, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert not iv.excludes_zero and iv.resampled == "examples and seeds"


def test_one_flipped_example_interval_touches_zero():
    b = np.zeros(50)
    a = b.copy()
    a[7] = 1.0  # a wins one example: the example is missing from ~37 % of resamples
    iv = paired_bootstrap(a, b, n_boot=4000, seed=1)
    assert iv.mean == pytest.approx(1 / 50)
    assert iv.low == 0.0 and iv.high > 0 and iv.resampled == "examples"


def test_single_seed_matches_the_normal_approximation():
    rng = np.random.default_rng(3)
    n = 4000
    b = (rng.random(n) < 0.6).astype(float)
    a = np.where(rng.random(n) < 0.1, 1 - b, b)  # a differs from b on ~10 % of the examples
    a[: n // 20] = 1.0  # and is better on a few
    iv = paired_bootstrap(a, b, n_boot=4000, seed=0)
    d = a - b
    half = 1.96 * d.std(ddof=1) / math.sqrt(n)
    assert iv.mean == pytest.approx(d.mean())
    assert (iv.high - iv.low) / 2 == pytest.approx(half, rel=0.1)
    assert iv.low == pytest.approx(d.mean() - half, abs=0.3 * half)


def test_seed_level_resampling_carries_the_seed_variance():
    # Differences constant within a seed: resampling examples changes nothing, seeds drive it all.
    c = np.array([-0.02, 0.0, 0.01, 0.03, 0.08])
    d = np.repeat(c[:, None], 100, axis=1)
    iv = paired_bootstrap(d, np.zeros_like(d), n_boot=20000, seed=2)
    assert iv.mean == pytest.approx(c.mean())
    assert c.min() <= iv.low < c.mean() < iv.high <= c.max()
    # The spread of a mean of 5 draws with replacement: sd(c, ddof=0) / sqrt(5).
    assert (iv.high - iv.low) / 2 == pytest.approx(1.96 * c.std() / math.sqrt(5), rel=0.15)


def test_shape_mismatch_and_bad_level_are_errors():
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(np.zeros(5), np.zeros(5), level=1.5)
