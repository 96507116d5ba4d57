"""Fault 12: a negation or antonym is never a substitution candidate (keyword replacement and recipes)."""

import json

import datasets
import pytest

from eg_train.evaluation.attacks import AttackConfig, build_attacks
from eg_train.evaluation.attacks.lexicon import build_lexicon
from eg_train.evaluation.attacks.negation import flips_meaning
from eg_train.evaluation.attacks.synonyms import EmbeddingNeighbours
from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.words import split_words


@pytest.mark.parametrize("old,new", [
    ("incorrect", "correct"), ("correct", "incorrect"), ("able", "unable"), ("activated", "deactivate"),
    ("careless", "careful"), ("declined", "accepted"), ("wrong", "right"), ("top", "bottom"),
    ("credit", "debit"), ("not", "never"), ("cannot", "can"), ("locked", "unlocked"), ("valid", "invalid"),
])
def test_negations_and_antonyms_flip(old, new):
    assert flips_meaning(old, new)


@pytest.mark.parametrize("old,new", [
    ("incorrect", "wrong"), ("money", "funds"), ("fees", "fee"), ("arrived", "arrive"), ("card", "cards"),
    ("withdrawing", "withdrew"), ("Incorrect", "incorrect"),
])
def test_synonyms_and_inflections_do_not_flip(old, new):
    assert not flips_meaning(old, new)


def test_wordnet_antonyms_are_used_when_given():
    assert not flips_meaning("generous", "stingy")  # not in the built-in list
    assert flips_meaning("generous", "stingy", antonyms=lambda w: {"stingy"} if w == "generous" else set())


def _split(rows, labels, source):
    ds = datasets.Dataset.from_dict({"id": [f"{source}-{i}" for i in range(len(rows))],
                                     "text": [t for t, _ in rows], "label": [labels.index(y) for _, y in rows]})
    return LabelledSplit(ds, labels, source)


def test_keyword_replacement_never_swaps_incorrect_for_correct():
    """The demo's "the exchange rate is incorrect" -> "...is correct": the real MiniLM table makes
    ``correct`` the nearest neighbour of ``incorrect``, and it is a keyword of the confusable class."""
    labels = ["wrong_exchange_rate", "exchange_rate"]
    train = _split([
        ("the exchange rate is incorrect", labels[0]), ("my exchange rate was incorrect", labels[0]),
        ("why was my rate incorrect", labels[0]), ("is that rate correct or not", labels[0]),
        ("the rate applied looks incorrect", labels[0]), ("i doubt the rate is correct", labels[0]),
        ("is the exchange rate correct", labels[1]), ("which exchange rate is correct", labels[1]),
        ("what is the correct rate", labels[1]), ("tell me the correct exchange rate", labels[1]),
        ("what exchange rate do you use", labels[1]), ("how is the exchange rate set", labels[1]),
    ], labels, "train")
    test = _split([("The exchange rate is incorrect.", labels[0]), ("That rate was incorrect", labels[0])], labels, "test")
    cfg = AttackConfig(attacks=("keyword_replacement",), min_z=0.0, min_gold_docs=1, preserve_top_evidence=0,
                       avoid_defining_words=0, min_count=1, folds=2, max_modification_rate=1.0)
    lex = build_lexicon(train.dataset["text"], train.dataset["label"], labels, min_count=1, folds=2)
    synonyms = EmbeddingNeighbours.from_pretrained("all-minilm-l6-v2", lex.vocab, 0.5)
    # Without the constraint the attack would take it: a neighbour with a positive goal gain.
    assert "correct" in [w for w, _ in synonyms.neighbours("incorrect")]
    z = lex.log_odds_z(1, 0)
    assert z[lex.index["correct"]] - z[lex.index["incorrect"]] > 0
    ds = build_attacks(train, test, cfg, synonyms)["keyword_replacement"]
    for row in ds:
        for e in json.loads(row["edits"]):
            assert not flips_meaning(e["old"], e["new"]), e
        assert "correct" not in [w.lower() for w in split_words(row["text"]).words]
