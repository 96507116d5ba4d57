"""The work model of ``scripts/bench_scorer.py``: FLOPs per perturbation of plain CAP and of the
full renormalisation, and the floor it implies on their cost ratio."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_scorer.py"
_spec = importlib.util.spec_from_file_location("bench_scorer", _PATH)
bench_scorer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_scorer)

LABELS = ["card_arrival", "card_linking", "exchange_rate", "top_up_failed"]


@pytest.fixture(scope="module")
def priors(smollm):
    model, tok = smollm
    cap = bench_scorer._prior(model, tok, LABELS, n=6)
    full = bench_scorer._prior(model, tok, LABELS, n=6, contrast="full")
    return model, cap, full


def _batch(i):
    from priors.base import PriorBatch

    texts = ["my card has not arrived yet", "how do i link my new card"]
    return PriorBatch([f"x{i}"], [texts[i]], [i])


def test_work_model_counts_the_tokens_and_projections_of_both_scorings(priors):
    model, cap, full = priors
    w = bench_scorer.work_model(model, cap.scorer, full.scorer, full, [0, 1], _batch, gold_of=lambda i: i)
    sc = full.scorer
    tree = sc._tree(tuple(range(len(LABELS))))
    assert w["tree_nodes"] == len(tree) > 0
    assert w["label_tokens_total"] == sum(len(x) for x in sc.label_ids)
    # Each label's last token is not fed: fewer nodes than label tokens.
    assert w["tree_nodes"] < w["label_tokens_total"]
    assert w["gold_label_tokens_mean"] == pytest.approx(np.mean([len(sc.label_ids[0]), len(sc.label_ids[1])]))
    emb = model.get_input_embeddings().weight
    assert w["vocab"] == emb.shape[0] and w["hidden"] == emb.shape[1]
    assert w["non_embedding_params"] == sum(p.numel() for p in model.parameters()) - emb.numel()  # tied head
    assert w["gflop_per_perturbation_full"] > w["gflop_per_perturbation_cap"] > 0
    assert w["full_vs_cap_lower_bound"] == pytest.approx(w["gflop_per_perturbation_full"] / w["gflop_per_perturbation_cap"])
    assert 0 < w["projection_share_full"] < 1 and w["matmul_gflops"] > 0


def test_ceiling_figures_divide_the_work_by_the_measured_seconds():
    r = {"n_samples": 10, "seconds_per_example": {"cap": 2.0, "full": 8.0},
         "ceiling": {"gflop_per_perturbation_full": 40.0, "gflop_per_perturbation_cap": 4.0, "matmul_gflops": 50.0}}
    c = bench_scorer.ceiling_figures(r)
    assert c["full_gflop_per_example"] == 400.0
    assert c["full_achieved_gflops"] == 50.0 and c["cap_achieved_gflops"] == 20.0
    assert c["full_ratio_floor_at_matmul_speed"] == pytest.approx(400.0 / 50.0 / 2.0)
