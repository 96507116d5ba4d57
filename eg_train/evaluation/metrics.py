"""Classification metrics: accuracy, macro-F1, confusion matrix and the most confused class pairs."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_int_arrays(y_true: Sequence[int], y_pred: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} entries, y_pred has {p.shape[0]}")
    if t.size == 0:
        raise ValueError("cannot compute metrics on an empty set of predictions")
    return t, p


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of exact matches."""
    t, p = _as_int_arrays(y_true, y_pred)
    return float((t == p).mean())


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """``C[i, j]`` = number of examples of true class ``i`` predicted as ``j``."""
    t, p = _as_int_arrays(y_true, y_pred)
    if t.max() >= num_labels or p.max() >= num_labels or t.min() < 0 or p.min() < 0:
        raise ValueError(f"labels must lie in [0, {num_labels})")
    cm = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    A class that is neither a gold label nor predicted has an undefined F1 and is left out
    (the convention of scikit-learn's ``f1_score(average="macro")`` with ``labels`` = the union).
    """
    t, p = _as_int_arrays(y_true, y_pred)
    n = num_labels if num_labels is not None else int(max(t.max(), p.max())) + 1
    cm = confusion_matrix(t, p, n)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean())


def confused_pairs(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str], top: int = 10
) -> list[dict]:
    """The ``top`` most frequent (gold, predicted) errors, most frequent first.

    Each entry: ``{"gold", "predicted", "count", "rate"}`` with ``rate`` = count / gold support.
    Ties are broken by label order so the list is deterministic.
    """
    cm = confusion_matrix(y_true, y_pred, len(label_names))
    support = cm.sum(1)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = sorted(
        ((int(off[i, j]), i, j) for i, j in zip(*np.nonzero(off))), key=lambda x: (-x[0], x[1], x[2])
    )
    return [
        {
            "gold": label_names[i],
            "predicted": label_names[j],
            "count": c,
            "rate": c / int(support[i]),
        }
        for c, i, j in order[:top]
    ]


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str], top_pairs: int = 10
) -> dict:
    """Accuracy, macro-F1 (over all ``label_names``) and the most confused pairs, as a JSON-able dict."""
    return {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, len(label_names)),
        "confused_pairs": confused_pairs(y_true, y_pred, label_names, top_pairs),
    }
