"""``scripts/apply_rule.py``: selection v4 applied to a directory of suite records, JSON and table."""

import importlib.util
import json
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "apply_rule.py"
_spec = importlib.util.spec_from_file_location("apply_rule", _PATH)
apply_rule = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(apply_rule)


def _record(name: str, with_bits: bool) -> dict:
    bits = {"0": {"clean_correct": "1111", "counter_correct": "0000"}}
    cand = {"0": {"clean_correct": "1111", "counter_correct": "1111"}}
    if not with_bits:
        bits, cand = {"0": {"clean": 1.0}}, {"0": {"clean": 1.0}}
    return {"case": {"name": name}, "rule_choices": {"rule": {"0": {"chosen": "ce"}}},
            "rule_selections": {"rule": {"settings": {}, "confirmed": [{"feature": "f"}],
                                         "per_seed": {"ce": bits, "rule~penalty_1e+03": cand}}},
            "summary": {"models": {"ce": {"clean_accuracy": 0.5, "shortcut_reliance": 0.4},
                                   "rule~penalty_1e+03": {"clean_accuracy": 0.6, "counter_accuracy": 0.7}},
                        "paired": {"rule~penalty_1e+03": {"clean": {"mean": 0.1, "ci95": [0.0, 0.2]}}}}}


def test_apply_rule_writes_both_choices_and_lists_records_without_per_text_scores(tmp_path):
    (tmp_path / "new.json").write_text(json.dumps(_record("new", True)))
    (tmp_path / "old.json").write_text(json.dumps(_record("old", False)))
    out = tmp_path / "out" / "v4.json"
    doc = apply_rule.main(["--records", str(tmp_path), "--out", str(out)])
    assert doc["skipped_no_per_text_validation"] == ["old"]
    assert doc["cases"]["new"]["rule"]["v4"] == "rule~penalty_1e+03"
    table = out.with_suffix(".md").read_text()
    assert "| new | rule | 40.0 | ce | 50.0 | 0 |" in table and "+10.0 [+0.0, +20.0]" in table
    assert json.loads(out.read_text()) == doc
