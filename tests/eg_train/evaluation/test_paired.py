"""Per-example correctness from evaluation folders and paired differences between methods."""

import json

import datasets
import pytest

from eg_train.evaluation.paired import paired_differences, per_example_correct


def _eval_dir(root, name, gold, clean, attacked, transfer=None, adaptive_status=None):
    d = root / name
    d.mkdir(parents=True)
    rows = []
    for i, (g, c, a) in enumerate(zip(gold, clean, attacked)):
        row = {"id": f"t{i}", "label": g, "clean": c, "keyword_addition": a}
        if transfer is not None:
            row["transfer/pwws"] = transfer[i]
        rows.append(json.dumps(row))
    (d / "predictions.jsonl").write_text("\n".join(rows) + "\n")
    if adaptive_status is not None:
        ds = datasets.Dataset.from_dict({"id": [f"t{i}" for i in range(len(gold))], "status": adaptive_status})
        datasets.DatasetDict({"pwws": ds}).save_to_disk(str(d / "model_attacks"))
    return d


def test_per_example_correct_reads_every_setting(tmp_path):
    d = _eval_dir(tmp_path, "m", gold=[0, 1, 2], clean=[0, 1, 0], attacked=[1, 1, 0], transfer=[0, 0, 2],
                  adaptive_status=["failed", "succeeded", "skipped"])
    c = per_example_correct(d)
    assert c["accuracy"] == {"t0": 1, "t1": 1, "t2": 0}
    assert c["keyword_addition/accuracy"] == {"t0": 0, "t1": 1, "t2": 0}
    assert c["transfer:pwws/accuracy"] == {"t0": 1, "t1": 0, "t2": 1}
    assert c["adaptive:pwws/accuracy"] == {"t0": 1, "t1": 0, "t2": 0}  # only "failed" survives the attack


def test_bad_prediction_line_names_file_and_line(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "predictions.jsonl").write_text('{"id": "a", "label": 0, "clean": 0}\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"predictions.jsonl, line 2"):
        per_example_correct(d)
    with pytest.raises(FileNotFoundError, match="no per-example predictions"):
        per_example_correct(tmp_path)


def test_paired_differences_known_answer(tmp_path):
    gold = [0, 1, 2, 3]
    runs = {
        "ce": {0: _eval_dir(tmp_path, "ce0", gold, [0, 1, 0, 0], [0, 0, 0, 0]),  # 2/4 correct, no transfer (source)
               1: _eval_dir(tmp_path, "ce1", gold, [0, 0, 0, 0], [0, 0, 0, 0], transfer=[0, 0, 0, 0])},
        "prior": {0: _eval_dir(tmp_path, "p0", gold, [0, 1, 2, 0], [0, 1, 0, 0], transfer=[0, 1, 0, 0]),
                  1: _eval_dir(tmp_path, "p1", gold, [0, 1, 0, 0], [0, 0, 0, 0], transfer=[0, 1, 2, 3])},
    }
    out = paired_differences(runs, n_boot=2000)["prior"]
    acc = out["accuracy"]
    assert acc["seeds"] == [0, 1] and acc["examples"] == 4
    # Seed 0: 3/4 - 2/4; seed 1: 2/4 - 1/4 -> +0.25 on both seeds.
    assert acc["bootstrap"]["mean"] == pytest.approx(0.25)
    assert acc["t"]["values"] == pytest.approx([0.25, 0.25]) and acc["t"]["ci95"] == pytest.approx([0.25, 0.25])
    assert out["keyword_addition/accuracy"]["bootstrap"]["mean"] == pytest.approx((0.5 - 0.25) / 2)
    # Transfer only on the seed where the baseline has it.
    tr = out["transfer:pwws/accuracy"]
    assert tr["seeds"] == [1] and tr["bootstrap"]["mean"] == pytest.approx(1.0 - 0.25)
    assert paired_differences({"prior": runs["prior"]}) == {}
