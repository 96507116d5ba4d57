"""IG prior against captum's IntegratedGradients on the input embeddings, and completeness."""

import numpy as np
import torch

from eg_train.foundation.models import load_sequence_classifier
from eg_train.foundation.words import split_words, word_ids_from_offsets
from priors.base import PriorBatch
from priors.methods.ig import IGPrior

LABELS = ["card_arrival", "pin_blocked", "age_limit"]


def _model():
    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", LABELS)
    return model.eval(), tok


def test_matches_captum_integrated_gradients_on_embeddings():
    from captum.attr import IntegratedGradients

    model, tok = _model()
    text = "my card is blocked after three wrong pins"
    prior = IGPrior(model, tok, model_id="minilm", n_steps=32, method="riemann_trapezoid")
    [res] = prior.compute(PriorBatch(ids=["x"], texts=[text], labels=[1]))

    enc = tok(text, return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = enc["input_ids"]
    base_ids = torch.where(enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, tok.pad_token_id))
    emb = model.get_input_embeddings()
    ig = IntegratedGradients(lambda e: model(inputs_embeds=e, attention_mask=enc["attention_mask"]).logits)
    attr, delta = ig.attribute(emb(ids), baselines=emb(base_ids), target=1, n_steps=32,
                               method="riemann_trapezoid", return_convergence_delta=True)
    tokens = attr.sum(-1)[0].detach().numpy()
    wid = word_ids_from_offsets(enc["offset_mapping"][0].tolist(), split_words(text).spans)
    expected = np.zeros(len(split_words(text)))
    for s, w in zip(tokens, wid):
        if w >= 0:
            expected[w] += s
    np.testing.assert_allclose(res.scores, expected, atol=1e-5)
    assert abs(delta.item()) < 0.05


def test_completeness_over_words():
    model, tok = _model()
    text = "how old do I need to be"  # no punctuation: every non-special token belongs to a word
    prior = IGPrior(model, tok, model_id="minilm", n_steps=64)
    [res] = prior.compute(PriorBatch(ids=["x"], texts=[text], labels=[2]))
    enc = tok(text, return_tensors="pt", return_special_tokens_mask=True)
    base = torch.where(enc["special_tokens_mask"].bool(), enc["input_ids"], torch.full_like(enc["input_ids"], tok.pad_token_id))
    with torch.no_grad():
        fx = model(input_ids=enc["input_ids"]).logits[0, 2]
        fb = model(input_ids=base).logits[0, 2]
    assert abs(res.scores.sum() - (fx - fb).item()) < 0.02 * max(1.0, abs((fx - fb).item()))


def test_padding_in_a_batch_does_not_change_scores():
    model, tok = _model()
    prior = IGPrior(model, tok, model_id="minilm", n_steps=16)
    texts = ["card", "where is my new card, it has not arrived yet"]
    together = prior.compute(PriorBatch(ids=["a", "b"], texts=texts, labels=[0, 0]))
    alone = prior.compute(PriorBatch(ids=["a"], texts=texts[:1], labels=[0]))
    np.testing.assert_allclose(together[0].scores, alone[0].scores, atol=1e-4)
