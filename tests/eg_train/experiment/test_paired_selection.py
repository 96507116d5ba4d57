import math

import numpy as np
import pytest

from eg_train.experiment.paired_selection import choose_one_se, paired_difference
from eg_train.experiment.rule import RuleSettings


def test_paired_difference_is_the_per_text_mean_over_seeds_and_its_standard_error():
    cand = {"0": "1100", "1": "1110"}
    ce = {"0": "1000", "1": "1000"}
    d = paired_difference(cand, ce)
    per_text = np.array([0.0, 1.0, 0.5, 0.0])  # by hand
    assert d.n == 4
    assert d.mean == pytest.approx(per_text.mean())
    assert d.se == pytest.approx(per_text.std(ddof=1) / math.sqrt(4))


def test_paired_difference_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="unequal length"):
        paired_difference({"0": "10", "1": "101"}, {"0": "10", "1": "101"})


def _rows(clean: dict[str, str], counter: dict[str, str]) -> dict:
    return {s: {"clean_correct": clean[s], "counter_correct": counter[s]} for s in clean}


def test_a_noise_sized_clean_loss_is_admissible_when_the_counter_gain_is_large():
    # 10 texts, 2 seeds; the candidate loses 1 of 20 clean predictions: -5 points, exactly one paired SE
    # (per-text differences nine 0 and one -0.5). v3's fixed 1-point floor refused it; the floor is max(1 point, SE).
    ce = _rows({"0": "1111111111", "1": "1111111111"}, {"0": "0000000000", "1": "0000000000"})
    cand = _rows({"0": "1111111110", "1": "1111111111"}, {"0": "1111111100", "1": "1111111110"})
    pick, reason, table = choose_one_se({"ce": ce, "c~x": cand}, ["ce", "c~x"], RuleSettings(), True)
    t = table["c~x"]
    assert t["clean"]["mean"] == pytest.approx(-0.05)
    assert -t["clean_floor"] == pytest.approx(max(0.01, t["clean"]["se"]))
    assert t["admissible"] and t["qualifies"] and pick == "c~x"


def test_a_clean_loss_beyond_one_standard_error_keeps_ce():
    ce = _rows({"0": "1" * 20, "1": "1" * 20}, {"0": "0" * 20, "1": "0" * 20})
    cand = _rows({"0": "0" * 10 + "1" * 10, "1": "0" * 10 + "1" * 10}, {"0": "1" * 20, "1": "1" * 20})
    pick, reason, table = choose_one_se({"ce": ce, "c~x": cand}, ["ce", "c~x"], RuleSettings(), True)
    assert not table["c~x"]["admissible"] and pick == "ce" and "clean" in reason


def test_no_confirmed_feature_is_ce_and_ties_go_to_the_cheaper_candidate():
    ce = _rows({"0": "1" * 20}, {"0": "0" * 20})
    same = _rows({"0": "1" * 20}, {"0": "1" * 20})
    assert choose_one_se({"ce": ce, "a": same, "b": same}, ["ce", "a", "b"], RuleSettings(), False)[0] == "ce"
    assert choose_one_se({"ce": ce, "a": same, "b": same}, ["ce", "a", "b"], RuleSettings(), True)[0] == "a"


def test_a_gain_within_noise_keeps_ce():
    ce = _rows({"0": "1" * 8}, {"0": "10101010"})
    cand = _rows({"0": "1" * 8}, {"0": "11101000"})  # +0 mean: no gain
    pick, reason, _ = choose_one_se({"ce": ce, "c~x": cand}, ["ce", "c~x"], RuleSettings(), True)
    assert pick == "ce" and "gains" in reason


def test_apply_to_record_reports_both_choices_with_their_test_figures():
    from eg_train.experiment.paired_selection import apply_to_record

    ce = _rows({"0": "1" * 10, "1": "1" * 10}, {"0": "0" * 10, "1": "0" * 10})
    cand = _rows({"0": "1" * 9 + "0", "1": "1" * 10}, {"0": "1" * 10, "1": "1" * 10})
    record = {
        "case": {"name": "x"},
        "rule_choices": {"rule": {"0": {"chosen": "ce"}, "1": {"chosen": "ce"}}},
        "rule_selections": {"rule": {"settings": {}, "confirmed": [{"feature": "zq"}],
                                     "per_seed": {"ce": ce, "rule~penalty_1e+03": cand}}},
        "summary": {"models": {"ce": {"clean_accuracy": 0.7}, "rule~penalty_1e+03": {"clean_accuracy": 0.72}},
                    "paired": {"rule~penalty_1e+03": {"clean": {"mean": 0.02, "ci95": [-0.01, 0.05]}}}},
    }
    res = apply_to_record(record)["rule"]
    assert res["v3"] == "ce" and res["v4"] == "rule~penalty_1e+03"
    assert res["test"]["rule~penalty_1e+03"]["model"]["clean_accuracy"] == 0.72
    assert res["test"]["ce"]["vs_ce"] is None and res["test"]["ce"]["model"]["clean_accuracy"] == 0.7
    del record["rule_selections"]["rule"]["per_seed"]["ce"]["0"]["clean_correct"]
    assert apply_to_record(record) == {}
