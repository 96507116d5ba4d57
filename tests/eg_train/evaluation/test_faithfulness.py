"""Faithfulness on a model whose output provably depends on known words (closed form), and on
the real fine-tuned checkpoint against an independent re-tokenising reference."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from eg_train.evaluation.attribution import encode_texts, predict_proba, word_integrated_gradients
from eg_train.evaluation.faithfulness import bin_sizes, faithfulness
from eg_train.foundation.words import split_words

TEXT = "Refund my cashback, the card was declined yesterday!"
# Class-0 logit contribution of each token (class 1 has none): ref+##und = 2.5, cash+##back = 0.75.
TOKEN_SCORES = {"ref": 1.0, "##und": 1.5, "cash": 0.5, "##back": 0.25, "declined": 2.0, "card": -0.5,
                "yesterday": 0.1, ",": 0.3, "[CLS]": 0.2}
WORD_SCORES = {"Refund": 2.5, "my": 0.0, "cashback": 0.75, "the": 0.0, "card": -0.5, "was": 0.0,
               "declined": 2.0, "yesterday": 0.1}
BIAS = -1.0
NON_WORD = 0.3 + 0.2  # the comma and [CLS] are always kept


class BagOfTokens(nn.Module):
    """logits = bias + sum over attended tokens of their embedding row (2 classes).

    Linear in the embeddings, so IG to class 0 with a PAD (zero) baseline is exactly each token's
    class-0 row entry, and every probability has a closed form."""

    def __init__(self, tokenizer):
        super().__init__()
        self.embeddings = nn.Embedding(len(tokenizer), 2)
        nn.init.zeros_(self.embeddings.weight)
        with torch.no_grad():
            for tok, s in TOKEN_SCORES.items():
                self.embeddings.weight[tokenizer.convert_tokens_to_ids(tok), 0] = s
        self.bias = nn.Parameter(torch.tensor([BIAS, 0.0]))

    def get_input_embeddings(self):
        return self.embeddings

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        m = torch.ones(x.shape[:2]) if attention_mask is None else attention_mask
        return SimpleNamespace(logits=(x * m[..., None].to(x.dtype)).sum(1) + self.bias)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from eg_train.foundation.models.resolve import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2").location)


def _p0(kept_words) -> float:
    logit = BIAS + NON_WORD + sum(WORD_SCORES[w] for w in kept_words)
    return 1.0 / (1.0 + math.exp(-logit))


def test_word_ig_is_the_known_contribution(tokenizer):
    model = BagOfTokens(tokenizer)
    enc = encode_texts(tokenizer, [TEXT])
    scores, delta = word_integrated_gradients(model, enc, [0], tokenizer.pad_token_id, n_steps=4, return_delta=True)
    words = split_words(TEXT).words
    np.testing.assert_allclose(scores[0], [WORD_SCORES[w] for w in words], atol=1e-5)


def test_comprehensiveness_sufficiency_closed_form(tokenizer):
    model = BagOfTokens(tokenizer)
    res = faithfulness(model, tokenizer, [TEXT], n_steps=4)
    assert res.targets == [0]  # the logit is positive: the model predicts class 0
    words = list(split_words(TEXT).words)
    ranked = sorted(words, key=lambda w: (-WORD_SCORES[w], words.index(w)))
    assert bin_sizes(len(words), res.bins) == [1, 1, 1, 2, 4]
    comp, suff = [], []
    for k in [1, 1, 1, 2, 4]:
        top = set(ranked[:k])
        comp.append(_p0(words) - _p0([w for w in words if w not in top]))
        suff.append(_p0(words) - _p0(top))
    assert res.comprehensiveness == pytest.approx(np.mean(comp), abs=1e-6)
    assert res.sufficiency == pytest.approx(np.mean(suff), abs=1e-6)
    assert res.per_bin["0.2"]["comprehensiveness"] == pytest.approx(comp[3], abs=1e-6)


def test_given_ranking_replaces_ig(tokenizer):
    model = BagOfTokens(tokenizer)
    words = list(split_words(TEXT).words)
    # Reverse ranking: the least important word first -> comprehensiveness negative at k = 1.
    attr = [np.array([-WORD_SCORES[w] for w in words])]
    res = faithfulness(model, tokenizer, [TEXT], attributions=attr)
    assert res.per_bin["0.01"]["comprehensiveness"] == pytest.approx(_p0(words) - _p0([w for w in words if w != "card"]), abs=1e-6)
    assert res.per_bin["0.01"]["comprehensiveness"] < 0


def test_bin_sizes():
    assert bin_sizes(30, (0.01, 0.05, 0.1, 0.2, 0.5)) == [1, 2, 3, 6, 15]
    assert bin_sizes(1, (0.01, 0.5)) == [1, 1]
    assert bin_sizes(0, (0.5,)) == [0]


def test_bad_arguments(tokenizer):
    model = BagOfTokens(tokenizer)
    with pytest.raises(ValueError, match="at least one"):
        faithfulness(model, tokenizer, [])
    with pytest.raises(ValueError, match="bins"):
        faithfulness(model, tokenizer, [TEXT], bins=(0.0, 0.5))
    with pytest.raises(ValueError, match="words"):
        faithfulness(model, tokenizer, [TEXT], attributions=[np.zeros(3)])


def test_real_model_ids_removal_matches_retokenised_text(checkpoint, test_split):
    """On texts without punctuation, dropping token ids equals re-tokenising the shortened text."""
    from eg_train.foundation.models.resolve import load_sequence_classifier

    model, tok = load_sequence_classifier(str(checkpoint))
    texts = [t for t in test_split.dataset["text"] if t.replace(" ", "").isalnum()][:6]
    rng = np.random.default_rng(0)
    attrs = [rng.normal(size=len(split_words(t))) for t in texts]
    res = faithfulness(model, tok, texts, attributions=attrs, bins=(0.2, 0.5))
    for i, t in enumerate(texts):
        w = split_words(t)
        full = predict_proba(model, [tok(t)["input_ids"]], tok.pad_token_id)[0]
        y = int(full.argmax())
        comp, suff = [], []
        for k in bin_sizes(len(w), (0.2, 0.5)):
            top = set(np.argsort(-attrs[i], kind="stable")[:k].tolist())
            without = w.keep([j not in top for j in range(len(w))])
            only = w.keep([j in top for j in range(len(w))])
            p = predict_proba(model, [tok(without)["input_ids"], tok(only)["input_ids"]], tok.pad_token_id)[:, y]
            comp.append(full[y] - p[0])
            suff.append(full[y] - p[1])
        assert res.targets[i] == y
        assert res.per_example_comprehensiveness[i] == pytest.approx(np.mean(comp), abs=1e-5)
        assert res.per_example_sufficiency[i] == pytest.approx(np.mean(suff), abs=1e-5)


def test_real_model_ig_completeness(checkpoint, test_split):
    """Word scores sum to f(x) - f(baseline) (IG completeness; no punctuation in these texts)."""
    from eg_train.foundation.models.resolve import load_sequence_classifier

    model, tok = load_sequence_classifier(str(checkpoint))
    texts = [t for t in test_split.dataset["text"] if t.replace(" ", "").isalnum()][:2]
    enc = encode_texts(tok, texts)
    targets = [0, 3]
    scores = word_integrated_gradients(model, enc, targets, tok.pad_token_id, n_steps=64)
    for e, y, s in zip(enc, targets, scores):
        ids = torch.tensor([e.input_ids])
        base = torch.where(torch.tensor([e.special]), ids, torch.full_like(ids, tok.pad_token_id))
        with torch.no_grad():
            diff = (model(input_ids=ids).logits[0, y] - model(input_ids=base).logits[0, y]).item()
        assert s.sum() == pytest.approx(diff, abs=0.02 * max(1.0, abs(diff)))


def test_ig_batches_sorted_by_length_return_scores_in_input_order(checkpoint, test_split):
    """Batching by length is an optimisation only: each text gets the scores it gets alone."""
    from eg_train.foundation.models.resolve import load_sequence_classifier

    model, tok = load_sequence_classifier(str(checkpoint))
    texts = sorted(test_split.dataset["text"][:6], key=len, reverse=True)  # longest first: order changes
    enc = encode_texts(tok, texts)
    targets = [0, 1, 2, 0, 1, 2]
    together, deltas = word_integrated_gradients(model, enc, targets, tok.pad_token_id, n_steps=8, batch_size=4, return_delta=True)
    for e, y, s, d in zip(enc, targets, together, deltas):
        alone, (d1,) = word_integrated_gradients(model, [e], [y], tok.pad_token_id, n_steps=8, return_delta=True)
        assert len(s) == e.n_words
        np.testing.assert_allclose(s, alone[0], atol=1e-4)
        assert d == pytest.approx(d1, abs=1e-4)


def test_tokenizer_without_pad_token(tokenizer):
    """Fault 9: the IG ranking refuses a tokenizer without a pad token (no silent id-0 baseline) unless
    the baseline token is named; a given ranking needs no baseline (padding is masked anyway)."""
    import copy

    from eg_train.foundation.attribution import BaselineTokenError

    model = BagOfTokens(tokenizer)
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(BaselineTokenError, match="no pad token"):
        faithfulness(model, no_pad, [TEXT], n_steps=4)
    # The bag-of-tokens model's [PAD] row is zero, like its [UNK] row: same closed form as with PAD.
    named = faithfulness(model, no_pad, [TEXT], n_steps=4, baseline_token_id=no_pad.unk_token_id)
    reference = faithfulness(model, tokenizer, [TEXT], n_steps=4)
    assert named.comprehensiveness == pytest.approx(reference.comprehensiveness, abs=1e-6)
    words = list(split_words(TEXT).words)
    given = faithfulness(model, no_pad, [TEXT, "card declined"], attributions=[np.array([WORD_SCORES[w] for w in words]), np.array([0.0, 1.0])])
    assert given.targets[0] == 0


def test_model_inputs_are_on_the_model_device(tokenizer):
    """Fault 8: predictions and IG feed the model tensors on its own device (checked by a pre-hook)."""
    model = BagOfTokens(tokenizer)
    seen = []

    def hook(module, args, kwargs):
        dev = next(module.parameters()).device
        for t in [*args, *kwargs.values()]:
            if isinstance(t, torch.Tensor):
                assert t.device == dev
                seen.append(t)

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        faithfulness(model, tokenizer, [TEXT, "card declined"], n_steps=4)
    finally:
        handle.remove()
    assert seen


def test_eval_config_device_option():
    from eg_train.evaluation.evaluate import EvalConfig

    assert EvalConfig().device == "cpu"
