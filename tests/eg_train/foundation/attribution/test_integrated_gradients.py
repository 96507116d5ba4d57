"""Differentiable IG against independent references: captum, completeness, finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from eg_train.foundation.attribution import (
    IGConfig,
    baseline_input_ids,
    integrated_gradients,
    masked_normalise,
    path_profile,
    quadrature,
    warped_gauss_legendre,
    word_attributions,
)
from eg_train.foundation.models import load_sequence_classifier
from eg_train.foundation.words import split_words, word_ids_from_offsets

TEXTS = [
    "My card has been blocked, what do I do?",
    "How long does a transfer to Europe take?",
    "I forgot my PIN.",
]
LABELS = ["card_blocked", "transfer_timing", "forgot_pin", "other"]


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", LABELS, attn_implementation="eager")
    return model.eval(), tok


@pytest.fixture(scope="module")
def batch(minilm):
    _, tok = minilm
    enc = tok(TEXTS, padding=True, return_tensors="pt", return_special_tokens_mask=True, return_offsets_mapping=True)
    base = baseline_input_ids(enc["input_ids"], enc["attention_mask"], enc["special_tokens_mask"], tok.pad_token_id)
    word_ids = torch.tensor(
        [
            [w if m else -1 for w, m in zip(word_ids_from_offsets(off, split_words(t).spans), am)]
            for t, off, am in zip(TEXTS, enc["offset_mapping"].tolist(), enc["attention_mask"].tolist())
        ]
    )
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": enc["token_type_ids"],
        "baseline_ids": base,
        "labels": torch.tensor([0, 1, 2]),
        "word_ids": word_ids,
        "n_words": max(len(split_words(t)) for t in TEXTS),
    }


def _ours(model, b, steps, method, create_graph=False, **kw):
    return integrated_gradients(
        model,
        b["input_ids"],
        b["attention_mask"],
        b["labels"],
        b["baseline_ids"],
        b["token_type_ids"],
        IGConfig(steps=steps, method=method, **kw),
        create_graph=create_graph,
    )


def _captum(model, b, steps, method):
    emb = model.get_input_embeddings()

    def forward(inputs_embeds, attention_mask, token_type_ids):
        return model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    ig = IntegratedGradients(forward)
    attr = ig.attribute(
        emb(b["input_ids"]).detach(),
        baselines=emb(b["baseline_ids"]).detach(),
        target=b["labels"],
        additional_forward_args=(b["attention_mask"], b["token_type_ids"]),
        n_steps=steps,
        method=method,
    )
    return attr.sum(-1)


def test_baseline_keeps_special_tokens_only(minilm, batch):
    _, tok = minilm
    base = batch["baseline_ids"]
    assert (base[:, 0] == tok.cls_token_id).all()
    for row, ids in zip(base, batch["input_ids"]):
        n = int((ids != tok.pad_token_id).sum())
        assert row[n - 1] == tok.sep_token_id
        assert (row[1 : n - 1] == tok.pad_token_id).all()


@pytest.mark.parametrize(
    "method,steps", [("gausslegendre", 4), ("gausslegendre", 7), ("riemann_trapezoid", 5), ("riemann_middle", 3)]
)
def test_equals_captum(minilm, batch, method, steps):
    model, _ = minilm
    ours = _ours(model, batch, steps, method, create_graph=True).detach()
    ref = _captum(model, batch, steps, method)
    scale = ref.abs().max()
    assert torch.allclose(ours, ref, atol=1e-5 * scale.item() + 1e-7), (ours - ref).abs().max()


def test_chunking_does_not_change_the_result(minilm, batch):
    model, _ = minilm
    whole = _ours(model, batch, 6, "gausslegendre")
    chunked = _ours(model, batch, 6, "gausslegendre", chunk_size=len(TEXTS) * 2)  # 3 forwards of 2 steps
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_completeness(minilm, batch):
    """sum_t IG_t = f(x) - f(x') once the quadrature has converged."""
    model, _ = minilm
    attr = _ours(model, batch, 48, "gausslegendre")
    with torch.no_grad():
        fx = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        fb = model(input_ids=batch["baseline_ids"], attention_mask=batch["attention_mask"]).logits
    idx = torch.arange(len(TEXTS))
    expected = fx[idx, batch["labels"]] - fb[idx, batch["labels"]]
    assert torch.allclose(attr.sum(-1), expected, rtol=1e-2, atol=1e-4)


def test_special_and_padding_tokens_get_no_attribution(minilm, batch):
    model, tok = minilm
    attr = _ours(model, batch, 4, "gausslegendre")
    special = (batch["input_ids"] == tok.cls_token_id) | (batch["input_ids"] == tok.sep_token_id)
    padding = batch["attention_mask"] == 0
    assert padding.any()
    assert (attr[special | padding] == 0).all()


def test_word_aggregation_known_answer():
    token = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    word_ids = torch.tensor([[-1, 0, 0, 1, -1, 2]])  # CLS, "un" "##lock", "card", ",", "now"
    out = word_attributions(token, word_ids, 4)
    assert out.tolist() == [[3.0, 3.0, 5.0, 0.0]]


def test_word_attributions_sum_to_token_attributions(minilm, batch):
    model, _ = minilm
    attr = _ours(model, batch, 4, "gausslegendre")
    words = word_attributions(attr, batch["word_ids"], batch["n_words"])
    keep = batch["word_ids"] >= 0
    assert torch.allclose(words.sum(-1), (attr * keep).sum(-1), atol=1e-6)


def test_masked_normalise():
    s = torch.tensor([[1.0, 3.0, 2.0, 100.0]])
    m = torch.tensor([[True, True, True, False]])
    assert masked_normalise(s, m, "minmax").tolist() == [[0.0, 1.0, 0.5, 0.0]]
    assert torch.allclose(masked_normalise(s, m, "l1"), torch.tensor([[1 / 6, 3 / 6, 2 / 6, 0.0]]))
    sm = masked_normalise(s, m, "softmax")
    assert torch.allclose(sm[0, :3], torch.softmax(s[0, :3], -1)) and sm[0, 3] == 0
    empty = masked_normalise(s, torch.zeros_like(m), "softmax")
    assert torch.isfinite(empty).all()


def test_quadrature_matches_captum_tables():
    from captum.attr._utils.approximation_methods import approximation_parameters

    for method in ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"):
        step_sizes, alphas = approximation_parameters(method)
        a, w = quadrature(method, 6)
        assert np.allclose(a, alphas(6)) and np.allclose(w, step_sizes(6)), method
    with pytest.raises(ValueError, match="unknown IG quadrature"):
        quadrature("simpson", 4)
    with pytest.raises(ValueError, match="steps >= 2"):
        quadrature("riemann_left", 1)


def test_warped_rule_known_answers():
    from math import erf, pi, sqrt

    # Flat profile: exactly Gauss-Legendre.
    a, w = warped_gauss_legendre(np.ones(32), 5, floor=0.0)
    ga, gw = quadrature("gausslegendre", 5)
    assert np.allclose(a, ga) and np.allclose(w, gw)
    # A peaked integrand like the IG path's (closed-form integral): warping by its profile makes
    # 4 nodes accurate where plain 4-point Gauss-Legendre is not.
    g = lambda x: np.exp(-(((x - 0.4) / 0.08) ** 2)) + 0.1  # noqa: E731
    exact = 0.08 * sqrt(pi) / 2 * (erf(0.6 / 0.08) + erf(0.4 / 0.08)) + 0.1
    mid = (np.arange(32) + 0.5) / 32
    a, w = warped_gauss_legendre(g(mid), 4)
    err_warped = abs((w * g(a)).sum() - exact) / exact
    pa, pw = quadrature("gausslegendre", 4)
    err_plain = abs((pw * g(pa)).sum() - exact) / exact
    assert err_warped < 0.01 < err_plain
    assert ((a > 0) & (a < 1)).all() and (np.diff(a) > 0).all() and (w > 0).all()
    # More nodes converge on other integrands too: int_0^1 a^2 da = 1/3.
    a, w = warped_gauss_legendre(g(mid), 24)
    assert abs((w * a**2).sum() - 1 / 3) < 1e-3
    with pytest.raises(ValueError, match="profile"):
        warped_gauss_legendre(np.array([1.0, -1.0]), 3)


def test_warped_rule_ranks_words_like_a_50_step_reference(minilm, batch):
    """On MiniLM the calibrated 4-point rule ranks words like 50-step IG (the benchmark measures more)."""
    model, _ = minilm
    b = batch
    profile = path_profile(model, b["input_ids"], b["attention_mask"], b["labels"], b["baseline_ids"], b["token_type_ids"])
    assert profile.shape == (32,) and np.isclose(profile.sum(), 1.0)
    rule = IGConfig(steps=4).rule(profile)

    def words(attr):
        return word_attributions(attr, b["word_ids"], b["n_words"]).detach().numpy()

    ref = words(_ours(model, b, 50, "gausslegendre"))
    warped = words(
        integrated_gradients(model, b["input_ids"], b["attention_mask"], b["labels"], b["baseline_ids"],
                             b["token_type_ids"], IGConfig(steps=4), create_graph=False, rule=rule)
    )
    n_words = [len(split_words(t)) for t in TEXTS]
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731 (no ties in float attributions)
    rho = np.mean([np.corrcoef(rank(warped[i, :n]), rank(ref[i, :n]))[0, 1] for i, n in enumerate(n_words)])
    assert rho > 0.8, rho


def test_length_buckets_do_not_change_the_result(minilm, batch):
    model, _ = minilm
    one = _ours(model, batch, 3, "gausslegendre", length_buckets=1)
    three = _ours(model, batch, 3, "gausslegendre", length_buckets=3)
    assert torch.allclose(one, three, atol=1e-6)
    assert one.shape == batch["input_ids"].shape


def test_word_scores_equal_the_offline_ig_prior(minilm, batch):
    """Training-time IG (same rule) reproduces the priors stage's captum IG prior word by word."""
    from priors.base import PriorBatch
    from priors.methods.ig import IGPrior

    model, tok = minilm
    prior = IGPrior(model, tok, model_id="minilm", n_steps=8, method="gausslegendre")
    offline = prior.compute(PriorBatch([f"e{i}" for i in range(len(TEXTS))], TEXTS, batch["labels"].tolist()))
    ours = word_attributions(_ours(model, batch, 8, "gausslegendre"), batch["word_ids"], batch["n_words"])
    for i, res in enumerate(offline):
        n = len(res.scores)
        assert n == len(split_words(TEXTS[i]))
        np.testing.assert_allclose(ours[i, :n].detach().numpy(), res.scores, rtol=1e-4, atol=1e-6)
