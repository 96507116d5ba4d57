import numpy as np
import pytest

from eg_train.evaluation.metrics import accuracy, classification_metrics, confused_pairs, confusion_matrix, macro_f1


def test_known_answer():
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 0, 2]
    assert accuracy(gold, pred) == pytest.approx(4 / 6)
    # per-class F1: class0 P=1/2 R=1/2 -> 1/2; class1 P=2/3 R=1 -> 4/5; class2 P=1 R=1/2 -> 2/3
    assert macro_f1(gold, pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    cm = confusion_matrix(gold, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_macro_f1_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 7, 300)
    pred = np.where(rng.random(300) < 0.6, gold, rng.integers(0, 7, 300))
    assert macro_f1(gold, pred, 7) == pytest.approx(sk.f1_score(gold, pred, average="macro"))
    assert accuracy(gold, pred) == pytest.approx(sk.accuracy_score(gold, pred))


def test_confused_pairs_sorted_with_rates():
    names = ["a", "b", "c"]
    gold = [0, 0, 0, 0, 1, 1, 2]
    pred = [1, 1, 2, 0, 0, 1, 0]
    pairs = confused_pairs(gold, pred, names, top=2)
    assert pairs[0] == {"gold": "a", "predicted": "b", "count": 2, "rate": 0.5}
    assert pairs[1]["count"] == 1 and (pairs[1]["gold"], pairs[1]["predicted"]) == ("a", "c")
    m = classification_metrics(gold, pred, names)
    assert m["n"] == 7 and len(m["confused_pairs"]) == 4


def test_empty_and_mismatched_inputs_are_errors():
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match="entries"):
        accuracy([0, 1], [0])
