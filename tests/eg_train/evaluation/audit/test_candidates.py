"""Candidates: n-gram table, log-odds against a hand computation, position tags, the score's ranking."""

from __future__ import annotations

import math

import numpy as np

from eg_train.evaluation.audit.candidates import feature_table, log_odds, score_candidates, top_per_class

TEXTS = [
    "zqab my card has not arrived",      # class 0, decoy first
    "zqab where is my card",             # class 0
    "zqab card still missing today",     # class 0
    "what is the exchange rate",         # class 1
    "exchange rate for euros please",    # class 1
    "is my exchange rate fair",          # class 1
]
LABELS = [0, 0, 0, 1, 1, 1]
# Three copies: with three texts per class no association interval can exclude 0.
MANY, MANY_LABELS = TEXTS * 3, LABELS * 3


def test_table_holds_every_ngram_with_its_positions():
    t = feature_table(TEXTS, LABELS, 2, max_n=3)
    assert t.occurrences[("zqab",)] == {0: [0], 1: [0], 2: [0]}
    assert t.occurrences[("exchange", "rate")] == {3: [3], 4: [0], 5: [2]}
    assert ("is", "my", "exchange") in t.occurrences and not any(len(f) > 3 for f in t.occurrences)
    assert t.word_positions(("exchange", "rate"), 5) == [2, 3]
    assert t.texts_with(("my",), label=0) == [0, 1] and t.doc_freq(("my",)) == 3


def test_log_odds_is_the_haldane_corrected_ratio_with_a_wald_interval():
    est, lo, hi = log_odds(3, 0, 0, 3)
    assert math.isclose(est, math.log(3.5 * 3.5 / (0.5 * 0.5)))
    half = 1.959964 * math.sqrt(2 / 3.5 + 2 / 0.5)
    assert math.isclose(lo, est - half) and math.isclose(hi, est + half)
    assert log_odds(2, 2, 2, 2)[0] == 0.0


def _ig_on(word: str) -> list[np.ndarray]:
    """An attribution that puts 90 % of its mass on ``word`` (else flat)."""
    out = []
    for text in MANY:
        words = text.split()
        s = np.full(len(words), 0.1 / len(words))
        for k, w in enumerate(words):
            if w == word:
                s[k] = 0.9
        out.append(s)
    return out


def test_the_model_used_feature_the_prior_ignores_ranks_first_with_its_position():
    t = feature_table(MANY, MANY_LABELS, 2)
    flat = [np.ones(len(x.split())) for x in MANY]
    ranked = score_candidates(t, _ig_on("zqab"), flat)
    best = ranked[0]
    assert (best.feature, best.label, best.position, best.count) == ("zqab", 0, "first", 9)
    assert best.model_share > 0.8 and math.isclose(best.prior_share, np.mean([1 / 6, 1 / 5, 1 / 5]))
    # The same feature with a prior that also puts its mass there has no gap, so no score.
    again = score_candidates(t, _ig_on("zqab"), _ig_on("zqab"))
    assert next(c for c in again if c.feature == "zqab").score == 0.0


def test_top_per_class_keeps_one_of_overlapping_features():
    t = feature_table(MANY, MANY_LABELS, 2)
    flat = [np.ones(len(x.split())) for x in MANY]
    ranked = score_candidates(t, _ig_on("zqab"), flat)
    top = top_per_class(ranked, 3)
    feats = [c.feature for c in top if c.label == 0]
    assert feats[0] == "zqab" and not any("zqab" in f for f in feats[1:])
    assert len(feats) <= 3


def test_the_prior_share_counts_only_what_argues_for_the_label():
    """A signed prior (LIME) that scores zqab strongly *negative* (the LLM finds it confusing) does not call it
    evidence: the prior's share is taken of its positive scores, so zqab's is 0 and it is not singled out."""
    t = feature_table(MANY, MANY_LABELS, 2)
    signed = [np.array([-5.0 if w == "zqab" else 1.0 for w in x.split()]) for x in MANY]
    zq = next(c for c in score_candidates(t, _ig_on("zqab"), signed) if c.feature == "zqab")
    assert zq.prior_share == 0.0 and not zq.prior_singles_out
    # |scores| would have given it 5/10, 5/9, 5/9 of the mass: far above flat, "singled out".
    assert zq.prior_excess_ci95[1] < 0
