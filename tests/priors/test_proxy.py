"""ClassifierScorer against a direct, unbatched, unchunked forward of the same real SLM."""

import numpy as np
import pytest
import torch

from priors.proxy import ClassifierScorer, scorer_config, split_sentences

LABELS = ["balance", "transfer", "weather"]


@pytest.fixture(scope="module")
def slm():
    from eg_train.foundation.models.resolve import load_sequence_classifier

    torch.manual_seed(0)  # the fresh classification head is seeded: scores are reproducible
    model, tok = load_sequence_classifier("all-minilm-l6-v2", LABELS)
    return model.eval(), tok


def reference(model, tok, text: str) -> np.ndarray:
    """log-softmax logits of one text, one forward, no padding."""
    with torch.inference_mode():
        logits = model(**tok(text, return_tensors="pt", truncation=True, max_length=512)).logits[0]
    return logits.double().numpy()


def log_softmax(z: np.ndarray) -> np.ndarray:
    return z - np.logaddexp.reduce(z)


def test_split_sentences_known_answer():
    text = "What is my balance? Send money now.\n\nIt rains!  ok\n.  "
    assert split_sentences(text) == ["What is my balance?", "Send money now.", "It rains!", "ok"]


def test_unchunked_scores_match_single_forward(slm):
    model, tok = slm
    texts = ["what is my balance", "send fifty dollars to my sister please", "will it rain tomorrow in paris"]
    labels = [0, 1, 2]
    scorer = ClassifierScorer(model, tok, model_id="minilm", batch_size=2)
    got = scorer.log_prob(texts, labels)
    want = [log_softmax(reference(model, tok, t))[y] for t, y in zip(texts, labels)]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert scorer.queries == 3 and scorer.chunks_encoded == 3


def test_sentence_chunks_pool_by_logsumexp_and_are_memoised(slm):
    model, tok = slm
    sents = ["What is my balance?", "Send money to John.", "Will it rain?"]
    text = " ".join(sents)
    ref = np.stack([reference(model, tok, s) for s in sents])
    scorer = ClassifierScorer(model, tok, chunking="sentence", pooling="logsumexp")
    got = scorer.log_prob([text, text], [0, 2])
    pooled = np.logaddexp.reduce(ref, axis=0)
    np.testing.assert_allclose(got, [log_softmax(pooled)[0], log_softmax(pooled)[2]], atol=1e-5)
    assert scorer.chunks_encoded == 3  # the repeated text reuses its chunks
    # A perturbation that touches one sentence encodes only that sentence.
    scorer.log_prob(["What is my balance? Send money. Will it rain?"], [1])
    assert scorer.chunks_encoded == 4 and scorer.queries == 3
    mean = ClassifierScorer(model, tok, chunking="sentence", pooling="mean", cache_size=0)
    np.testing.assert_allclose(mean.log_prob([text], [1]), [log_softmax(ref.mean(axis=0))[1]], atol=1e-5)
    np.testing.assert_allclose(mean.log_prob([text], [1]), mean.log_prob([text], [1]))
    assert mean.chunks_encoded == 9  # no memo: each of the 3 calls encodes its 3 sentences
    best = ClassifierScorer(model, tok, chunking="sentence", pooling="max")
    per_sentence = np.stack([log_softmax(r) for r in ref])
    np.testing.assert_allclose(best.log_prob([text, text], [0, 1]), per_sentence.max(axis=0)[[0, 1]], atol=1e-5)


def test_window_chunks_cover_the_text(slm):
    model, tok = slm
    text = " ".join(["my account balance is wrong"] * 30)
    scorer = ClassifierScorer(model, tok, chunking="window", max_length=32)
    chunks = scorer._chunks(text)
    assert len(chunks) > 1
    body = [tok(c, add_special_tokens=False)["input_ids"] for c in chunks]
    assert all(len(b) <= 30 for b in body)
    assert sum(body, []) == tok(text, add_special_tokens=False)["input_ids"]
    got = scorer.log_prob([text], [0])
    pooled = np.logaddexp.reduce(np.stack([reference(model, tok, c) for c in chunks]), axis=0)
    np.testing.assert_allclose(got, [log_softmax(pooled)[0]], atol=1e-5)


def test_bad_arguments_are_clear(slm):
    model, tok = slm
    with pytest.raises(ValueError, match="chunking"):
        ClassifierScorer(model, tok, chunking="paragraph")
    scorer = ClassifierScorer(model, tok)
    with pytest.raises(ValueError, match="label id 5"):
        scorer.log_prob(["hello"], [5])
    with pytest.raises(ValueError, match="1 texts but 2 labels"):
        scorer.log_prob(["hello"], [0, 1])


def test_config_names_everything_that_changes_scores(slm):
    model, tok = slm
    a = scorer_config(ClassifierScorer(model, tok, model_id="m", chunking="sentence"))
    b = scorer_config(ClassifierScorer(model, tok, model_id="m", chunking="window"))
    assert a != b and a["labels"] == LABELS and scorer_config(ClassifierScorer(model, tok), "x")["model"] == "x"
