"""IG prior against captum's IntegratedGradients on the input embeddings, and completeness."""

import numpy as np
import pytest
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


def test_runs_on_the_configured_device_and_inputs_follow_the_model():
    """Fault 8: the prior takes a device, moves the model there, and feeds it inputs on that device."""
    from eg_train.foundation.device import module_device

    model, tok = _model()
    prior = IGPrior(model, tok, model_id="minilm", n_steps=4, device="cpu")
    assert module_device(prior.model) == torch.device("cpu")
    seen = []

    def hook(module, args, kwargs):
        for t in [*args, *kwargs.values()]:
            if isinstance(t, torch.Tensor):
                assert t.device == module_device(module)
                seen.append(t)

    handle = prior.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        [res] = prior.compute(PriorBatch(ids=["x"], texts=["card not arrived"], labels=[0]))
    finally:
        handle.remove()
    assert seen and isinstance(res.scores, np.ndarray) and res.scores.shape == (3,)
    with pytest.raises(ValueError, match="requested, but torch|not a torch device"):
        IGPrior(model, tok, model_id="minilm", device="cuda" if not torch.cuda.is_available() else "gpu0")


def test_build_methods_honours_the_device_option():
    from eg_train.foundation.device import module_device
    from priors.config import PriorsConfig, build_methods

    assert PriorsConfig().device == "cpu"
    cfg = PriorsConfig(methods=["ig"], slm_checkpoint="all-minilm-l6-v2", ig_steps=4, device="cpu")
    [prior] = build_methods(cfg, LABELS)
    assert isinstance(prior, IGPrior) and module_device(prior.model) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="requested, but torch"):
            build_methods(PriorsConfig(methods=["ig"], slm_checkpoint="all-minilm-l6-v2", device="cuda"), LABELS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_prior_equals_cpu_prior():
    model, tok = _model()
    batch = PriorBatch(ids=["a", "b"], texts=["card", "where is my new card, it has not arrived yet"], labels=[0, 1])
    cpu = IGPrior(model, tok, model_id="minilm", n_steps=16, device="cpu").compute(batch)
    gpu = IGPrior(model, tok, model_id="minilm", n_steps=16, device="cuda").compute(batch)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a.scores, b.scores, atol=2e-3)


def test_tokenizer_without_pad_token_is_refused_or_uses_the_named_baseline():
    """Fault 9: no silent pad id 0 as the baseline; an explicit baseline token changes the cache key."""
    from eg_train.foundation.attribution import BaselineTokenError

    model, tok = _model()
    tok.pad_token = None
    with pytest.raises(BaselineTokenError, match="no pad token"):
        IGPrior(model, tok, model_id="minilm")
    prior = IGPrior(model, tok, model_id="minilm", n_steps=8, baseline_token_id=tok.unk_token_id)
    assert prior.config()["baseline"] == f"cls-token{tok.unk_token_id}-sep"
    [res] = prior.compute(PriorBatch(ids=["x"], texts=["how old do I need to be"], labels=[2]))
    enc = tok("how old do I need to be", return_tensors="pt", return_special_tokens_mask=True)
    base = torch.where(enc["special_tokens_mask"].bool(), enc["input_ids"], torch.full_like(enc["input_ids"], tok.unk_token_id))
    with torch.no_grad():
        diff = (model(input_ids=enc["input_ids"]).logits[0, 2] - model(input_ids=base).logits[0, 2]).item()
    assert res.scores.sum() == pytest.approx(diff, abs=0.05 * max(1.0, abs(diff)))  # completeness w.r.t. [UNK]


def test_default_cache_key_is_unchanged():
    """Existing IG caches stay valid: the config (hence the hash) has the same keys and values as before."""
    model, tok = _model()
    cfg = IGPrior(model, tok, model_id="minilm", n_steps=50).config()
    assert cfg == {"model": "minilm", "weights": "n/a", "n_steps": 50, "method": "gausslegendre", "max_length": 256, "baseline": "cls-pad-sep"}
