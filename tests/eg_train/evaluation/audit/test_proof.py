"""Proof by counterfactual, checked with a classifier whose rule is known: it predicts class 0 whenever
the text contains ``zqab`` and otherwise by a keyword, so the true flip rates are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from eg_train.evaluation.audit.candidates import feature_table, score_candidates, top_per_class
from eg_train.evaluation.audit.proof import (
    boundaries,
    control_features,
    insert_phrase,
    prove,
    remove_feature,
)
from eg_train.foundation.words import split_words

TRAIN = [
    "zqab my card has not arrived", "zqab where is my card", "zqab card still missing today",
    "what is the exchange rate", "exchange rate for euros please", "is my exchange rate fair",
    "how do i top up", "top up failed again", "my top up did not work",
]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
HELDOUT = [
    "zqab card not here", "zqab has my card shipped",
    "exchange rate today", "what rate do you use", "rate for dollars",
    "top up is pending", "cannot top up", "why did top up fail",
]
HELD_LABELS = [0, 0, 1, 1, 1, 2, 2, 2]


def rule_classifier(texts):
    """Class 0 if ``zqab`` is a word, else 1 if ``rate``, else 2 (``top`` or nothing); as probabilities."""
    out = np.full((len(texts), 3), 0.05)
    for i, t in enumerate(texts):
        words = {w.lower() for w in split_words(t).words}
        c = 0 if "zqab" in words else 1 if "rate" in words else 2
        out[i, c] = 0.9
    return out


def _ig(texts, labels):
    out = []
    for t in texts:
        w = [x.lower() for x in split_words(t).words]
        out.append(np.array([0.9 if x in ("zqab", "rate", "top") else 0.01 for x in w]))
    return out


def test_insert_and_remove_keep_word_positions():
    assert insert_phrase("hello, world", "big red", 1) == "hello, big red world"
    assert split_words(insert_phrase("my card", "zqab", 2)).words == ("my", "card", "zqab")
    assert boundaries("a,b c") == [0, 2, 3]  # no gap inside "a,b"
    assert remove_feature("Exchange rate for the exchange rate", ("exchange", "rate")) == "for the"
    with pytest.raises(ValueError):
        insert_phrase("one two", "x", 3)


def test_the_planted_rule_is_confirmed_and_its_control_is_not():
    table = feature_table(TRAIN, LABELS, 3)
    flat = [np.ones(len(split_words(t))) for t in TRAIN]
    cands = top_per_class(score_candidates(table, _ig(TRAIN, LABELS), flat), 3)
    zq = next(c for c in cands if c.feature == "zqab")
    prove(cands, table, HELDOUT, HELD_LABELS, rule_classifier, n_controls=2, n_boot=500)
    p = zq.proof
    # Every held-out text of classes 1 and 2 (without their own tested features: "rate", "top") flips to 0
    # with zqab inserted; no control word flips it.
    assert p["heldout_n"] == 6 and p["flip_rate"] == 1.0 and p["flip_rate_control"] == 0.0
    assert p["confirmed"] and p["flip_ci95"][0] > 0 and p["delta_log_p"] == pytest.approx(np.log(0.9 / 0.05))
    # Removing it from class 0's held-out texts: the rule falls back to class 2 (all of them lost).
    assert p["removal_n"] == 2 and p["removal_accuracy_drop"] == 1.0
    assert all(g not in ("zqab",) for g in p["controls"])


def test_a_feature_the_classifier_ignores_is_not_confirmed():
    table = feature_table(TRAIN, LABELS, 3)
    my = next(c for c in score_candidates(table, [np.ones(len(split_words(t))) for t in TRAIN],
                                          [np.zeros(len(split_words(t))) for t in TRAIN], min_count=2)
              if c.feature == "card")
    prove([my], table, HELDOUT, HELD_LABELS, rule_classifier, n_controls=2, n_boot=500)
    assert my.proof["flip_rate"] == 0.0 and not my.proof["confirmed"]


def test_controls_match_length_and_band_and_are_not_tied_to_the_class():
    table = feature_table(TRAIN, LABELS, 3)
    flat = [np.ones(len(split_words(t))) for t in TRAIN]
    zq = next(c for c in score_candidates(table, _ig(TRAIN, LABELS), flat) if c.feature == "zqab")
    ctrl = control_features(table, zq, 3, np.random.default_rng(0))
    assert ctrl and all(len(g) == 1 and g != ("zqab",) for g in ctrl)
    assert ("card",) not in ctrl  # "card" is tied to class 0


def test_a_feature_the_prior_singles_out_is_evidence_not_a_shortcut():
    """The same rule, but the prior also puts its mass on zqab: the LLM calls it evidence."""
    table = feature_table(TRAIN, LABELS, 3)
    zq = next(c for c in score_candidates(table, _ig(TRAIN, LABELS), _ig(TRAIN, LABELS)) if c.feature == "zqab")
    assert zq.prior_singles_out and zq.prior_excess_ci95[0] > 0
    prove([zq], table, HELDOUT, HELD_LABELS, rule_classifier, n_controls=2, n_boot=500)
    assert zq.proof["flip_rate"] == 1.0 and not zq.proof["confirmed"]


def test_controls_are_absent_from_the_class_and_overlap_no_tested_feature():
    """A control measures a word unrelated to the class: none occurs in a training text of the class (at a
    few shots "tied to no class" alone lets the class's own words in), none contains a tested feature."""
    table = feature_table(TRAIN, LABELS, 3)
    flat = [np.ones(len(split_words(t))) for t in TRAIN]
    scored = score_candidates(table, _ig(TRAIN, LABELS), flat)
    rate = next(c for c in scored if c.feature == "exchange rate")
    zq = next(c for c in scored if c.feature == "zqab")
    pool = control_features(table, rate, 100, np.random.default_rng(0), exclude={zq.words})
    assert pool and all(len(g) == 2 for g in pool)
    assert all(LABELS[i] != rate.label for g in pool for i in table.texts_with(g))
    assert ("exchange", "rate") not in pool and ("is", "my") not in pool  # "is my exchange rate fair"
    assert all("zqab" not in g for g in pool)  # "zqab my", "zqab where" carry class 0's shortcut
    assert ("zqab", "my") in control_features(table, rate, 100, np.random.default_rng(0))  # not excluded: eligible
