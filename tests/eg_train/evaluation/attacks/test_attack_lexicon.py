import math

import numpy as np
import pytest

from eg_train.evaluation.attacks.lexicon import build_lexicon

# Classes 0 and 1 share "card"/"arrive" vocabulary; class 2 is about exchange rates.
TEXTS = (
    ["my card has not arrived", "when will my card arrive", "card still not arrived", "new card arrive soon"] * 3
    + ["how long does card delivery take", "card delivery time estimate", "when will the card arrive delivery", "delivery estimate"] * 3
    + ["exchange rate for euro", "what is the exchange rate", "rate to convert dollars", "currency exchange rate"] * 3
)
LABELS = [0] * 12 + [1] * 12 + [2] * 12
NAMES = ["card_arrival", "card_delivery_estimate", "exchange_rate"]


@pytest.fixture(scope="module")
def lex():
    return build_lexicon(TEXTS, LABELS, NAMES, prior_scale=0.1, min_count=1, folds=3, seed=0)


def test_log_odds_matches_formula(lex):
    """z of 'delivery' for class 1 vs 0, recomputed by hand (Monroe et al. 2008, eq. 16)."""
    w = "delivery"
    y = {c: sum(1 for t, l in zip(TEXTS, LABELS) if l == c and w in t.split()) for c in range(3)}
    vocab_df = {}
    for t in TEXTS:
        for v in set(t.split()):
            vocab_df[v] = vocab_df.get(v, 0) + 1
    n = {c: sum(len(set(t.split())) for t, l in zip(TEXTS, LABELS) if l == c) for c in range(3)}
    a0 = 0.1 * sum(vocab_df.values())
    a = a0 * vocab_df[w] / sum(vocab_df.values())
    delta = math.log((y[1] + a) / (n[1] + a0 - y[1] - a)) - math.log((y[0] + a) / (n[0] + a0 - y[0] - a))
    z = delta / math.sqrt(1 / (y[1] + a) + 1 / (y[0] + a))
    assert lex.log_odds_z(1, 0)[lex.index[w]] == pytest.approx(z)


def test_keywords_and_confusable_classes(lex):
    assert lex.keywords(2, top=1)[0][0] in {"exchange", "rate"}
    assert "delivery" in [w for w, _ in lex.keywords(1, 0, top=3)]
    assert all(w not in {"the", "my", "when"} for w, _ in lex.keywords(0, top=20, min_z=-10))
    # The card classes are each other's confusable class, never the exchange-rate class.
    assert lex.confusable(0) == [1] and lex.confusable(1) == [0]
    assert lex.confusion.shape == (3, 3)
    np.testing.assert_allclose(lex.confusion.sum(1), 1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        build_lexicon([], [], NAMES)
    with pytest.raises(ValueError, match="labels"):
        build_lexicon(["a b"], [0, 1], NAMES)
