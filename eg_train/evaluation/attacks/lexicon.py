"""Class keywords and confusable class pairs, derived from the TRAINING split only.

**Keywords — log-odds with an informative Dirichlet prior** (Monroe, Colaresi & Quinn 2008,
"Fightin' Words"). Counts are document frequencies ``y[c, w]`` (number of training texts of
class ``c`` containing the lower-cased word ``w``; intents are short, so repeats add nothing).
With prior ``α_w = α_0 · f_w`` (``f_w``: corpus share of ``w``; ``α_0 = prior_scale · N``, ``N`` the
total count, so the shrinkage is the same relative to any corpus size) and ``n_c = Σ_w y[c, w]``,
the z-score of ``w`` for class ``i`` against ``j`` is

    δ = log((y_iw + α_w) / (n_i + α_0 − y_iw − α_w)) − log((y_jw + α_w) / (n_j + α_0 − y_jw − α_w))
    z = δ / sqrt(1 / (y_iw + α_w) + 1 / (y_jw + α_w))

``j`` is either one class (pairwise keywords of a confusable pair) or all other classes pooled
(one-vs-rest class keywords). The prior shrinks rare words, so a word seen once is not a keyword.

**Confusable pairs — a bag-of-words centroid model's confusion.** Binary bag-of-words TF-IDF
vectors, one L2-normalised centroid per class (Rocchio), ``folds``-fold cross-validation on the
training split (seeded fold assignment). ``confusion[i, j]`` is the fraction of class-``i``
training texts the centroid model assigns to ``j``; the confusable class of ``i`` maximises
``confusion[i, j] + 1e-3 · cos(centroid_i, centroid_j)`` over ``j ≠ i`` (the cosine term only
breaks ties, e.g. for classes the centroid model never confuses).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# The stopword list, word normalisation and the content-word rule are the foundation's (the prior
# quality metrics mine keywords with the same ones): attacks never insert, replace or rank a stopword.
from eg_train.foundation.keywords import STOPWORDS, content_word, document_counts, document_sets, normalise_word  # noqa: F401 (re-exported)

@dataclass
class Lexicon:
    """Training-data statistics the attacks are built from (see module docstring)."""

    vocab: list[str]
    doc_counts: np.ndarray  # (num_labels, V) documents of class c containing word w
    class_sizes: np.ndarray  # (num_labels,) training texts per class
    confusion: np.ndarray  # (num_labels, num_labels) cross-validated centroid-model confusion rates
    centroid_similarity: np.ndarray  # (num_labels, num_labels) cosine of full-data class centroids
    label_names: list[str]
    prior_scale: float
    train_fingerprint: str

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.vocab)}
        total = self.doc_counts.sum(0).astype(np.float64)
        self.alpha0 = self.prior_scale * total.sum()
        self.alpha = self.alpha0 * total / total.sum()

    # -- keywords -------------------------------------------------------------------------------
    def log_odds_z(self, cls: int, against: int | None = None) -> np.ndarray:
        """z-scores over the vocabulary of class ``cls`` vs class ``against`` (None: all others)."""
        y = self.doc_counts.astype(np.float64)
        yi = y[cls]
        yj = y.sum(0) - yi if against is None else y[against]
        a, a0 = self.alpha, self.alpha0
        ni, nj = yi.sum(), yj.sum()
        delta = np.log((yi + a) / (ni + a0 - yi - a)) - np.log((yj + a) / (nj + a0 - yj - a))
        return delta / np.sqrt(1.0 / (yi + a) + 1.0 / (yj + a))

    def keywords(self, cls: int, against: int | None = None, top: int = 20, min_z: float = 1.96) -> list[tuple[str, float]]:
        """Top content words of ``cls`` (vs ``against`` or the rest) with z >= ``min_z``."""
        z = self.log_odds_z(cls, against)
        order = np.argsort(-z, kind="stable")
        out = []
        for i in order:
            if z[i] < min_z or len(out) >= top:
                break
            if content_word(self.vocab[i]):
                out.append((self.vocab[i], float(z[i])))
        return out

    def docs_with(self, word: str, cls: int) -> int:
        """Training texts of class ``cls`` that contain ``word`` (0 if unseen)."""
        i = self.index.get(normalise_word(word))
        return 0 if i is None else int(self.doc_counts[cls, i])

    # -- confusable classes -------------------------------------------------------------------
    def confusable(self, cls: int, top: int = 1) -> list[int]:
        """The ``top`` classes most confused with ``cls`` (see module docstring)."""
        score = self.confusion[cls] + 1e-3 * self.centroid_similarity[cls]
        score = score.copy()
        score[cls] = -np.inf
        return [int(j) for j in np.argsort(-score, kind="stable")[:top]]

    def confusable_pairs(self, top: int = 10) -> list[dict]:
        """Most confused (gold, confused-with) class pairs of the centroid model, most frequent first."""
        c = self.confusion.copy()
        np.fill_diagonal(c, -1)
        flat = np.argsort(-c, axis=None, kind="stable")[:top]
        return [
            {"gold": self.label_names[i], "confused_with": self.label_names[j], "rate": float(c[i, j])}
            for i, j in (np.unravel_index(k, c.shape) for k in flat)
        ]

    def summary(self) -> dict:
        return {
            "vocab_size": len(self.vocab),
            "prior_scale": self.prior_scale,
            "train_fingerprint": self.train_fingerprint,
            "centroid_cv_accuracy": float(
                (np.diag(self.confusion) * self.class_sizes).sum() / self.class_sizes.sum()
            ),
        }


def split_fingerprint(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> str:
    """Content hash of a labelled split (texts, labels and label names, in order)."""
    h = hashlib.sha1()
    h.update(json.dumps(list(label_names)).encode("utf-8"))
    for t, y in zip(texts, labels):
        h.update(f"{int(y)}\t{t}\n".encode("utf-8"))
    return h.hexdigest()[:16]


def _centroid_confusion(
    docs: list[set[str]], labels: np.ndarray, vocab: dict[str, int], num_labels: int, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-validated confusion rates and full-data centroid cosine similarities."""
    x = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for r, d in enumerate(docs):
        cols = [vocab[w] for w in d if w in vocab]
        x[r, cols] = 1.0

    def centroids(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        df = x[rows].sum(0)
        idf = np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0
        v = x[rows] * idf
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        cent = np.zeros((num_labels, x.shape[1]), dtype=np.float32)
        np.add.at(cent, labels[rows], v)
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
        return cent, idf

    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(docs)) % folds
    counts = np.zeros((num_labels, num_labels), dtype=np.float64)
    for f in range(folds):
        train_rows, test_rows = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        cent, idf = centroids(train_rows)
        pred = ((x[test_rows] * idf) @ cent.T).argmax(1)
        np.add.at(counts, (labels[test_rows], pred), 1.0)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    cent, _ = centroids(np.arange(len(docs)))
    return rates, cent @ cent.T


def build_lexicon(
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: Sequence[str],
    prior_scale: float = 0.01,
    min_count: int = 2,
    folds: int = 5,
    seed: int = 0,
) -> Lexicon:
    """Count words per class and fit the centroid confusion model on a training split.

    Words seen in fewer than ``min_count`` training texts are dropped from the vocabulary.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("cannot build an attack lexicon from an empty training split")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    y = np.asarray(labels, dtype=np.int64)
    k = len(label_names)
    docs = document_sets(texts)
    dc = document_counts(texts, y, k, min_count)
    vocab, counts = dc.vocab, dc.counts
    index = {w: i for i, w in enumerate(vocab)}
    confusion, similarity = _centroid_confusion(docs, y, index, k, folds, seed)
    return Lexicon(
        vocab=vocab,
        doc_counts=counts,
        class_sizes=np.bincount(y, minlength=k),
        confusion=confusion,
        centroid_similarity=similarity,
        label_names=list(label_names),
        prior_scale=prior_scale,
        train_fingerprint=split_fingerprint(texts, labels, label_names),
    )
