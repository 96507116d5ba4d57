"""The audit's label-relatedness check: the rank p-value against a hand-made embedding, label names as
words, the null's draw, the verdict's effect on ``confirmed``, and a known answer with the real sentence
encoder (all-MiniLM-L6-v2): a label's own keyword is evidence, a planted unrelated noun is not."""

from __future__ import annotations

import numpy as np
import pytest

from eg_train.evaluation.audit.candidates import feature_table, score_candidates
from eg_train.evaluation.audit.label_check import has_words, label_check, label_words, null_features
from eg_train.evaluation.audit.run import LATER_DEFAULTS, AuditConfig
from eg_train.foundation.errors import ConfigError


def test_label_names_read_as_words():
    assert label_words("card_arrival") == "card arrival"
    assert label_words("CardArrival") == "card arrival"
    assert label_words("top-up/failed") == "top up failed"
    assert has_words(["card_arrival", "exchange_rate"])
    assert not has_words(["0", "1", "2"]) and not has_words(["LABEL_0", "LABEL_1"])


TEXTS = ["my card has not arrived", "card not here yet", "where is my card",
         "what is the rate", "the rate today", "rate for euros"]
LABELS = [0, 0, 0, 1, 1, 1]


def _candidates():
    table = feature_table(TEXTS, LABELS, 2, max_n=1)
    scored = score_candidates(table, [np.ones(len(t.split())) for t in TEXTS], [None] * len(TEXTS), min_count=2)
    for c in scored:
        c.proof["confirmed"] = True
    return table, {(c.feature, c.label): c for c in scored}


def test_the_rank_p_value_counts_the_null_features_at_least_as_close_to_the_label():
    table, cands = _candidates()
    card, rate = cands[("card", 0)], cands[("rate", 1)]
    words = sorted({" ".join(f) for f in table.occurrences if len(f) == 1})
    # A hand-made embedding: the two labels are orthogonal axes; "card" lies on label 0's axis,
    # every other word is spread between them by its index, "rate" is the farthest from label 0.
    vec = {"card arrival": np.array([1.0, 0.0]), "exchange rate": np.array([0.0, 1.0])}
    for k, w in enumerate(words):
        angle = (k + 1) / (len(words) + 2) * np.pi / 2
        vec[w] = np.array([np.cos(angle), np.sin(angle)])
    vec["card"], vec["rate"] = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    def embed(texts):
        return np.stack([vec[t] for t in texts])

    label_check([card, rate], table, ["card_arrival", "exchange_rate"], embed, alpha=0.2)
    null = [w for w in words if w != "card"]  # the feature itself is no null of its own
    closer = sum(float(vec[w] @ vec["card arrival"]) >= 1.0 for w in null)
    assert card.proof["label_null_n"] == len(null)
    assert card.proof["label_p"] == pytest.approx((1 + closer) / (1 + len(null)), abs=1e-6)
    assert card.proof["label_similarity"] == pytest.approx(1.0)
    assert card.proof["label_evidence"] and card.proof["cleared_by_label"] and not card.proof["confirmed"]
    assert rate.proof["label_evidence"] and not rate.proof["confirmed"]


def test_at_a_strict_level_nothing_is_cleared_and_unnamed_labels_give_no_verdict():
    table, cands = _candidates()
    rng = np.random.default_rng(0)

    def embed(texts):  # unrelated random directions
        v = rng.normal(size=(len(texts), 16))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    some = list(cands.values())
    label_check(some, table, ["0", "1"], embed)
    assert all(c.proof["label_evidence"] is False and c.proof["confirmed"] for c in some)
    label_check(some, table, ["card_arrival", "exchange_rate"], embed, alpha=1e-6)
    assert all(not c.proof["label_evidence"] and c.proof["confirmed"] for c in some)


def test_the_null_is_a_seeded_draw_of_the_features_of_the_same_length():
    table = feature_table(TEXTS, LABELS, 2, max_n=2)
    every = null_features(table, 2, 10_000, seed=0)
    assert every == sorted(every) and all(len(f.split()) == 2 for f in every)
    few = null_features(table, 2, 4, seed=0)
    assert len(few) == 4 and set(few) <= set(every) and few == null_features(table, 2, 4, seed=0)


def test_the_label_settings_stay_out_of_audit_keys_while_unset():
    cfg = AuditConfig()
    assert not set(LATER_DEFAULTS) & set(cfg.keyed())
    assert AuditConfig(label_encoder="all-minilm-l6-v2").keyed()["label_encoder"] == "all-minilm-l6-v2"
    with pytest.raises(ConfigError, match="label_alpha"):
        AuditConfig(label_alpha=1.5)


def test_known_answer_with_the_real_sentence_encoder():
    from eg_train.evaluation.attacks.similarity import SentenceEncoder

    texts = ["my card has not arrived yet", "when will my new card arrive", "the card still has not come",
             "what is the exchange rate", "which rate do you use for euros", "is the rate good today",
             "hyena how do i top up", "top up failed hyena", "my top up did not work hyena"]
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    table = feature_table(texts, labels, 3, max_n=1)
    scored = score_candidates(table, [np.ones(len(t.split())) for t in texts], [None] * len(texts), min_count=2)
    cands = {(c.feature, c.label): c for c in scored}
    for c in cands.values():
        c.proof["confirmed"] = True
    picked = [cands[("rate", 1)], cands[("hyena", 2)]]
    label_check(picked, table, ["card_arrival", "exchange_rate", "top_up_failed"], SentenceEncoder().embed, alpha=0.1)
    assert picked[0].proof["label_evidence"] and not picked[0].proof["confirmed"]
    assert not picked[1].proof["label_evidence"] and picked[1].proof["confirmed"]


def test_the_report_shows_the_label_check_only_when_it_ran():
    from eg_train.evaluation.audit.report import render_audit_section

    cand = {"class": "exchange_rate", "feature": "rate", "position": "any", "count": 3, "count_total": 3,
            "association": 2.0, "association_ci95": [0.5, 3.5], "model_share": 0.4, "prior_share": 0.1,
            "uniform_share": 0.2, "score": 0.15, "tested": True, "flip_rate": 0.5, "flip_rate_control": 0.0,
            "flip_ci95": [0.2, 0.8], "confirmed": False}
    doc = {"counts": {"train": 6, "train_with_prior": 6, "train_with_ig": 6, "features": 30, "tested": 1,
                      "confirmed": 0, "heldout": 6}, "candidates": [cand], "confirmed": [], "examples": []}
    for fmt in ("markdown", "html"):
        assert "label names" not in render_audit_section(doc, fmt)
    cand.update(label_p=0.004, label_evidence=True)
    for fmt in ("markdown", "html"):
        out = render_audit_section(doc, fmt)
        assert "label names (rank p)" in out and "p 0.004: evidence" in out
    md = render_audit_section(doc, "markdown").splitlines()
    header = next(line for line in md if line.startswith("| class | feature | position | count | model share"))
    row = next(line for line in md if line.startswith("| exchange_rate"))
    assert header.count("|") == row.count("|")  # the column is in both
