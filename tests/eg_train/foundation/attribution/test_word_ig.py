"""The one word-level IG against captum's plain IntegratedGradients on the embeddings (independent
reference: no layer hook, one text at a time, no padding), completeness, the baseline token and
the device its inputs go to."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from eg_train.foundation.attribution import BaselineTokenError, ig_baseline_token_id, word_integrated_gradients
from eg_train.foundation.device import module_device
from eg_train.foundation.encoding import encode_texts
from eg_train.foundation.models import load_sequence_classifier
from eg_train.foundation.words import split_words, word_ids_from_offsets

LABELS = ["card_arrival", "pin_blocked", "age_limit"]
TEXTS = [
    "where is my new card, it has not arrived yet",
    "pin blocked",
    "how old do I need to be to open an account?",
]


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", LABELS)
    return model.eval(), tok


def _captum_words(model, tok, text, target, n_steps, method, baseline_id=None, probs=False):
    """Reference: captum IntegratedGradients on the embedding rows of one unpadded text."""
    enc = tok(text, return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = enc["input_ids"]
    fill = tok.pad_token_id if baseline_id is None else baseline_id
    base = torch.where(enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, fill))
    emb = model.get_input_embeddings()

    def f(e):
        logits = model(inputs_embeds=e, attention_mask=enc["attention_mask"]).logits
        return logits.softmax(-1) if probs else logits

    attr = IntegratedGradients(f).attribute(emb(ids), baselines=emb(base), target=target, n_steps=n_steps, method=method)
    tokens = attr.sum(-1)[0].detach().double().numpy()
    spans = split_words(text).spans
    out = np.zeros(len(spans))
    for s, w, special in zip(tokens, word_ids_from_offsets(enc["offset_mapping"][0].tolist(), spans), enc["special_tokens_mask"][0]):
        if w >= 0 and not special:
            out[w] += s
    return out


def test_matches_captum_per_text_in_padded_length_sorted_batches(minilm):
    model, tok = minilm
    targets = [0, 1, 2]
    ours = word_integrated_gradients(
        model, encode_texts(tok, TEXTS), targets, tok.pad_token_id, n_steps=16, method="riemann_trapezoid", batch_size=2
    )
    for text, y, scores in zip(TEXTS, targets, ours):
        assert scores.dtype == np.float32 and scores.shape == (len(split_words(text)),)
        np.testing.assert_allclose(scores, _captum_words(model, tok, text, y, 16, "riemann_trapezoid"), atol=1e-4)


def test_probability_output_is_complete(minilm):
    """Completeness: word scores sum to p(y|x) - p(y|baseline) (no punctuation in the text)."""
    model, tok = minilm
    text = "pin blocked after three tries"
    [e] = encode_texts(tok, [text])
    [scores], [delta] = word_integrated_gradients(model, [e], [1], tok.pad_token_id, n_steps=64, output="probs", return_delta=True)
    ids = torch.tensor([e.input_ids])
    base = torch.where(torch.tensor([e.special]), ids, torch.full_like(ids, tok.pad_token_id))
    with torch.no_grad():
        diff = (model(input_ids=ids).logits.softmax(-1)[0, 1] - model(input_ids=base).logits.softmax(-1)[0, 1]).item()
    assert scores.sum() == pytest.approx(diff, abs=1e-3)
    assert abs(delta) < 1e-3
    with pytest.raises(ValueError, match="output"):
        word_integrated_gradients(model, [e], [1], tok.pad_token_id, output="log_odds")


def test_tokenizer_without_pad_token_needs_an_explicit_baseline(minilm):
    """Fault 9: no silent id 0 (a real token) as the baseline; an explicit token is used as given."""
    model, tok = minilm
    no_pad = copy.deepcopy(tok)
    no_pad.pad_token = None
    assert no_pad.pad_token_id is None
    with pytest.raises(BaselineTokenError, match="no pad token"):
        ig_baseline_token_id(no_pad)
    with pytest.raises(BaselineTokenError, match="outside the vocabulary"):
        ig_baseline_token_id(no_pad, len(no_pad))
    with pytest.raises(BaselineTokenError, match="is None"):
        word_integrated_gradients(model, encode_texts(no_pad, TEXTS[1:2]), [1], no_pad.pad_token_id)
    unk = ig_baseline_token_id(no_pad, no_pad.unk_token_id)
    assert unk == no_pad.unk_token_id != 0
    [scores] = word_integrated_gradients(model, encode_texts(no_pad, TEXTS[1:2]), [1], unk, n_steps=16, method="riemann_trapezoid")
    np.testing.assert_allclose(scores, _captum_words(model, tok, TEXTS[1], 1, 16, "riemann_trapezoid", baseline_id=unk), atol=1e-4)


def _assert_inputs_on_model_device(model):
    """A forward pre-hook: every tensor the model receives must sit on its parameters' device."""
    seen = []

    def hook(module, args, kwargs):
        dev = module_device(module)
        for t in [*args, *kwargs.values()]:
            if isinstance(t, torch.Tensor):
                assert t.device == dev, f"input on {t.device}, model on {dev}"
                seen.append(t.device)

    return model.register_forward_pre_hook(hook, with_kwargs=True), seen


def test_inputs_go_to_the_model_device(minilm):
    model, tok = minilm
    handle, seen = _assert_inputs_on_model_device(model)
    try:
        word_integrated_gradients(model, encode_texts(tok, TEXTS[:2]), [0, 1], tok.pad_token_id, n_steps=4)
    finally:
        handle.remove()
    assert seen


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_scores_equal_cpu_scores(minilm):
    model, tok = minilm
    enc = encode_texts(tok, TEXTS)
    cpu = word_integrated_gradients(model, enc, [0, 1, 2], tok.pad_token_id, n_steps=16)
    gpu_model = copy.deepcopy(model).to("cuda")
    handle, _ = _assert_inputs_on_model_device(gpu_model)
    try:
        gpu = word_integrated_gradients(gpu_model, enc, [0, 1, 2], tok.pad_token_id, n_steps=16)
    finally:
        handle.remove()
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, atol=2e-3)
