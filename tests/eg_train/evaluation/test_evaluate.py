import json

import numpy as np
import pytest
import torch

from eg_train.foundation.data.source import DataError, LabelledSplit
from eg_train.evaluation.cli import main
from eg_train.evaluation.evaluate import CheckpointLabelError, EvalConfig, evaluate_checkpoint

FAST = EvalConfig(faithfulness_examples=6, ig_steps=8, ig_batch_size=6)


def _reference_predictions(checkpoint, texts):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        return model(**tok(list(texts), padding=True, return_tensors="pt")).logits.argmax(-1).numpy()


def test_metrics_json(evaluated, checkpoint, test_split, attack_dir):
    out, m = evaluated
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["clean"] == m["clean"] and on_disk["method"] == "ce" and on_disk["seed"] == 0
    gold = np.array(test_split.dataset["label"])
    ref = _reference_predictions(checkpoint, test_split.dataset["text"])
    assert m["clean"]["accuracy"] == pytest.approx(float((ref == gold).mean()))
    assert m["clean"]["accuracy"] > 0.7  # the fixture model really learned the task
    import datasets

    for name in ("keyword_addition", "keyword_replacement"):
        a = m["attacks"][name]
        adv = _reference_predictions(checkpoint, datasets.load_from_disk(str(attack_dir))[name]["text"])
        assert a["accuracy"] == pytest.approx(float((adv == gold).mean()))
        assert a["drop"] == pytest.approx(m["clean"]["accuracy"] - a["accuracy"])
    f = m["faithfulness"]
    assert f["n"] == 6 and -1 <= f["sufficiency"] <= 1 and -1 <= f["comprehensiveness"] <= 1
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(test_split) and [r["clean"] for r in rows] == ref.tolist()
    attributions = [json.loads(x) for x in (out / "attributions.jsonl").read_text().splitlines()]
    assert len(attributions) == 6 and all(len(a["words"]) == len(a["attribution"]) for a in attributions)


def test_existing_output_is_not_overwritten(evaluated, checkpoint, test_split):
    out, _ = evaluated
    before = (out / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="overwrite"):
        evaluate_checkpoint(checkpoint, test_split, out, config=FAST)
    assert (out / "metrics.json").read_text() == before


def test_label_mismatch_empty_set_and_foreign_attack_file(tmp_path, checkpoint, test_split, attack_dir):
    other = LabelledSplit(test_split.dataset, list(reversed(test_split.label_names)), "reordered.csv")
    with pytest.raises(CheckpointLabelError, match="different order"):
        evaluate_checkpoint(checkpoint, other, tmp_path / "a", config=FAST)
    renamed = LabelledSplit(test_split.dataset, [n + "_v2" for n in test_split.label_names], "renamed.csv")
    with pytest.raises(CheckpointLabelError, match="one list only"):
        evaluate_checkpoint(checkpoint, renamed, tmp_path / "b", config=FAST)
    empty = LabelledSplit(test_split.dataset.select([]), test_split.label_names, "empty.csv")
    with pytest.raises(DataError, match="empty"):
        evaluate_checkpoint(checkpoint, empty, tmp_path / "c", config=FAST)
    half = LabelledSplit(test_split.dataset.select(range(50)), test_split.label_names, "half.csv")
    from eg_train.evaluation.attacks import AttackFileError

    with pytest.raises(AttackFileError, match="built for test set"):
        evaluate_checkpoint(checkpoint, half, tmp_path / "d", attack_dir, config=FAST)
    assert not any((tmp_path / d).exists() for d in "abcd")  # nothing written


def test_cli_attack_evaluate(tmp_path, capsys, checkpoint, banking_subset):
    files = json.dumps(banking_subset.files)
    data = ["--data.files", files, "--data.text_column", "text", "--data.label_column", "category",
            "--data.labels_file", banking_subset.labels_file]
    main(["attack", *data, "--out", str(tmp_path / "att"), "--subset", "40", "--params.attacks", "[keyword_addition]",
          "--params.min_z", "1.0", "--params.min_gold_docs", "1"])
    main(["evaluate", "--checkpoint", str(checkpoint), *data, "--out", str(tmp_path / "ev"),
          "--attacks", str(tmp_path / "att"), "--subset", "40", "--params.faithfulness_examples", "0"])
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["dataset"]["n"] == 40 and list(m["attacks"]) == ["keyword_addition"] and m["faithfulness"] is None
    main(["report", "--runs", json.dumps([str(tmp_path / "ev")]), "--out", str(tmp_path / "rep"), "--pairs_per_attack", "3"])
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("<td>keyword_addition</td>") == 3  # pairs drawn from the run's attack file
    # A different subset is a different test set: the attack file is rejected.
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--checkpoint", str(checkpoint), *data, "--out", str(tmp_path / "ev2"),
              "--attacks", str(tmp_path / "att"), "--subset", "40", "--subset_seed", "1"])
    assert exit_info.value.code == 2
    assert "built for test set" in capsys.readouterr().err
    assert not (tmp_path / "ev2").exists()
