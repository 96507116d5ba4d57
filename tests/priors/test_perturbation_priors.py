"""LIME and CAP against known answers: a linear scoring function, and a planted keyword."""

import numpy as np
import pytest

from eg_train.foundation.words import split_words
from priors.base import PriorBatch
from priors.methods.cap import CapPrior
from priors.methods.lime import LimePrior
from priors.methods.perturbation import neg_inv_log
from priors.prompts import plain_template


class KnownScorer:
    """A scoring function with a known answer: ``log p`` computed from the kept words."""

    def __init__(self, fn):
        self.fn = fn
        self.template = plain_template()
        self.renormalise = False
        self.label_names = ["a", "b"]
        self.max_text_tokens = 512
        self.queries = 0

    def log_prob(self, texts, labels):
        self.queries += len(texts)
        return np.array([self.fn(set(split_words(t).words)) for t in texts])


def test_lime_recovers_linear_weights():
    text = "alpha beta gamma delta epsilon"
    weights = {"alpha": 0.3, "beta": -0.1, "gamma": 0.0, "delta": 0.25, "epsilon": 0.05}
    # p = 0.3 + Σ w_j m_j stays inside (0, 1) for every mask.
    scorer = KnownScorer(lambda kept: np.log(0.3 + sum(weights[w] for w in kept)))
    prior = LimePrior(scorer, model_id="known", n_samples=400, ridge_lambda=1e-6, seed=3)
    [res] = prior.compute(PriorBatch(ids=["x"], texts=[text], labels=[0]))
    np.testing.assert_allclose(res.scores, list(weights.values()), atol=1e-5)
    assert res.queries == 400 and scorer.queries == 400


def test_cap_target_is_not_clipped():
    z = neg_inv_log(np.array([-20.0, -23.0, -1e-12]))
    assert z[0] != z[1] and np.isfinite(z).all()
    np.testing.assert_allclose(z[:2], [1 / 20, 1 / 23])


def test_cap_ranks_the_planted_keyword_first_even_at_tiny_probabilities():
    text = "please help my card got blocked after typing the pin"
    # log p around -20 (p ~ 1e-9, below any clipping threshold); 'blocked' and 'pin' raise it.
    scorer = KnownScorer(lambda kept: -22.0 + 3.0 * ("blocked" in kept) + 1.5 * ("pin" in kept))
    prior = CapPrior(scorer, model_id="known", n_samples=100, seed=0)
    [res] = prior.compute(PriorBatch(ids=["x"], texts=[text], labels=[0]))
    words = split_words(text).words
    order = [words[i] for i in np.argsort(-res.scores)]
    assert order[:2] == ["blocked", "pin"]


def test_masks_are_seeded_per_example_and_include_all_ones():
    scorer = KnownScorer(lambda kept: -1.0)
    prior = CapPrior(scorer, model_id="known", n_samples=20, seed=7)
    b1 = PriorBatch(ids=["a", "b"], texts=["one two three", "four five"], labels=[0, 1])
    b2 = PriorBatch(ids=["b"], texts=["four five"], labels=[1])
    m1, m2 = prior.masks_for(b1), prior.masks_for(b2)
    np.testing.assert_array_equal(m1[1], m2[0])
    assert m1[0][0].all() and m1[1][0].all()
    assert prior.config_hash() != CapPrior(scorer, model_id="known", n_samples=20, seed=8).config_hash()


@pytest.mark.parametrize("method", [LimePrior, CapPrior])
def test_batching_examples_equals_one_at_a_time(method):
    scorer = KnownScorer(lambda kept: -5.0 + 0.5 * len(kept & {"card", "pin"}) - 0.1 * len(kept))
    prior = method(scorer, model_id="known", n_samples=30)
    texts = ["my card pin", "card", "the pin is wrong again today"]
    batch = PriorBatch(ids=["1", "2", "3"], texts=texts, labels=[0, 0, 1])
    together = prior.compute(batch)
    for k in range(3):
        [alone] = prior.compute(PriorBatch(ids=[batch.ids[k]], texts=[texts[k]], labels=[batch.labels[k]]))
        np.testing.assert_allclose(together[k].scores, alone.scores, atol=1e-6)
