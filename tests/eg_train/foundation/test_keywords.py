"""Log-odds keyword mining against a hand-written Monroe et al. (2008) computation."""

import math

import numpy as np

from eg_train.foundation.keywords import class_keywords, document_counts, log_odds_z


def _monroe(counts, prior_scale, i, w):
    """Eq. 22 of Monroe, Colaresi & Quinn (2008), one class against the pooled rest, in loops."""
    K, V = len(counts), len(counts[0])
    total = [sum(counts[c][v] for c in range(K)) for v in range(V)]
    N = sum(total)
    a0 = prior_scale * N
    a = a0 * total[w] / N
    yi = counts[i][w]
    yj = total[w] - yi
    ni = sum(counts[i])
    nj = N - ni
    delta = math.log((yi + a) / (ni + a0 - yi - a)) - math.log((yj + a) / (nj + a0 - yj - a))
    return delta / math.sqrt(1 / (yi + a) + 1 / (yj + a))


def test_log_odds_matches_the_formula():
    counts = [[5, 0, 2, 1], [0, 4, 2, 1], [1, 1, 3, 0]]
    z = log_odds_z(np.array(counts), prior_scale=0.5)
    for i in range(3):
        for w in range(4):
            assert z[i, w] == pytest_approx(_monroe(counts, 0.5, i, w))


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-12, abs=1e-12)


def test_pairwise_against_one_class():
    counts = np.array([[5, 0, 2], [0, 4, 2]])
    # With two classes, "the rest" of class 0 is class 1: both forms agree.
    np.testing.assert_allclose(log_odds_z(counts, 0.1), log_odds_z(counts, 0.1, against=counts[::-1]))


def test_planted_keywords_are_mined_and_function_words_are_not():
    texts = [f"my card zebra number {i}" for i in range(6)] + [f"my card quokka number {i}" for i in range(6, 12)]
    labels = [0] * 6 + [1] * 6
    kw = class_keywords(texts, labels, 2, min_z=1.0)
    assert kw[0][0] == "zebra" and kw[1][0] == "quokka"
    assert all(w not in kw[0] + kw[1] for w in ("my", "card", "number"))  # stopword / shared
    # A word seen in one text only is not in the vocabulary at min_count = 2.
    assert "1" not in document_counts(texts, labels, 2, min_count=2).vocab
