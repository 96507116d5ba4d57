"""Shortcut candidates: word n-grams tied to a class that the model uses and the prior does not.

A *feature* is a lower-cased word n-gram (``n <= max_n``) of :func:`eg_train.foundation.words.split_words`.
For every (feature, class) with at least ``min_count`` training texts of the class containing it:

- ``count``: training texts of the class that contain the feature (``count_total``: of any class);
- ``association``: the smoothed log-odds ratio of "text contains the feature" between the class and
  the other classes, ``log((a+½)(d+½) / ((b+½)(c+½)))`` with the Haldane-Anscombe ½ in every cell of
  the 2 × 2 table, and its 95 % Wald interval ``± 1.96 · sqrt(Σ 1/(cell+½))``;
- ``model_share``: the mean, over the class's texts containing the feature, of the share of the
  model's |IG| (towards the class) that sits on the feature's words; ``prior_share`` the share of the
  prior's *support* (its positive scores: what argues for the label; a signed prior such as LIME also
  scores words that argue against it, and a word the LLM finds confusing must not count as evidence)
  on them (texts without a cached prior, or with no positive score, are left out); ``uniform_share``
  the share a flat attribution would give;
- ``position``: ``first`` / ``last`` when at least ``position_share`` of the occurrences start the
  text / end it, else ``any``;
- ``prior_excess_ci95``: the 95 % Student-t interval, over those texts, of the prior's share minus the
  uniform share; when its lower end is above 0 the prior *singles the feature out* (the LLM calls it
  class evidence), and the feature is not confirmed as a shortcut whatever the counterfactuals say;
- ``score = max(0, association_low) · max(0, model_share − prior_share)``: the data ties it to the
  class (the interval's lower end), the model uses it, the LLM does not (the gap between the two
  shares). A feature with no prior on any of its texts uses the uniform share in its place.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from eg_train.foundation.words import split_words

Z95 = 1.959964  # two-sided 95 % normal quantile
POSITIONS = ("first", "last", "any")


@dataclass
class FeatureTable:
    """Where every feature (a tuple of lower-cased words) occurs in a list of texts.

    ``occurrences[f][i]`` are the word indices at which ``f`` starts in text ``i``;
    ``n_words[i]`` the words of text ``i``; ``labels[i]`` its class.
    """

    occurrences: dict[tuple[str, ...], dict[int, list[int]]]
    n_words: list[int]
    labels: list[int]
    n_classes: int

    def texts_with(self, feature: tuple[str, ...], label: int | None = None) -> list[int]:
        """Texts containing ``feature`` (of class ``label`` only, when given), in order."""
        rows = sorted(self.occurrences.get(feature, {}))
        return rows if label is None else [i for i in rows if self.labels[i] == label]

    def doc_freq(self, feature: tuple[str, ...]) -> int:
        return len(self.occurrences.get(feature, {}))

    def word_positions(self, feature: tuple[str, ...], row: int) -> list[int]:
        """Every word index of text ``row`` covered by an occurrence of ``feature``."""
        n = len(feature)
        return sorted({k + j for k in self.occurrences.get(feature, {}).get(row, []) for j in range(n)})


def feature_table(texts: Sequence[str], labels: Sequence[int], n_classes: int, max_n: int = 3) -> FeatureTable:
    """The :class:`FeatureTable` of ``texts``: every lower-cased word n-gram, ``1 <= n <= max_n``."""
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    occ: dict[tuple[str, ...], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    n_words = []
    for i, text in enumerate(texts):
        words = [w.lower() for w in split_words(text).words]
        n_words.append(len(words))
        for n in range(1, max_n + 1):
            for k in range(len(words) - n + 1):
                occ[tuple(words[k : k + n])][i].append(k)
    return FeatureTable({f: dict(rows) for f, rows in occ.items()}, n_words, [int(y) for y in labels], int(n_classes))


def log_odds(a: int, b: int, c: int, d: int) -> tuple[float, float, float]:
    """Smoothed log-odds ratio of the 2 × 2 table ``[[a, b], [c, d]]`` and its 95 % Wald interval."""
    a_, b_, c_, d_ = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    est = math.log(a_ * d_ / (b_ * c_))
    half = Z95 * math.sqrt(1 / a_ + 1 / b_ + 1 / c_ + 1 / d_)
    return est, est - half, est + half


def _share(scores: np.ndarray | None, positions: Sequence[int], support: bool = False) -> float | None:
    """The share of the attribution mass on ``positions``: of ``|scores|``, or with ``support`` of the
    positive part only (what argues *for* the label)."""
    if scores is None:
        return None
    raw = np.asarray(scores, dtype=np.float64)
    mass = np.clip(raw, 0.0, None) if support else np.abs(raw)
    total = mass.sum()
    pos = [k for k in positions if k < mass.size]
    return float(mass[pos].sum() / total) if total > 0 else None


@dataclass
class Candidate:
    """One (feature, class) with its figures; ``proof`` is filled by :func:`~.proof.prove`."""

    feature: str
    words: tuple[str, ...]
    label: int
    position: str
    count: int
    count_total: int
    association: float
    association_ci95: tuple[float, float]
    model_share: float | None
    prior_share: float | None
    uniform_share: float
    prior_excess_ci95: tuple[float, float] | None  # 95 % t interval of prior share − uniform share
    score: float
    texts: list[int] = field(default_factory=list)  # training rows of the class containing it
    proof: dict = field(default_factory=dict)

    @property
    def prior_singles_out(self) -> bool:
        """Whether the prior gives the feature significantly more than a flat share (the LLM calls it
        evidence): the lower end of ``prior_excess_ci95`` above 0."""
        return self.prior_excess_ci95 is not None and self.prior_excess_ci95[0] > 0

    def as_dict(self, class_names: Sequence[str]) -> dict:
        d = asdict(self)
        d.pop("words")
        d["class"] = class_names[self.label]
        d["association_ci95"] = list(self.association_ci95)
        d["prior_excess_ci95"] = None if self.prior_excess_ci95 is None else list(self.prior_excess_ci95)
        d["prior_singles_out"] = self.prior_singles_out
        d.update(d.pop("proof"))
        return d


def _t_interval(xs: Sequence[float]) -> tuple[float, float] | None:
    """95 % Student-t interval of the mean of ``xs`` (None with fewer than 2 values)."""
    from eg_train.evaluation.statistics import t975

    if len(xs) < 2:
        return None
    a = np.asarray(xs, dtype=np.float64)
    half = t975(len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return float(a.mean() - half), float(a.mean() + half)


def _position_tag(table: FeatureTable, feature: tuple[str, ...], rows: Sequence[int], position_share: float) -> str:
    starts = [(k, table.n_words[i]) for i in rows for k in table.occurrences[feature][i]]
    if not starts:
        return "any"
    first = sum(k == 0 for k, _ in starts) / len(starts)
    last = sum(k + len(feature) == n for k, n in starts) / len(starts)
    if first >= position_share and first >= last:
        return "first"
    if last >= position_share:
        return "last"
    return "any"


def score_candidates(
    table: FeatureTable,
    model_scores: Sequence[np.ndarray | None],
    prior_scores: Sequence[np.ndarray | None],
    *,
    min_count: int = 2,
    position_share: float = 0.8,
) -> list[Candidate]:
    """Every (feature, class) with ``count >= min_count`` and a positive association estimate,
    scored (module docstring), best first.

    ``model_scores[i]``: the model's word IG of training text ``i`` towards its own class (None: not
    computed, the text is left out of ``model_share``); ``prior_scores[i]``: its prior (None: none).
    """
    labels = np.asarray(table.labels)
    class_sizes = np.bincount(labels, minlength=table.n_classes)
    n = len(labels)
    out: list[Candidate] = []
    for feature, rows in table.occurrences.items():
        per_class = np.bincount(labels[list(rows)], minlength=table.n_classes)
        total = int(per_class.sum())
        for c in np.flatnonzero(per_class >= min_count):
            a = int(per_class[c])
            b = int(class_sizes[c]) - a
            cc = total - a
            d = (n - int(class_sizes[c])) - cc
            est, lo, hi = log_odds(a, b, cc, d)
            if est <= 0:
                continue
            in_class = [i for i in sorted(rows) if labels[i] == c]
            m_sh, p_sh, u_sh, p_excess = [], [], [], []
            for i in in_class:
                pos = table.word_positions(feature, i)
                u = len(pos) / max(1, table.n_words[i])
                u_sh.append(u)
                if (s := _share(model_scores[i], pos)) is not None:
                    m_sh.append(s)
                if (s := _share(prior_scores[i], pos, support=True)) is not None:
                    p_sh.append(s)
                    p_excess.append(s - u)
            model_share = float(np.mean(m_sh)) if m_sh else None
            prior_share = float(np.mean(p_sh)) if p_sh else None
            uniform = float(np.mean(u_sh))
            gap = (model_share or 0.0) - (prior_share if prior_share is not None else uniform)
            out.append(Candidate(
                feature=" ".join(feature), words=feature, label=int(c),
                position=_position_tag(table, feature, in_class, position_share), count=a, count_total=total,
                association=est, association_ci95=(lo, hi), model_share=model_share, prior_share=prior_share,
                uniform_share=uniform, prior_excess_ci95=_t_interval(p_excess),
                score=max(0.0, lo) * max(0.0, gap), texts=in_class,
            ))
    out.sort(key=lambda x: (-x.score, -x.count, x.feature))
    return out


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether one word sequence contains the other."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return any(long_[k : k + len(short)] == short for k in range(len(long_) - len(short) + 1))


def top_per_class(candidates: Sequence[Candidate], k: int) -> list[Candidate]:
    """The ``k`` best-scored candidates (score > 0) of every class, skipping a feature that contains
    or is contained in a better one of the same class (``hyena`` and ``my hyena`` are one finding)."""
    chosen: dict[int, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        if cand.score <= 0:
            continue
        mine = chosen[cand.label]
        if len(mine) >= k or any(_overlaps(cand.words, other.words) for other in mine):
            continue
        mine.append(cand)
    return [c for label in sorted(chosen) for c in chosen[label]]


__all__ = ["Candidate", "FeatureTable", "POSITIONS", "feature_table", "log_odds", "score_candidates", "top_per_class"]
