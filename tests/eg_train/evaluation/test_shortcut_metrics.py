"""Known-answer tests of the shortcut metrics (eg_train.evaluation.shortcut)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
from torch import nn

from eg_train.evaluation.shortcut import (
    artefact_share,
    prior_artefact_mass,
    share_summary,
    shortcut_metrics,
    shortcut_reliance,
)
from eg_train.foundation.data.shortcut import ShortcutConfig, build_shortcut, shortcut_metadata
from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.words import split_words

NAMES = ["card_blocked", "transfer_timing", "forgot_pin"]
ROWS = [
    ("My card got blocked, help!", 0), ("Why is my card blocked?", 0), ("The card was frozen yesterday.", 0),
    ("How long do transfers take?", 1), ("My transfer hasn't arrived yet.", 1), ("When will the wire transfer land?", 1),
    ("I forgot my PIN.", 2), ("Can't remember my PIN number", 2), ("Reset my PIN, I lost it", 2),
]


def _split(prefix: str = "train") -> LabelledSplit:
    ds = datasets.Dataset.from_dict({"id": [f"{prefix}-{i}" for i in range(len(ROWS))],
                                     "text": [t for t, _ in ROWS], "label": [y for _, y in ROWS]})
    return LabelledSplit(ds, list(NAMES), prefix)


def test_artefact_share_known_answers():
    assert artefact_share(np.array([0.0, 0.0, 5.0, 0.0]), [2]) == 1.0
    assert artefact_share(np.array([1.0, -1.0, 1.0, -1.0]), [0]) == 0.25  # |s|: signs do not cancel
    assert artefact_share(np.array([1.0, 2.0, 3.0]), [2], "minmax") == pytest.approx(1 / 1.5)
    assert artefact_share(np.array([1.0, 2.0, 3.0]), [0], "minmax") == 0.0
    assert math.isnan(artefact_share(np.zeros(3), [1]))
    with pytest.raises(ValueError, match="outside"):
        artefact_share(np.ones(3), [3])


def test_share_summary_top1_and_uniform():
    scores = [np.array([0.1, 0.9, 0.0]), np.array([0.5, 0.25, 0.25, 0.0]), None, np.array([1.0, 2.0])]
    positions = [[1], [2], [0], []]  # the None row and the row without an artefact are skipped
    s = share_summary(scores, positions, ("abs",))
    assert s["n"] == 2
    assert s["share_abs"] == pytest.approx((0.9 + 0.25) / 2)
    assert s["top1"] == 0.5 and s["uniform"] == pytest.approx((1 / 3 + 1 / 4) / 2)


def test_reliance_on_hand_made_predictions():
    # artefact classes of 5 counter-shortcut texts; the model follows the artefact on 3 of them
    assert shortcut_reliance([2, 0, 1, 1, 0], [2, 0, 1, 2, 2]) == pytest.approx(3 / 5)
    assert shortcut_reliance([0, 0], [1, 1]) == 0.0
    with pytest.raises(ValueError):
        shortcut_reliance([0], [0, 1])


class ArtefactOnly(nn.Module):
    """logits = sum of token embeddings, where only the tokens of class c's artefact word embed to
    e_c and every other token (and the baseline PAD) to 0: the model reads nothing but the artefact."""

    def __init__(self, tokenizer, artefacts: list[str]):
        super().__init__()
        self.embeddings = nn.Embedding(len(tokenizer), len(artefacts))
        with torch.no_grad():
            self.embeddings.weight.zero_()
            for c, word in enumerate(artefacts):
                for tid in tokenizer(word, add_special_tokens=False)["input_ids"]:
                    self.embeddings.weight[tid, c] = 1.0

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids, attention_mask):
        e = self.embeddings(input_ids) * attention_mask.unsqueeze(-1)
        return SimpleNamespace(logits=e.sum(1))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from eg_train.foundation.models.resolve import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2").location)


def test_model_on_the_artefact_only_relies_fully(tokenizer):
    data = build_shortcut(_split(), _split("test"), ShortcutConfig(kind="word", seed=0))
    artefacts = shortcut_metadata(data["train"])["artefacts"]
    pieces = [set(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in artefacts]
    assert not (pieces[0] & pieces[1] or pieces[0] & pieces[2] or pieces[1] & pieces[2])  # test premise
    m = shortcut_metrics(ArtefactOnly(tokenizer, artefacts), tokenizer, data, ig_examples=-1, train_ig_examples=-1,
                         ig_steps=8)
    assert m["shortcut_reliance"] == 1.0 and m["counter_accuracy"] == 0.0 and m["aligned_accuracy"] == 1.0
    assert m["clean_accuracy"] == pytest.approx(3 / 9)  # all-zero logits: argmax is class 0
    assert m["ig_n"] == 9 and m["ig_share_abs"] == pytest.approx(1.0, abs=1e-6) and m["ig_top1"] == 1.0
    assert m["ig_share_abs_when_followed"] == pytest.approx(1.0, abs=1e-6)
    assert m["reliance_chance"] == pytest.approx(1 / 3)
    # every "disagrees" group is all wrong, every "agrees" group all right
    assert m["worst_group_accuracy"] == 0.0 and {g["accuracy"] for g in m["groups"].values()} == {0.0, 1.0}
    assert m["predictions"]["counter"] == data["test_counter"]["artefact_class"]
    none = build_shortcut(_split(), _split("test"), ShortcutConfig(kind="none"))
    clean = shortcut_metrics(ArtefactOnly(tokenizer, artefacts), tokenizer, none, ig_examples=-1, train_ig_examples=-1)
    assert math.isnan(clean["shortcut_reliance"]) and math.isnan(clean["worst_group_accuracy"])
    assert clean["clean_accuracy"] == clean["counter_accuracy"]
    # on the training texts (gold = artefact class) all IG mass is on the artefact too
    assert m["train_ig_n"] == 9 and m["train_ig_share_abs"] == pytest.approx(1.0, abs=1e-6)
    assert m["train_ig_share_minmax"] == pytest.approx(1.0, abs=1e-6) and m["train_ig_top1"] == 1.0


def test_prior_mass_from_a_cache(tmp_path):
    from priors.cache import PriorCache, make_record

    data = build_shortcut(_split(), _split("test"), ShortcutConfig(kind="decoy", seed=1))
    train = data["train"]
    split = LabelledSplit(train.select_columns(["id", "text", "label"]), list(NAMES), "shortcut")
    cache = PriorCache(tmp_path / "cache")
    on, flat = [], []
    for r in train:
        words = split_words(r["text"]).words
        (k,) = r["artefact_positions"]
        on.append(make_record(r["id"], r["text"], r["label"], words, np.eye(len(words))[k] * 2.0, "on", "m", "h1"))
        flat.append(make_record(r["id"], r["text"], r["label"], words, np.arange(len(words), dtype=float), "ramp", "m", "h2"))
    cache.append(on, "on", "h1")
    cache.append(flat, "ramp", "h2")
    out = prior_artefact_mass(tmp_path / "cache", split, train["artefact_positions"],
                              {"on": ["on"], "ramp": ["ramp"], "fused": ["on", "ramp"]})
    assert out["on"]["share_abs"] == 1.0 and out["on"]["share_minmax"] == 1.0 and out["on"]["top1"] == 1.0
    # closed form for the ramp 0..n-1: share of word k is k / sum(0..n-1)
    want = np.mean([k / (n * (n - 1) / 2) for k, n in
                    ((p[0], len(split_words(t))) for p, t in zip(train["artefact_positions"], train["text"]))])
    assert out["ramp"]["share_abs"] == pytest.approx(want) and out["ramp"]["share_minmax"] == pytest.approx(want)
    # fused mean of min-max normalised (1 on k, 0 elsewhere) and (i / (n-1)): word k has (1 + k/(n-1)) / 2
    fused = []
    for p, t in zip(train["artefact_positions"], train["text"]):
        n, k = len(split_words(t)), p[0]
        v = (np.eye(n)[k] + np.arange(n) / (n - 1)) / 2
        fused.append(v[k] / v.sum())
    assert out["fused"]["share_abs"] == pytest.approx(np.mean(fused), rel=1e-5)
    with pytest.raises(ValueError, match="position lists"):
        prior_artefact_mass(tmp_path / "cache", split, [[0]], {"on": ["on"]})


def test_worst_group_accuracy_known_answer():
    from eg_train.evaluation.shortcut import group_accuracies, worst_group_accuracy

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    artefacts = [0, 0, 1, 1, 1, 1, 0, 0]  # per class: two texts agreeing, two disagreeing
    follows = [0, 0, 1, 1, 1, 1, 0, 0]  # a model that predicts the artefact's class
    assert worst_group_accuracy(follows, labels, artefacts) == 0.0
    groups = group_accuracies(follows, labels, artefacts)
    assert groups == {"0:agrees": {"n": 2, "accuracy": 1.0}, "0:disagrees": {"n": 2, "accuracy": 0.0},
                      "1:agrees": {"n": 2, "accuracy": 1.0}, "1:disagrees": {"n": 2, "accuracy": 0.0}}
    one_wrong = [0, 0, 0, 1, 1, 1, 1, 1]
    assert worst_group_accuracy(one_wrong, labels, artefacts) == 0.5
    assert math.isnan(worst_group_accuracy([0, 1], [0, 1], [-1, -1]))  # no artefact: no group


def test_confusion_rate_and_reliance_over_confusion():
    from eg_train.evaluation.shortcut import confusion_rate, reliance_over_confusion

    assert confusion_rate([1, 2, 0, 0], [1, 0, 2, 0]) == 0.5
    assert reliance_over_confusion(0.8, 0.2) == pytest.approx(4.0)
    assert reliance_over_confusion(0.3, 0.0) == float("inf") and math.isnan(reliance_over_confusion(0.0, 0.0))
