"""Dataset resolution and bad-input errors that name the file, the row and the expectation."""

import json

import pytest

from eg_train.foundation.data import DataError, DataSpec, load_split
from eg_train.foundation.data.fewshot import sample_k_per_class
from eg_train.foundation.data.source import resolve_preset


def _spec(path, **kw):
    return DataSpec(files={"train": str(path)}, label_column="category", **kw)


def test_banking77_resolves_to_the_local_copy():
    spec, local = resolve_preset(DataSpec(preset="banking77"))
    assert local is not None and spec.files["train"].endswith("banking77/train.csv")
    split = load_split(DataSpec(preset="banking77"), "test")
    assert len(split) == 3080 and len(split.label_names) == 77
    assert split.dataset[0]["id"] == "test-0"


def test_hub_name_is_used_when_no_local_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("EG_TRAIN_DATA_DIR", str(tmp_path))  # empty: no local copy
    spec, local = resolve_preset(DataSpec(preset="banking77"))
    assert local is None and spec.hub == "PolyAI/banking77" and spec.label_column == "label"


def test_clinc150_preset():
    split = load_split(DataSpec(preset="clinc150"), "validation")
    assert len(split) == 3000 and len(split.label_names) == 150


@pytest.mark.parametrize(
    "body, match",
    [
        ("text,category\nhello,a\n   ,b\n", r"row 1 \(line 3\): empty or whitespace-only text"),
        ("text,category\nhello,a\nbye,zzz\n", r"row 1 \(line 3\): label 'zzz' is not in the label list"),
        ("text,intent\nhello,a\n", r"missing column 'category'"),
    ],
)
def test_bad_rows_name_file_row_and_expectation(tmp_path, body, match):
    f = tmp_path / "train.csv"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=match) as err:
        load_split(_spec(f, labels=["a", "b"]), "train")
    assert str(f) in str(err.value)


def test_non_utf8_file(tmp_path):
    f = tmp_path / "train.csv"
    f.write_bytes("text,category\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid UTF-8 .*line 2"):
        load_split(_spec(f, labels=["a"]), "train")


def test_skip_invalid_reports_skipped_rows(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("text,category\nhello,a\n ,a\nbye,b\n", encoding="utf-8")
    split = load_split(_spec(f, labels=["a", "b"], skip_invalid=True), "train")
    assert len(split) == 2 and len(split.skipped) == 1 and "row 1" in split.skipped[0]
    assert split.dataset["id"] == ["train-0", "train-2"]


def test_jsonl_with_column_mapping(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text("\n".join(json.dumps({"utterance": t, "intent": c}) for t, c in [("hi", "greet"), ("bye", "leave")]))
    split = load_split(DataSpec(files={"train": str(f)}, text_column="utterance", label_column="intent"), "train")
    assert split.label_names == ["greet", "leave"] and split.dataset["label"] == [0, 1]


def test_few_shot_is_stratified_and_seeded(banking_train):
    a = sample_k_per_class(banking_train, 5, seed=1)
    b = sample_k_per_class(banking_train, 5, seed=1)
    c = sample_k_per_class(banking_train, 5, seed=2)
    assert len(a) == 385 and a.dataset["id"] == b.dataset["id"] != c.dataset["id"]
    counts = {y: a.dataset["label"].count(y) for y in set(a.dataset["label"])}
    assert set(counts.values()) == {5}
    with pytest.raises(DataError, match="fewer than k"):
        sample_k_per_class(banking_train, 10_000)


def test_class_subset_relabels_and_filters():
    split = load_split(DataSpec(preset="banking77", classes=["pin_blocked", "age_limit"]), "test")
    assert split.label_names == ["pin_blocked", "age_limit"] and len(split) == 80
    assert set(split.dataset["label"]) == {0, 1}
    first3 = load_split(DataSpec(preset="banking77", classes=3), "test")
    assert first3.label_names == ["card_arrival", "card_linking", "exchange_rate"]
    with pytest.raises(DataError, match="not in the label list"):
        load_split(DataSpec(preset="banking77", classes=["nope"]), "test")


def test_explicit_columns_win_over_the_preset(monkeypatch, tmp_path):
    """Fault 10: a local preset copy with its own column names loads when they are set explicitly."""
    local = tmp_path / "banking77"
    local.mkdir()
    (local / "train.csv").write_text("utterance,intent\nmy card is lost,lost_card\nwhere is my card,card_arrival\n")
    (local / "categories.json").write_text(json.dumps(["card_arrival", "lost_card"]))
    monkeypatch.setenv("EG_TRAIN_DATA_DIR", str(tmp_path))
    explicit = DataSpec(preset="banking77", text_column="utterance", label_column="intent")
    spec, where = resolve_preset(explicit)
    assert where == str(local) and (spec.text_column, spec.label_column) == ("utterance", "intent")
    split = load_split(explicit, "train")
    assert split.dataset["text"] == ["my card is lost", "where is my card"] and split.dataset["label"] == [1, 0]
    # Unset columns are the preset's; on the hub too, where an explicit one still wins.
    assert resolve_preset(DataSpec(preset="banking77"))[0].label_column == "category"
    monkeypatch.setenv("EG_TRAIN_DATA_DIR", str(tmp_path / "empty"))
    assert resolve_preset(DataSpec(preset="banking77"))[0].label_column == "label"
    assert resolve_preset(DataSpec(preset="banking77", label_column="intent"))[0].label_column == "intent"
    # Without a preset (or with explicit files) unset columns are text / label.
    assert (resolve_preset(DataSpec(files={"train": "x.csv"}))[0].text_column, resolve_preset(DataSpec())[0].label_column) == ("text", "label")


def test_explicit_files_are_logged_as_custom_not_as_the_preset(tmp_path, caplog):
    import logging

    from eg_train.foundation.data.source import DataSpec, load_split

    csv = tmp_path / "f.csv"
    csv.write_text("text,category\nmy card is lost,lost\nwhere is my card,arrival\n", encoding="utf-8")
    spec = DataSpec(preset="banking77", files={"train": str(csv)}, label_column="category")
    with caplog.at_level(logging.INFO, logger="eg_train.foundation.data.source"):
        split = load_split(spec, "train")
    assert len(split) == 2
    assert "dataset custom split train" in caplog.text and "banking77" not in caplog.text
