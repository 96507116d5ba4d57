"""The alignment loss trains the encoder through the gradients themselves (second order)."""

from __future__ import annotations

import pytest
import torch

from eg_train.foundation.attribution import IGConfig, baseline_input_ids, integrated_gradients, masked_normalise, word_attributions
from eg_train.foundation.models import load_sequence_classifier
from eg_train.foundation.words import split_words, word_ids_from_offsets

TEXTS = ["Why was my card declined at the shop?", "Please cancel the transfer I made."]
PARAM = "bert.encoder.layer.2.attention.self.query.weight"


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", ["a", "b", "c"], attn_implementation="eager")
    model = model.double().eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt", return_special_tokens_mask=True, return_offsets_mapping=True)
    spans = [split_words(t).spans for t in TEXTS]
    word_ids = torch.tensor(
        [
            [w if m else -1 for w, m in zip(word_ids_from_offsets(off, sp), am)]
            for off, sp, am in zip(enc["offset_mapping"].tolist(), spans, enc["attention_mask"].tolist())
        ]
    )
    n_words = max(len(s) for s in spans)
    word_mask = torch.zeros(len(TEXTS), n_words, dtype=torch.bool)
    for i, s in enumerate(spans):
        word_mask[i, : len(s)] = True
    gen = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": enc["token_type_ids"],
        "baseline_ids": baseline_input_ids(enc["input_ids"], enc["attention_mask"], enc["special_tokens_mask"], tok.pad_token_id),
        "labels": torch.tensor([1, 2]),
        "word_ids": word_ids,
        "word_mask": word_mask,
        "prior": torch.rand(len(TEXTS), n_words, generator=gen, dtype=torch.float64),
    }
    return model, batch


def alignment_loss(model, b, create_graph=True):
    attr = integrated_gradients(
        model, b["input_ids"], b["attention_mask"], b["labels"], b["baseline_ids"], b["token_type_ids"],
        IGConfig(steps=3, method="gausslegendre"), create_graph=create_graph,
    )
    words = word_attributions(attr, b["word_ids"], b["word_mask"].shape[1])
    m = b["word_mask"]
    diff = masked_normalise(words, m) - masked_normalise(b["prior"], m)
    return ((diff**2 * m).sum(-1) / m.sum(-1)).mean()


def test_second_order_gradient_matches_finite_differences(setup):
    model, b = setup
    param = dict(model.named_parameters())[PARAM]
    (grad,) = torch.autograd.grad(alignment_loss(model, b), param)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    direction = torch.randn(param.shape, generator=torch.Generator().manual_seed(2), dtype=param.dtype)
    eps = 1e-5
    with torch.no_grad():
        orig = param.clone()
        param.copy_(orig + eps * direction)
    up = alignment_loss(model, b, create_graph=False).item()
    with torch.no_grad():
        param.copy_(orig - eps * direction)
    down = alignment_loss(model, b, create_graph=False).item()
    with torch.no_grad():
        param.copy_(orig)
    numeric = (up - down) / (2 * eps)
    analytic = (grad * direction).sum().item()
    assert analytic == pytest.approx(numeric, rel=1e-3, abs=1e-9)


def test_first_order_only_misses_the_encoder_gradient(setup):
    """Without create_graph the attribution is only differentiable through (x - x'): no encoder grad."""
    model, b = setup
    param = dict(model.named_parameters())[PARAM]
    loss = alignment_loss(model, b, create_graph=False)
    (grad_first,) = torch.autograd.grad(loss, param, allow_unused=True)
    assert grad_first is None or grad_first.abs().sum() == 0
    (grad_second,) = torch.autograd.grad(alignment_loss(model, b), param)
    assert grad_second.abs().sum() > 0
