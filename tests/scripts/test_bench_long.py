"""Document construction and metrics of ``scripts/bench_long.py`` (no models)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from eg_train.foundation.words import split_words

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_long.py"
_spec = importlib.util.spec_from_file_location("bench_long", _PATH)
bench_long = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_long)

FILLERS = [f"filler sentence number {i} about nothing" for i in range(300)]


@pytest.mark.parametrize("evidence", [["book a flight to paris"], ["book a flight to paris", "i need a plane ticket to rome", "get me on a plane"]])
def test_build_document_marks_exactly_the_evidence_words(evidence):
    text, ids = bench_long.build_document(evidence, FILLERS, 400, np.random.default_rng(3))
    words = split_words(text)
    assert len(ids) == len(evidence)
    for ev, idx in zip(evidence, ids):
        assert [words.words[j] for j in idx] == list(split_words(bench_long.sentence(ev)).words)
    assert len(words) >= 400 and text.count("\n\n") >= 1  # paragraphs


def test_build_document_vetoed_fillers_stay_out():
    accept = lambda block: np.array(["7" not in s for s in block])  # noqa: E731
    text, _ = bench_long.build_document(["book a flight"], FILLERS, 300, np.random.default_rng(0), accept)
    assert "7" not in text


def test_evidence_sets_group_one_intent_in_fill_order():
    cands = [("a", 1), ("b", 2), ("c", 1), ("d", 2), ("e", 1), ("f", 3)]
    assert list(bench_long.evidence_sets(cands, 2)) == [(["a", "c"], 1), (["b", "d"], 2)]
    assert list(bench_long.evidence_sets(cands, 1))[:2] == [(["a"], 1), (["b"], 2)]


def test_deletion_order_and_recall():
    scores = np.array([0.0, 3.0, 0.0, 2.0, 0.0])
    order = bench_long.deletion_order(scores, np.random.default_rng(0))
    assert order[:2].tolist() == [1, 3] and sorted(order[2:].tolist()) == [0, 2, 4]
    # ceil(1.5 * 2) = 3 top words hold both evidence words / one of two.
    assert bench_long.evidence_recall(order, np.array([1, 3])) == 1.0
    assert bench_long.evidence_recall(np.array([1, 0, 2, 3, 4]), np.array([1, 3])) == 0.5


def _summary(mean_aopc, p_full=0.6, recall=0.5, wall=2.0):
    return {"mean_aopc": mean_aopc, "p_full": p_full, "recall150": recall, "recall150_abs": recall,
            "recall150_decisive": 1.0, "wall_s_median": wall, "target_queries": 100, "proxy_queries": 64}


def test_comparison_ratios_and_missing_methods():
    per_length = {"256": {"full_lime": _summary(0.4), "focus_lime": _summary(0.5, wall=1.0)},
                  "4096": {"full_lime": _summary(0.2, wall=10.0), "focus_lime": _summary(0.5, recall=0.8, wall=1.0)}}
    c = bench_long.comparison(per_length, "4096")
    assert c["aopc_ratio_focus_over_full"] == pytest.approx(2.5)
    assert c["aopc_ratio_ceiling"] == pytest.approx(3.0)  # p(y|x) / full LIME's AOPC
    assert c["aopc_ratio_by_length"] == {"256": pytest.approx(1.25), "4096": pytest.approx(2.5)}
    assert c["evidence_recall_150"] == 0.8 and c["wall_ratio_focus_over_full"] == pytest.approx(0.1)
    # A sweep without full LIME (--methods focus_lime) reports no ratio rather than a wrong one.
    only_focus = bench_long.comparison({"4096": {"focus_lime": _summary(0.5)}}, "4096")
    assert np.isnan(only_focus["aopc_ratio_focus_over_full"]) and only_focus["evidence_recall_150"] == 0.5


@pytest.mark.parametrize("k_max", [5, 20, 100])
def test_aopc_at_never_indexes_past_k_max(k_max):
    # `--k-max 20` used to fail on drops[49]; a k past the removed words is NaN, not an IndexError.
    drops = np.linspace(0.1, 1.0, k_max)
    for k in (10, 50, 100):
        value = bench_long.aopc_at(drops, k)
        if k <= k_max:
            assert value == pytest.approx(drops[k - 1])
        else:
            assert np.isnan(value)
