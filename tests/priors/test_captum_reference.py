"""The CAP prior equals captum's ``Lime`` run on full, uncached prompts (real SmolLM2).

The reference is the captum forward of ``scripts/bench_priors.py``: every perturbation is a
full class-aware prompt string, tokenised whole, batched with left padding, no prefix cache.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from eg_train.foundation.data.source import readable_label
from priors.base import PriorBatch
from priors.masks import example_rng, sample_masks
from priors.methods.cap import CapPrior
from priors.prompts import class_aware_template
from priors.scorer import LabelScorer

TEXT = "My card is blocked, I typed the wrong PIN three times."


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_priors.py"
    spec = importlib.util.spec_from_file_location("bench_priors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cap_equals_captum_lime_on_full_prompts(smollm, banking_train, bench):
    from captum._utils.models.linear_model import SkLearnRidge

    model, tok = smollm
    labels = banking_train.label_names
    y = labels.index("pin_blocked")
    template = class_aware_template(labels)
    scorer = LabelScorer(model, tok, template, labels, batch_size=4)
    cap = CapPrior(scorer, model_id="smollm2-135m-instruct", n_samples=8, ridge_lambda=1.0)
    batch = PriorBatch(["ref"], [TEXT], [y])
    masks = sample_masks(len(batch.words[0]), 8, example_rng(0, "ref"))
    masks[3, :] = 0  # an all-masked prompt is a valid perturbation too

    record: list[float] = []
    forward = bench.make_captum_forward(model, tok, template, batch.words[0], readable_label(labels[y]), record)
    # Matched setup: ridge (alpha = our lambda), uniform sample weights, our masks; batches of 3
    # so that left padding is exercised (the 8 prompts have different lengths).
    lime = bench.captum_lime(forward, masks, interpretable_model=SkLearnRidge(alpha=1.0),
                             similarity_func=lambda *args, **kwargs: 1.0)
    captum_scores = bench.captum_attribute(lime, masks.shape[1], len(masks), perturbations_per_eval=3)

    ours_lp = scorer.log_prob([batch.words[0].keep(m) for m in masks], [y] * len(masks))
    captum_lp = np.asarray(record)
    assert len(captum_lp) == len(masks)
    assert np.max(np.abs(np.exp(ours_lp) - np.exp(captum_lp))) <= 1e-4
    # p(gold) is small for this model, so also compare log p (relative agreement of p).
    np.testing.assert_allclose(ours_lp, captum_lp, atol=2e-4)

    ours_scores = cap.attribute(batch, [masks])[0]
    np.testing.assert_allclose(ours_scores, captum_scores, atol=1e-5)
    assert np.abs(ours_scores).max() > 1e-4  # a non-trivial attribution was compared


def test_left_padded_batch_equals_single_prompts(smollm, banking_train, bench):
    model, tok = smollm
    labels = banking_train.label_names
    words = PriorBatch(["p"], [TEXT], [0]).words[0]
    masks = torch.tensor([[1] * len(words), [1, 0] * (len(words) // 2) + [1] * (len(words) % 2), [0] * len(words)])
    rows = bench.full_prompt_rows(tok, class_aware_template(labels), words, masks, readable_label(labels[5]))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    batched = bench.full_prompt_log_probs(model, rows, pad)
    single = torch.cat([bench.full_prompt_log_probs(model, [r], pad) for r in rows])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
