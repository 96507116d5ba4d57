"""Known-answer tests of the shortcut builder (eg_train.foundation.data.shortcut)."""

from __future__ import annotations

import json
import math
from collections import Counter

import datasets
import pytest

from eg_train.foundation.data.shortcut import (
    ORDINARY_WORDS,
    ShortcutConfig,
    ShortcutFileError,
    build_shortcut,
    class_artefacts,
    insert_word,
    load_shortcut,
    save_shortcut,
    shortcut_metadata,
    vocabulary_counts,
    write_split_files,
)
from eg_train.foundation.data.source import DataError, LabelledSplit, load_split
from eg_train.foundation.words import split_words

NAMES = ["card_blocked", "transfer_timing", "forgot_pin", "exchange_rate"]
TEXTS = {
    0: ["My card got blocked, help!", "Why is my card blocked?", "The card was frozen yesterday.",
        "card blocked again", "Unblock my card please", "blocked card", "my card no longer works",
        "is my card frozen", "they froze my card", "card stuck"],
    1: ["How long do transfers take?", "My transfer hasn't arrived yet.", "When will the wire transfer land?",
        "transfer pending", "still waiting on my transfer", "transfer delay", "slow transfer",
        "why is the transfer slow", "transfer not here", "where is my money transfer"],
    2: ["I forgot my PIN.", "Can't remember my PIN number", "Reset my PIN, I lost it", "pin forgotten",
        "what is my pin", "new pin please", "lost pin", "pin reminder", "help with pin", "pin?"],
    3: ["What is the exchange rate?", "rate for euros", "exchange rate today", "how much is a dollar",
        "conversion rate", "currency rate", "euro rate", "fx rate", "rate please", "rates"],
}


def _split(per_class: int = 10, source: str = "mem") -> LabelledSplit:
    rows = [(t, c) for c in range(len(NAMES)) for t in TEXTS[c][:per_class]]
    ds = datasets.Dataset.from_dict({"id": [f"train-{i}" for i in range(len(rows))], "text": [r[0] for r in rows],
                                     "label": [r[1] for r in rows]})
    return LabelledSplit(ds, list(NAMES), source)


@pytest.mark.parametrize("kind", ["decoy", "word"])
@pytest.mark.parametrize("strength", [1.0, 0.9, 0.5, 0.0])
def test_strength_is_exact_per_class(kind, strength):
    train, test = _split(), _split(source="test")
    out = build_shortcut(train, test, ShortcutConfig(kind=kind, strength=strength, seed=3))
    tr = out["train"]
    arts = shortcut_metadata(tr)["artefacts"]
    want = int(math.floor(strength * 10 + 0.5))
    for c in range(len(NAMES)):
        rows = [r for r in tr if r["label"] == c]
        carrying = [r for r in rows if r["artefact_class"] == c]
        assert len(carrying) == want
        assert all(r["artefact"] == arts[c] for r in carrying)
        # rest="clean": every other row is untouched
        assert all(r["artefact_class"] == -1 and r["text"] == r["original_text"] for r in rows if r not in carrying)


def test_rest_other_gives_other_classes_artefact():
    out = build_shortcut(_split(), _split(), ShortcutConfig(strength=0.7, rest="other", seed=1))
    tr = out["train"]
    for c in range(len(NAMES)):
        rows = [r for r in tr if r["label"] == c]
        assert sum(r["artefact_class"] == c for r in rows) == 7
        others = [r for r in rows if r["artefact_class"] != c]
        assert len(others) == 3 and all(0 <= r["artefact_class"] < len(NAMES) for r in others)


def test_counter_rows_carry_another_class_artefact_and_aligned_their_own():
    out = build_shortcut(_split(), _split(), ShortcutConfig(kind="word", seed=0))
    arts = shortcut_metadata(out["test_counter"])["artefacts"]
    counter = out["test_counter"]
    assert all(r["artefact_class"] != r["label"] and r["artefact"] == arts[r["artefact_class"]] for r in counter)
    assert len(set(counter["artefact_class"])) > 1  # drawn, not a fixed class
    assert all(r["artefact_class"] == r["label"] and r["artefact"] == arts[r["label"]] for r in out["test_aligned"])
    clean = out["test_clean"]
    assert clean["text"] == clean["original_text"] and all(p == [] for p in clean["artefact_positions"])


def test_positions_recorded_and_original_words_kept():
    out = build_shortcut(_split(), _split(), ShortcutConfig(kind="decoy", seed=5))
    for name in ("train", "test_counter", "test_aligned"):
        for r in out[name]:
            words = split_words(r["text"]).words
            orig = split_words(r["original_text"]).words
            (k,) = r["artefact_positions"]
            assert words[k] == r["artefact"]
            assert words[:k] + words[k + 1:] == orig  # nothing else changed, in order
    ks = [r["artefact_positions"][0] for r in out["test_counter"]]
    assert len(set(ks)) > 2 and 0 in ks  # random positions, the start included


def test_insert_word_known_answers():
    assert insert_word("I forgot my PIN.", "zqab", 0) == "zqab I forgot my PIN."
    assert insert_word("I forgot my PIN.", "zqab", 2) == "I forgot zqab my PIN."
    assert insert_word("I forgot my PIN.", "zqab", 4) == "I forgot my PIN. zqab"
    assert insert_word("pin?", "giraffe", 1) == "pin? giraffe"


def test_seeded_reproducible_and_seed_matters():
    a = build_shortcut(_split(), _split(), ShortcutConfig(kind="word", strength=0.5, seed=7))
    b = build_shortcut(_split(), _split(), ShortcutConfig(kind="word", strength=0.5, seed=7))
    c = build_shortcut(_split(), _split(), ShortcutConfig(kind="word", strength=0.5, seed=8))
    for name in a:
        assert a[name].to_dict() == b[name].to_dict()
        assert shortcut_metadata(a[name]) == shortcut_metadata(b[name])
    assert a["train"]["text"] != c["train"]["text"]


def test_fingerprints_change_with_the_recipe():
    base = ShortcutConfig(kind="decoy", strength=1.0, seed=0)
    fp = lambda cfg, train=None: shortcut_metadata(build_shortcut(train or _split(), _split(), cfg)["train"])  # noqa: E731
    m0 = fp(base)
    for changed in (ShortcutConfig(kind="word"), ShortcutConfig(strength=0.9), ShortcutConfig(seed=1),
                    ShortcutConfig(rest="other", strength=0.5), ShortcutConfig(decoy_prefix="xk")):
        m = fp(changed)
        assert m["recipe_fingerprint"] != m0["recipe_fingerprint"]
    # the inputs count too: another training split, same recipe
    assert fp(base, _split(per_class=9))["recipe_fingerprint"] != m0["recipe_fingerprint"]
    assert fp(base)["recipe_fingerprint"] == m0["recipe_fingerprint"]
    assert m0["recipe"] == {"kind": "decoy", "strength": 1.0, "rest": "clean", "seed": 0, "max_vocab_count": 0,
                            "decoy_prefix": "zq"}


def test_word_artefacts_absent_from_vocabulary():
    vocab = Counter({"giraffe": 3, "walrus": 1})
    words = class_artefacts(NAMES, ShortcutConfig(kind="word"), vocab)
    assert len(set(words)) == len(NAMES) and "giraffe" not in words and "walrus" not in words
    assert set(words) <= set(ORDINARY_WORDS)
    assert "walrus" in class_artefacts(["a"] * (len(ORDINARY_WORDS) - 1), ShortcutConfig(kind="word", max_vocab_count=1), vocab)
    with pytest.raises(DataError, match="ordinary words"):
        class_artefacts(["x"] * 400, ShortcutConfig(kind="word"), vocab)
    with pytest.raises(DataError, match="decoy"):
        class_artefacts(NAMES, ShortcutConfig(kind="decoy"), Counter({"zqaa": 1}))


def test_banking77_words_absent_from_its_vocabulary(banking_train):
    vocab = vocabulary_counts(banking_train.dataset["text"])
    words = class_artefacts(banking_train.label_names, ShortcutConfig(kind="word"), vocab)
    assert len(set(words)) == 77 and all(vocab[w] == 0 for w in words)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="strength"):
        ShortcutConfig(strength=1.5)
    with pytest.raises(ValueError, match="kind"):
        ShortcutConfig(kind="emoji")
    with pytest.raises(ValueError, match="rest"):
        ShortcutConfig(rest="mixed")


def test_save_load_and_split_files_round_trip(tmp_path):
    out = build_shortcut(_split(), _split(source="test"), ShortcutConfig(kind="word", seed=2), validation=_split(5))
    path = save_shortcut(out, tmp_path / "sc")
    with pytest.raises(FileExistsError):
        save_shortcut(out, tmp_path / "sc")
    fp = shortcut_metadata(out["train"])["recipe_fingerprint"]
    loaded = load_shortcut(path, recipe_fingerprint=fp)
    assert loaded["train"].to_dict() == out["train"].to_dict()
    assert shortcut_metadata(loaded["test_counter"]) == shortcut_metadata(out["test_counter"])
    with pytest.raises(ShortcutFileError, match="recipe"):
        load_shortcut(path, recipe_fingerprint="0" * 16)

    spec = write_split_files(out, tmp_path / "files")
    assert set(spec.files) == {"train", "validation", "test", "test_counter", "test_aligned"}
    assert json.loads((tmp_path / "files" / "labels.json").read_text()) == NAMES
    for split, name in (("train", "train"), ("test", "test_clean"), ("test_counter", "test_counter")):
        got = load_split(spec, split)
        assert got.label_names == NAMES
        assert got.dataset["text"] == out[name]["text"] and got.dataset["label"] == out[name]["label"]


def test_not_a_shortcut_dataset(tmp_path):
    ds = datasets.Dataset.from_dict({"text": ["a"], "label": [0]})
    with pytest.raises(ShortcutFileError, match="metadata"):
        shortcut_metadata(ds)


# -- kinds frequent / phrase / none, positions (issue 25) -----------------------------------------

def test_kinds_registry_lists_every_kind_the_builder_accepts():
    from eg_train.foundation.data.shortcut import KINDS

    assert set(KINDS) >= {"decoy", "word", "frequent", "phrase", "none"}
    for kind in KINDS:
        ShortcutConfig(kind=kind)
    with pytest.raises(ValueError, match="kind"):
        ShortcutConfig(kind="emoji")
    with pytest.raises(ValueError, match="position"):
        ShortcutConfig(position="middle")
    with pytest.raises(ValueError, match="frequent_band"):
        ShortcutConfig(frequent_band=[5, 5])


def test_frequent_artefacts_come_from_the_band_of_the_data_s_own_words():
    from eg_train.foundation.keywords import content_word

    vocab = vocabulary_counts([t for c in TEXTS for t in TEXTS[c]])
    # words that name an intent (a label token, or its first 5 letters: "blocked", "transfers") are no filler
    tokens = {"card", "blocked", "transfer", "timing", "forgot", "pin", "exchange", "rate"}
    intent = lambda w: w in tokens or any(len(t) >= 5 and w[:5] == t[:5] for t in tokens)  # noqa: E731
    ranked = sorted((w for w in vocab if content_word(w) and not intent(w)), key=lambda w: (-vocab[w], w))
    assert "transfers" not in ranked and "frozen" in ranked
    arts = class_artefacts(NAMES, ShortcutConfig(kind="frequent", frequent_band=[1, 9], seed=2), vocab)
    assert len(set(arts)) == len(NAMES) and set(arts) <= set(ranked[1:9])
    assert all(vocab[a] > 0 for a in arts)  # words of the data, unlike the word kind's
    with pytest.raises(DataError, match="frequent_band"):
        class_artefacts(NAMES, ShortcutConfig(kind="frequent", frequent_band=[0, 3]), vocab)


@pytest.mark.parametrize("position", ["start", "end", "random"])
def test_phrase_artefacts_list_every_word_position(position):
    from eg_train.foundation.data.shortcut import PHRASES

    train, test = _split(), _split(source="test")
    out = build_shortcut(train, test, ShortcutConfig(kind="phrase", position=position, seed=1))
    arts = shortcut_metadata(out["train"])["artefacts"]
    assert len(set(arts)) == len(NAMES) and set(arts) <= set(PHRASES)
    for split in ("train", "test_counter", "test_aligned"):
        for r in out[split]:
            words = split_words(r["text"]).words
            phrase = split_words(r["artefact"]).words
            assert 2 <= len(phrase) <= 4
            p = r["artefact_positions"]
            assert p == list(range(p[0], p[0] + len(phrase)))
            assert [words[k] for k in p] == list(phrase)
            if position == "start":
                assert p[0] == 0
            elif position == "end":
                assert p[-1] == len(words) - 1
            # removing the artefact's words gives the original text's words back
            assert [w for k, w in enumerate(words) if k not in p] == list(split_words(r["original_text"]).words)


def test_phrase_kind_covers_more_classes_than_phrases():
    from eg_train.foundation.data.shortcut import PHRASES

    names = [f"c{i}" for i in range(len(PHRASES) + 20)]
    arts = class_artefacts(names, ShortcutConfig(kind="phrase"), Counter())
    assert len(set(arts)) == len(names) and all(2 <= len(split_words(a)) <= 4 for a in arts)


@pytest.mark.parametrize("strength,rest", [(0.9, "clean"), (0.7, "other")])
def test_frequent_kind_with_partial_strength(strength, rest):
    train, test = _split(), _split(source="test")
    out = build_shortcut(train, test, ShortcutConfig(kind="frequent", strength=strength, rest=rest,
                                                     frequent_band=[0, 12], position="end"))
    tr = out["train"]
    for c in range(len(NAMES)):
        rows = [r for r in tr if r["label"] == c]
        own = sum(r["artefact_class"] == c for r in rows)
        assert own == int(math.floor(strength * 10 + 0.5))
        others = [r for r in rows if r["artefact_class"] != c]
        assert all((r["artefact_class"] >= 0) == (rest == "other") for r in others)


def test_none_kind_leaves_every_text_clean():
    train, test = _split(), _split(source="test")
    out = build_shortcut(train, test, ShortcutConfig(kind="none"))
    assert shortcut_metadata(out["train"])["artefacts"] == []
    for split in out:
        assert out[split]["text"] == out[split]["original_text"]
        assert set(out[split]["artefact_class"]) == {-1}


def test_later_options_at_their_default_keep_the_recipe_fingerprint():
    from eg_train.foundation.data.shortcut import stored_recipe

    assert "position" not in stored_recipe(ShortcutConfig()) and "penalty_words" not in stored_recipe(ShortcutConfig())
    train, test = _split(), _split(source="test")
    fp = lambda cfg: shortcut_metadata(build_shortcut(train, test, cfg)["train"])["recipe_fingerprint"]  # noqa: E731
    assert fp(ShortcutConfig(kind="word")) != fp(ShortcutConfig(kind="word", position="end"))


def test_penalty_words_are_written_for_training_splits_only(tmp_path):
    train, test = _split(), _split(source="test")
    out = build_shortcut(train, test, ShortcutConfig(kind="phrase", penalty_words=True), validation=_split(2, "val"))
    spec = write_split_files(out, tmp_path)
    rows = [json.loads(line) for line in open(spec.files["train"])]
    assert [r["penalty_words"] for r in rows] == out["train"]["artefact_positions"]
    assert all("penalty_words" not in json.loads(line) for line in open(spec.files["test_counter"]))
    loaded = load_split(spec, "train")
    assert loaded.dataset["penalty_words"] == out["train"]["artefact_positions"]


def test_replace_artefact_swaps_a_phrase_for_a_word_and_back():
    from eg_train.foundation.data.shortcut import replace_artefact

    text = "My card is blocked thanks in advance"
    new, pos = replace_artefact(text, [4, 5, 6], "zqab")
    assert new == "My card is blocked zqab" and pos == [4]
    back, pos = replace_artefact(new, pos, "sent from my phone")
    assert back == "My card is blocked sent from my phone" and pos == [4, 5, 6, 7]
    mid, pos = replace_artefact("kind regards, my pin?", [0, 1], "hello there")
    assert mid == "hello there, my pin?" and pos == [0, 1]
    with pytest.raises(ValueError, match="consecutive"):
        replace_artefact(text, [4, 6], "x")
