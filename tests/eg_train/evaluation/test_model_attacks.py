"""Model-aware attacks through evaluate: adaptive summary, transfer texts, and flags for attacks that change nothing."""

import json

import pytest

from eg_train.evaluation.attacks import AttackConfig, build_attacks, load_attacks, save_attacks
from eg_train.evaluation.attacks.recipes import ModelAttackConfig
from eg_train.evaluation.api import subsample, summary_line
from eg_train.evaluation.evaluate import EvalConfig, evaluate_checkpoint, evaluate_transfer
from eg_train.evaluation.report import load_runs, write_report

NO_FAITH = EvalConfig(faithfulness_examples=0)


@pytest.fixture(scope="module")
def small_test(test_split):
    return subsample(test_split, 40, 0)


@pytest.fixture(scope="module")
def adaptive(tmp_path_factory, checkpoint, small_test):
    out = tmp_path_factory.mktemp("adaptive") / "ce"
    cfg = ModelAttackConfig(recipes=("deepwordbug",), query_budget=500)
    return out, evaluate_checkpoint(checkpoint, small_test, out, method="ce", config=NO_FAITH, model_attacks=cfg)


def test_adaptive_summary_is_textattacks(adaptive):
    out, m = adaptive
    r = m["model_attacks"]["recipes"]["deepwordbug"]
    assert r["n"] == 40 and r["succeeded"] + r["failed"] + r["skipped"] == 40
    assert r["clean_accuracy"] == pytest.approx(m["clean"]["accuracy"])  # skipped = misclassified originals
    assert r["accuracy_under_attack"] == pytest.approx(r["failed"] / 40)
    assert r["attack_success_rate"] == pytest.approx(r["succeeded"] / (r["succeeded"] + r["failed"]))
    assert r["accuracy_under_attack"] < r["clean_accuracy"] - 0.3  # character edits break this model
    assert 0 < r["avg_perturbed_word_pct"] <= 100 and 1 < r["avg_queries"] <= 500
    assert json.loads((out / "metrics.json").read_text())["model_attacks"]["recipes"]["deepwordbug"] == r


def test_transfer_texts_are_a_fingerprinted_attack_dataset(adaptive, checkpoint, small_test, test_split, tmp_path):
    out, m = adaptive
    r = m["model_attacks"]["recipes"]["deepwordbug"]
    ds = load_attacks(out / "model_attacks", small_test)["deepwordbug"]
    assert sum(ds["changed"]) == r["succeeded"] and set(ds["status"]) <= {"succeeded", "failed", "skipped"}
    # Known answer: the source model on its own transfer texts scores exactly its accuracy under attack.
    t = evaluate_transfer(checkpoint, small_test, out / "model_attacks", NO_FAITH)["deepwordbug"]
    assert t["accuracy"] == pytest.approx(r["accuracy_under_attack"])
    assert t["source_fingerprint"] == json.loads(ds.info.description)["source_fingerprint"]
    m2 = evaluate_checkpoint(checkpoint, small_test, tmp_path / "ev", config=NO_FAITH, transfer=out / "model_attacks")
    assert m2["transfer"]["deepwordbug"]["accuracy"] == pytest.approx(t["accuracy"])
    assert "transfer deepwordbug" in summary_line(m2)
    from eg_train.evaluation.attacks import AttackFileError

    with pytest.raises(AttackFileError, match="built for test set"):  # other texts: refused
        evaluate_transfer(checkpoint, test_split, out / "model_attacks", NO_FAITH)


def test_an_attack_that_changed_nothing_says_so_everywhere(tmp_path, checkpoint, train_split, small_test, adaptive):
    """Fault 15: 0 changed texts -> accuracy equals clean with drop 0.00; it must be flagged."""
    att = build_attacks(train_split, small_test, AttackConfig(attacks=("keyword_addition",), min_z=1e3))
    assert sum(att["keyword_addition"]["changed"]) == 0
    path = save_attacks(att, tmp_path / "att")
    m = evaluate_checkpoint(checkpoint, small_test, tmp_path / "ev", path, method="tiny", config=NO_FAITH)
    a = m["attacks"]["keyword_addition"]
    assert a["drop"] == 0 and a["warning"].startswith("changed 0 of 40 texts")
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["attacks"]["keyword_addition"]["warning"] == a["warning"]
    assert "WARNING: keyword_addition changed 0 of 40" in summary_line(m)
    paths = write_report(load_runs([tmp_path / "ev", adaptive[0]]), tmp_path / "rep")
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    for text in (md, page):
        assert "†" in text and "tiny, keyword_addition: changed 0 of 40 texts" in text
    assert "Model-aware attacks" in md and "| ce | deepwordbug |" in md  # the adaptive table of the other run


def test_cli_model_attack_transfer_and_report(tmp_path, capsys, checkpoint, banking_subset):
    from eg_train.evaluation.cli import main

    data = ["--data.files", json.dumps(banking_subset.files), "--data.text_column", "text",
            "--data.label_column", "category", "--data.labels_file", banking_subset.labels_file]
    main(["model_attack", "--checkpoint", str(checkpoint), *data, "--out", str(tmp_path / "ce_texts"), "--subset", "20",
          "--params.recipes", "[deepwordbug]"])
    assert "deepwordbug: accuracy under attack" in capsys.readouterr().out
    main(["evaluate", "--checkpoint", str(checkpoint), *data, "--out", str(tmp_path / "ev"), "--subset", "20",
          "--transfer", str(tmp_path / "ce_texts"), "--model_attacks", "[deepwordbug]",
          "--params.faithfulness_examples", "0"])
    out = capsys.readouterr().out
    assert "transfer deepwordbug" in out and "deepwordbug: accuracy under attack" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # Same model, same seed: the adaptive attack reproduces the transfer texts exactly.
    assert m["transfer"]["deepwordbug"]["accuracy"] == pytest.approx(m["model_attacks"]["recipes"]["deepwordbug"]["accuracy_under_attack"])
    main(["report", "--runs", json.dumps([str(tmp_path / "ev")]), "--out", str(tmp_path / "rep"), "--pairs_per_attack", "2"])
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("<td>adaptive deepwordbug</td>") == 2 and page.count("<td>transfer deepwordbug</td>") == 2
