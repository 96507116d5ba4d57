import json
from dataclasses import replace

import pytest

from eg_train.foundation.data.source import LabelledSplit
from eg_train.evaluation.attacks import AttackConfig, AttackFileError, build_attacks, load_attacks, save_attacks
from eg_train.evaluation.attacks.core import TextState
from eg_train.evaluation.attacks.synonyms import EmbeddingNeighbours
from eg_train.evaluation.attacks.lexicon import STOPWORDS, build_lexicon, normalise_word
from eg_train.foundation.words import split_words


# The 10-class fixture has 40 training texts per class: looser keyword thresholds than the
# defaults (tuned for full Banking77) so that most test texts get an admissible edit.
CFG = AttackConfig(seed=0, min_z=1.0, min_gold_docs=1)


@pytest.fixture(scope="module")
def attacks(train_split, test_split):
    return build_attacks(train_split, test_split, CFG)


def test_text_state_edits_round_trip():
    s = TextState.from_text("My card, it hasn't arrived?")
    assert s.text == "My card, it hasn't arrived?"
    s2 = s.insert(2, "delivery").insert(6, "soon")  # before "it"; after the last word
    assert s2.text == "My card, delivery it hasn't arrived soon?"
    s3 = s2.replace_word(0, "your")
    assert s3.text == "Your card, delivery it hasn't arrived soon?"
    assert [e.op for e in s3.edits] == ["insert", "insert", "replace"]


def test_deterministic_given_seed(train_split, test_split, attacks):
    again = build_attacks(train_split, test_split, replace(CFG, attacks=("keyword_addition",)))
    assert again["keyword_addition"]["text"] == attacks["keyword_addition"]["text"]
    other = build_attacks(train_split, test_split, replace(CFG, seed=1, attacks=("keyword_addition",)))
    assert other["keyword_addition"]["text"] != attacks["keyword_addition"]["text"]


def test_keyword_addition_keeps_the_original_and_obeys_constraints(train_split, attacks):
    ds = attacks["keyword_addition"]
    lex = build_lexicon(train_split.dataset["text"], train_split.dataset["label"], train_split.label_names)
    assert sum(ds["changed"]) > len(ds) // 2
    for r in ds:
        edits = json.loads(r["edits"])
        assert len(edits) <= 2 and all(e["op"] == "insert" for e in edits)
        assert r["changed"] == bool(edits)
        words = list(split_words(r["text"]).words)
        inserted = [e["new"] for e in edits]
        remaining = list(words)
        for w in inserted:
            remaining.remove(w)
        assert remaining == list(split_words(r["original_text"]).words)  # every original word, in order
        orig = {normalise_word(w) for w in split_words(r["original_text"]).words}
        for w in inserted:
            assert w not in STOPWORDS and w not in orig
            assert lex.docs_with(w, r["label"]) >= CFG.min_gold_docs  # IntentCompatibility
            assert lex.log_odds_z(r["target_label"], r["label"])[lex.index[w]] >= CFG.min_z
            assert w not in {k for k, _ in lex.keywords(r["target_label"], top=3, min_z=0.0)}  # AvoidDefiningWords
        assert r["target_label"] == lex.confusable(r["label"])[0]


def test_keyword_replacement_keeps_gold_evidence(train_split, attacks):
    ds = attacks["keyword_replacement"]
    lex = build_lexicon(train_split.dataset["text"], train_split.dataset["label"], train_split.label_names)
    z_gold = {c: lex.log_odds_z(c) for c in range(len(lex.label_names))}
    synonyms = EmbeddingNeighbours.from_pretrained(CFG.synonym_model, lex.vocab, CFG.min_similarity)
    assert sum(ds["changed"]) > 0
    for r in ds:
        edits = json.loads(r["edits"])
        orig = list(split_words(r["original_text"]).words)
        new = list(split_words(r["text"]).words)
        assert len(new) == len(orig)
        changed = [i for i, (a, b) in enumerate(zip(orig, new)) if a != b]
        assert sorted(changed) == sorted(e["position"] for e in edits)
        if edits:
            z = z_gold[r["label"]]
            best = max(range(len(orig)), key=lambda i: (z[lex.index[normalise_word(orig[i])]] if normalise_word(orig[i]) in lex.index else 0.0, -i))
            assert best not in changed  # PreserveGoldEvidence
            assert r["goal_gain"] > 0
        for e in edits:  # the new word is a near-synonym of the old one in the fixed embedding table
            assert e["new"].lower() in [w for w, _ in synonyms.neighbours(normalise_word(e["old"]))]


def test_save_load_and_reject_other_dataset(tmp_path, test_split, attacks):
    path = save_attacks(attacks, tmp_path / "att")
    loaded = load_attacks(path, test_split)
    assert loaded["keyword_addition"]["text"] == attacks["keyword_addition"]["text"]
    with pytest.raises(FileExistsError, match="overwrite"):
        save_attacks(attacks, path)
    other = LabelledSplit(test_split.dataset.select(range(10)), test_split.label_names, "other.csv")
    with pytest.raises(AttackFileError, match="built for test set"):
        load_attacks(path, other)
    relabelled = LabelledSplit(test_split.dataset, [n + "_x" for n in test_split.label_names], "x.csv")
    with pytest.raises(AttackFileError, match="labels"):
        load_attacks(path, relabelled)
    with pytest.raises(AttackFileError, match="not found"):
        load_attacks(tmp_path / "missing", test_split)
