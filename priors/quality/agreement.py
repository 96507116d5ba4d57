"""Model-free plausibility and agreement: keyword precision@k and Spearman between methods.

**Keyword precision@k.** Class keywords come from a *reference* split the prior never saw (for a
k-shot sample, the rest of the training split), mined by one-vs-rest log-odds with an informative
Dirichlet prior (:mod:`eg_train.foundation.keywords`): per class, the ``top`` content words with
z ≥ ``min_z``. For an example of class ``y``, the prior's top-``k`` distinct (lower-cased) words
are compared with the keywords of ``y``:

    precision@k = |top-k ∩ keywords(y)| / min(k, distinct words of the example)

Reported beside it: the expectation for a random ranking (``|words ∩ keywords(y)| / distinct
words``) and the best any ranking can do (``min(k, |words ∩ keywords(y)|) / min(k, distinct)``).

Limits: the keywords are lexical statistics of the reference split, so they reward words that
are frequent and distinctive for a class there, not the evidence a reader would point at;
paraphrases, negations and multi-word cues ("top up" vs "top") are invisible to it, and so are
function words that do carry the intent ("how" in a how-to intent). Classes with few reference
texts get few or no keywords (their examples score 0 for every prior and lower every mean alike).
A good score says the prior agrees with the corpus, not that the LLM used those words (that is
the deletion metric's job).

**Agreement between methods.** Spearman's ρ of two priors' word scores per example (average
ranks for ties), averaged over the examples with at least 2 words where neither is constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eg_train.foundation.keywords import document_counts, document_sets, log_odds_z, normalise_word, top_keywords
from eg_train.foundation.words import Words


@dataclass
class KeywordSettings:
    """How the reference keywords are mined (module docstring)."""

    top: int = 20
    min_z: float = 1.96
    prior_scale: float = 0.01
    min_count: int = 2


class ReferenceKeywords:
    """Class keywords of a reference split; ``leave_out`` drops an example's own text first.

    Leave-one-out is for examples that belong to the reference (priors computed on the whole
    training split, where no unseen training text remains): the keywords of their class are
    mined without their own text, so an example never grades itself.
    """

    def __init__(
        self, texts: Sequence[str], labels: Sequence[int], num_labels: int, settings: KeywordSettings | None = None
    ) -> None:
        self.settings = settings or KeywordSettings()
        if not texts:
            raise ValueError("the keyword reference split is empty")
        s = self.settings
        self.dc = document_counts(texts, labels, num_labels, s.min_count)
        self.num_labels = num_labels
        self.n_texts = len(texts)
        z = log_odds_z(self.dc.counts, s.prior_scale)
        self.keywords = [set(k) for k in top_keywords(z, self.dc.vocab, s.top, s.min_z)]

    def for_example(self, text: str, label: int, leave_out: bool = False) -> set[str]:
        """Keywords of ``label``; with ``leave_out``, mined without ``text`` (one of the reference texts)."""
        if not leave_out:
            return self.keywords[label]
        s = self.settings
        own = np.zeros(len(self.dc.vocab), dtype=np.int64)
        own[[self.dc.index[w] for w in document_sets([text])[0] if w in self.dc.index]] = 1
        counts = self.dc.counts
        yi = counts[label] - own
        if (yi < 0).any():
            raise ValueError(f"text is not in class {label} of the reference split: {text!r}")
        rest = counts.sum(0) - counts[label]
        # Two rows (class, all others pooled): the same one-vs-rest z with α from the whole corpus.
        z = log_odds_z(np.stack([yi, rest]), s.prior_scale)[:1]
        return set(top_keywords(z, self.dc.vocab, s.top, s.min_z)[0])

    def summary(self) -> dict:
        sizes = [len(k) for k in self.keywords]
        return {
            "reference_texts": self.n_texts,
            "vocab_size": len(self.dc.vocab),
            "keywords_per_class_mean": float(np.mean(sizes)),
            "classes_without_keywords": int(sum(1 for n in sizes if n == 0)),
            "keyword_top": self.settings.top,
            "keyword_min_z": self.settings.min_z,
            "keyword_prior_scale": self.settings.prior_scale,
            "keyword_min_count": self.settings.min_count,
        }


def top_distinct_words(words: Words, scores: np.ndarray, k: int) -> list[str]:
    """The ``k`` distinct normalised words with the highest score (a word scores its best
    occurrence; ties to the earlier word)."""
    best: dict[str, tuple[float, int]] = {}
    for pos, (w, s) in enumerate(zip(words.words, np.asarray(scores, dtype=np.float64))):
        key = normalise_word(w)
        if key not in best or s > best[key][0]:
            best[key] = (float(s), best.get(key, (0.0, pos))[1])
    order = sorted(best, key=lambda w: (-best[w][0], best[w][1]))
    return order[:k]


def keyword_precision(
    words: Sequence[Words], scores: Sequence[np.ndarray], keywords: Sequence[set[str]], k: int = 3
) -> dict[str, float]:
    """Mean precision@k of the priors against per-example keyword sets, with its random
    expectation and its ceiling (module docstring)."""
    if not (len(words) == len(scores) == len(keywords)):
        raise ValueError("words, scores and keywords must have the same length")
    prec, rand, best, has = [], [], [], 0
    for w, s, kw in zip(words, scores, keywords):
        distinct = {normalise_word(x) for x in w.words}
        if not distinct:
            continue
        present = len(distinct & kw)
        has += present > 0
        denom = min(k, len(distinct))
        prec.append(len(set(top_distinct_words(w, s, k)) & kw) / denom)
        rand.append(present / len(distinct))
        best.append(min(k, present) / denom)
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return {
        f"keyword_precision_at_{k}": mean(prec),
        f"keyword_precision_at_{k}_random": mean(rand),
        f"keyword_precision_at_{k}_ceiling": mean(best),
        "keyword_examples": len(prec),
        "keyword_examples_with_a_keyword": int(has),
    }


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (Pearson correlation of average ranks); NaN when either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if len(a) < 2:
        return float("nan")
    ra, rb = average_ranks(a), average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def mean_spearman(first: Sequence[np.ndarray | None], second: Sequence[np.ndarray | None]) -> tuple[float, int]:
    """Mean per-example Spearman over the examples both priors cover (and where it is defined)."""
    vals = [spearman(a, b) for a, b in zip(first, second) if a is not None and b is not None]
    vals = [v for v in vals if np.isfinite(v)]
    return (float(np.mean(vals)) if vals else float("nan")), len(vals)


__all__ = [
    "KeywordSettings",
    "ReferenceKeywords",
    "average_ranks",
    "keyword_precision",
    "mean_spearman",
    "spearman",
    "top_distinct_words",
]
