"""The benchmark's default choice (training-side figures only) and its report."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_prior_quality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_prior_quality", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


def _row(config, acc, kw, cost, faith, method="cap", partial=False):
    """``faith``: the deletion AOPC gain over random orders (nats)."""
    return {"config": config, "method": method, "llm_accuracy": acc, "keyword_precision_at_3": kw,
            "cost_ratio_vs_cap": cost, "deletion_aopc_gain_vs_random": faith, "partial": partial}


def test_choose_default_maximises_both_gains_within_cost(bench):
    ref = _row("cap", 0.05, 0.2, 1.0, float("nan"))
    rows = [
        ref,
        _row("lime", 0.5, 0.9, 0.5, 3.0, method="lime"),  # not a CAP scoring
        _row("too_costly", 0.5, 0.9, 4.0, 3.0),
        _row("unfaithful", 0.5, 0.9, 1.0, -0.1),
        _row("partial", 0.5, 0.9, 1.0, 3.0, partial=True),
        _row("accurate", 0.30, 0.22, 2.0, 1.6),  # gains 6 and 1.1: geometric mean 2.57
        _row("balanced", 0.20, 0.40, 2.5, 1.6),  # gains 4 and 2: geometric mean 2.83
    ]
    assert bench.choose_default(rows, ref)["config"] == "balanced"
    assert bench.choose_default(rows[1:5], ref) is None
    # Today's CAP at 0 % accuracy: no gain is defined, the choice still is.
    zero = _row("cap", 0.0, 0.2, 1.0, 0.5)
    assert bench.choose_default([zero] + rows[1:], zero)["config"] == "balanced"


def test_ties_go_to_the_cheaper_configuration(bench):
    ref = _row("cap", 0.1, 0.2, 1.0, 1.2)
    rows = [_row("a", 0.2, 0.4, 2.0, 1.5), _row("b", 0.2, 0.4, 1.5, 1.5)]
    assert bench.choose_default(rows, ref)["config"] == "b"


def test_overrides_follow_this_checkouts_config(bench):
    names = bench.config_fields()
    for v in bench.VARIANTS:
        overrides, why = bench.resolve_overrides(v)
        assert (overrides is None) == (why is not None)
        if overrides is not None:
            assert set(overrides) <= names


def test_markdown_marks_targets(bench):
    res = {
        "setup": {"k_shot": 5, "examples": 2, "n_samples": 10, "n_random": 2, "reference": {"reference_texts": 9},
                  "cpus": 2, "threads": 1, "quick": True},
        "configs": [{"llm": "m", "config": "cap", "n": 2, "llm_accuracy": 0.5, "cost_ratio_vs_cap": 1.0}],
        "skipped": [{"llm": "m", "config": "x", "reason": "no option"}],
        "targets": bench.TARGETS,
        "target_met": {"keyword_p3_gain": True, "cost_ratio_vs_cap": False},
        "keyword_p3_gain": 2.5, "cost_ratio_vs_cap": 3.5,
    }
    md = bench.markdown(res)
    assert "| keyword_p3_gain | 2.50 | ≥ 2.0 ✅ |" in md and "| cost_ratio_vs_cap | 3.50 | ≤ 3.0 ❌ |" in md
    assert "m/x (no option)" in md and not math.isnan(res["keyword_p3_gain"])


def test_a_smaller_run_benchmarks_a_prefix_of_a_larger_ones_examples(bench):
    big, small = bench.bench_rows(385, 100, 0), bench.bench_rows(385, 40, 0)
    assert len(set(big.tolist())) == 100 and list(small) == list(big[:40])
    assert len(bench.bench_rows(5, 100, 0)) == 5
    assert list(bench.bench_rows(385, 40, 1)) != list(small)
