"""Class keywords mined from labelled texts: log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words", §3.5. Counts are document frequencies
``y[c, w]``: the number of texts of class ``c`` that contain the normalised word ``w`` (intents
are short, so a repeat inside one text adds nothing). The prior is ``α_w = α_0 · f_w`` with
``f_w`` the corpus share of ``w`` and ``α_0 = prior_scale · N`` (``N`` the total count), so the
shrinkage is the same relative to any corpus size. With ``n_c = Σ_w y[c, w]``, the z-score of
``w`` for class ``i`` against ``j`` (one class, or all other classes pooled) is

    δ = log((y_iw + α_w) / (n_i + α_0 − y_iw − α_w)) − log((y_jw + α_w) / (n_j + α_0 − y_jw − α_w))
    z = δ / sqrt(1 / (y_iw + α_w) + 1 / (y_jw + α_w))

The prior shrinks rare words, so a word seen once is not a keyword, and frequent function words
need a large difference in rate to score high. This module is the generic part (counts, z-scores,
top keywords per class); the keyword attacks and the prior-quality metrics build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eg_train.foundation.words import split_words

# A short, standard English function-word list (plus chat fillers): never a class keyword.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further had hadn't has hasn't have haven't having he her here
    hers herself him himself his how i i'm i've if in into is isn't it it's its itself just let me more
    most my myself no nor not of off on once only or other ought our ours ourselves out over own same
    she should shouldn't so some such than that that's the their theirs them themselves then there
    these they this those through to too under until up very was wasn't we were weren't what when where
    which while who whom why will with won't would wouldn't you you're your yours yourself yourselves
    im ive dont cant didnt doesnt also get got still please yes ok hi hello thanks thank""".split()
)


def normalise_word(word: str) -> str:
    """Keyword key of a word: lower-case, curly apostrophe folded to ``'``."""
    return word.lower().replace("’", "'")


def content_word(word: str) -> bool:
    """A normalised word that may be a keyword: alphabetic, at least 3 letters, not a stopword."""
    return len(word) >= 3 and word.isalpha() and word not in STOPWORDS


def document_sets(texts: Sequence[str]) -> list[set[str]]:
    """The set of normalised words of each text."""
    return [{normalise_word(w) for w in split_words(t).words} for t in texts]


@dataclass
class DocumentCounts:
    """``counts[c, w]``: texts of class ``c`` containing ``vocab[w]``."""

    vocab: list[str]
    counts: np.ndarray  # (num_labels, V) int64

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.vocab)}


def document_counts(
    texts: Sequence[str], labels: Sequence[int], num_labels: int, min_count: int = 1
) -> DocumentCounts:
    """Per-class document frequencies; words in fewer than ``min_count`` texts are dropped."""
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    docs = document_sets(texts)
    df: dict[str, int] = {}
    for d in docs:
        for w in d:
            df[w] = df.get(w, 0) + 1
    vocab = sorted(w for w, c in df.items() if c >= min_count)
    index = {w: i for i, w in enumerate(vocab)}
    counts = np.zeros((num_labels, len(vocab)), dtype=np.int64)
    for d, c in zip(docs, labels):
        if not 0 <= int(c) < num_labels:
            raise ValueError(f"label {c} outside 0..{num_labels - 1}")
        counts[int(c), [index[w] for w in d if w in index]] += 1
    return DocumentCounts(vocab, counts)


def log_odds_z(counts: np.ndarray, prior_scale: float = 0.01, against: np.ndarray | None = None) -> np.ndarray:
    """z-scores (module docstring) of every class against the rest, shape ``(num_labels, V)``.

    ``counts`` is ``(num_labels, V)``; ``against`` (same shape), when given, is the comparison
    count per class instead of "all other classes pooled" (e.g. one confusable class each).
    The prior ``α`` is always taken from the whole of ``counts``.
    """
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"counts must be (num_labels, V), got shape {y.shape}")
    if prior_scale <= 0:
        raise ValueError(f"prior_scale must be > 0, got {prior_scale}")
    total = y.sum(0)
    n_all = total.sum()
    if n_all <= 0:
        raise ValueError("cannot mine keywords from empty counts")
    a0 = prior_scale * n_all
    a = a0 * total / n_all
    yi = y
    yj = total[None, :] - y if against is None else np.asarray(against, dtype=np.float64)
    ni, nj = yi.sum(1, keepdims=True), yj.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log((yi + a) / (ni + a0 - yi - a)) - np.log((yj + a) / (nj + a0 - yj - a))
        z = delta / np.sqrt(1.0 / (yi + a) + 1.0 / (yj + a))
    z[:, total == 0] = -np.inf  # a word no text contains (e.g. after leaving its only text out)
    return z


def top_keywords(
    z: np.ndarray, vocab: Sequence[str], top: int = 20, min_z: float = 1.96, content_only: bool = True
) -> list[list[str]]:
    """Per class, the ``top`` words with the highest z (at least ``min_z``; content words only)."""
    out = []
    for row in np.asarray(z):
        words = []
        for i in np.argsort(-row, kind="stable"):
            if row[i] < min_z or len(words) >= top:
                break
            if not content_only or content_word(vocab[i]):
                words.append(vocab[i])
        out.append(words)
    return out


def class_keywords(
    texts: Sequence[str],
    labels: Sequence[int],
    num_labels: int,
    *,
    top: int = 20,
    min_z: float = 1.96,
    prior_scale: float = 0.01,
    min_count: int = 2,
) -> list[list[str]]:
    """One-vs-rest keywords of every class (a list per class, most distinctive first)."""
    dc = document_counts(texts, labels, num_labels, min_count)
    return top_keywords(log_odds_z(dc.counts, prior_scale), dc.vocab, top, min_z)


__all__ = [
    "STOPWORDS",
    "DocumentCounts",
    "class_keywords",
    "content_word",
    "document_counts",
    "document_sets",
    "log_odds_z",
    "normalise_word",
    "top_keywords",
]
