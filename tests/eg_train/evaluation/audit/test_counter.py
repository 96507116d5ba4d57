"""The counter-shortcut split and the penalty positions built from an audit's confirmed features."""

from __future__ import annotations

import datasets
import pytest

from eg_train.evaluation.audit.counter import counter_shortcut_split, feature_positions
from eg_train.foundation.data.source import DataError, LabelledSplit
from eg_train.foundation.words import split_words

NAMES = ["card", "rate", "top_up"]
AUDIT = {"class_names": NAMES, "confirmed": [
    {"feature": "zqab", "label": 0, "position": "any"},
    {"feature": "as usual", "label": 1, "position": "last"},
]}


def _split(texts, labels):
    ds = datasets.Dataset.from_dict({"id": [f"v-{i}" for i in range(len(texts))], "text": texts, "label": labels})
    return LabelledSplit(ds, NAMES, "validation")


def test_every_text_gets_each_other_class_feature_at_its_recorded_position():
    held = _split(["where is my card", "what rate, today?", "top up failed"], [0, 1, 2])
    out = counter_shortcut_split(AUDIT, held, seed=3)
    rows = out.dataset.to_list()
    # card text: only class 1's feature; rate text: only class 0's; top-up text: both.
    assert [(r["id"], r["feature"]) for r in rows] == [("v-0~1", "as usual"), ("v-1~0", "zqab"), ("v-2~0", "zqab"),
                                                      ("v-2~1", "as usual")]
    for r in rows:
        words = [w.lower() for w in split_words(r["text"]).words]
        assert [words[k] for k in r["feature_positions"]] == r["feature"].split()
        assert r["label"] == held.dataset[int(r["id"].split("~")[0][2:])]["label"]  # gold unchanged
        assert r["original_text"] in held.dataset["text"]
    last = [r for r in rows if r["feature"] == "as usual"]
    assert all(r["text"].endswith("as usual") for r in last)
    assert counter_shortcut_split(AUDIT, held, per_text=1, seed=0).dataset.num_rows == 3


def test_a_text_loses_its_own_class_features_before_it_gets_another_class_one():
    # A user's validation texts carry the shortcut as training does: the counter text moves it.
    held = _split(["where is my zqab card", "what rate, today? as usual"], [0, 1])
    rows = counter_shortcut_split(AUDIT, held, seed=0).dataset.to_list()
    card, rate = rows
    assert "zqab" not in card["text"].lower().split() and card["text"].endswith("as usual")
    assert card["original_text"] == "where is my zqab card"
    assert rate["text"].lower().count("as usual") == 0 and "zqab" in rate["text"]
    words = [w.lower() for w in split_words(rate["text"]).words]
    assert [words[k] for k in rate["feature_positions"]] == ["zqab"]


def test_the_shortcut_free_split_drops_every_confirmed_feature():
    from eg_train.evaluation.audit.counter import shortcut_free_split

    held = _split(["where is my zqab card", "what rate, today? as usual", "top up failed"], [0, 1, 2])
    free = shortcut_free_split(AUDIT, held)
    assert free.dataset["text"] == ["where is my card", "what rate, today?", "top up failed"]
    assert free.dataset["label"] == [0, 1, 2]
    assert shortcut_free_split({"class_names": NAMES, "confirmed": []}, held) is held


def test_no_confirmed_feature_is_a_clear_error():
    with pytest.raises(DataError, match="confirmed no feature"):
        counter_shortcut_split({"class_names": NAMES, "confirmed": []}, _split(["a"], [0]))


def test_positions_cover_every_occurrence():
    train = _split(["zqab card zqab", "as usual my rate", "nothing here"], [0, 1, 2])
    pos = feature_positions(train, [("zqab",), ("as", "usual")])
    assert [(p["id"], p["row"], p["positions"]) for p in pos] == [("v-0", 0, [0, 2]), ("v-1", 1, [0, 1])]
