"""The prefix-cached, batched scorer equals one full uncached forward on the real SmolLM2."""

import numpy as np
import pytest

from priors.prompts import class_aware_template, plain_template
from priors.scorer import LabelScorer

TEXTS = [
    "My card is blocked, I typed the wrong PIN three times.",
    "How old do I need to be to open an account?",
    "card",
    "",  # an all-masked perturbation is a valid prompt
]


@pytest.fixture(scope="module")
def labels(banking_train):
    return banking_train.label_names


@pytest.mark.parametrize("kind", ["class_aware", "plain"])
def test_cached_equals_full_prompt(smollm, labels, kind):
    tpl = class_aware_template(labels) if kind == "class_aware" else plain_template()
    scorer = LabelScorer(*smollm, tpl, labels, batch_size=3)
    ys = [labels.index("pin_blocked"), labels.index("age_limit"), labels.index("card_arrival"), 0]
    cached = scorer.log_prob(TEXTS, ys)
    full = np.array([scorer.full_prompt_log_prob(t, y) for t, y in zip(TEXTS, ys)])
    assert np.max(np.abs(np.exp(cached) - np.exp(full))) <= 1e-4
    np.testing.assert_allclose(cached, full, atol=2e-4)
    assert scorer.queries == len(TEXTS)


def test_part_tokenisation_equals_full_tokenisation(smollm, labels):
    model, tok = smollm
    scorer = LabelScorer(model, tok, class_aware_template(labels), labels)
    for text, y in [(TEXTS[0], 5), ("What's the exchange rate?", 40)]:
        parts = scorer.prefix_ids + scorer.text_ids(text) + scorer.tail_ids + scorer.label_ids[y]
        full = tok(scorer.template.render(text, labels[y].replace("_", " ")), add_special_tokens=False)["input_ids"]
        assert parts == full


def test_batch_size_does_not_change_scores(smollm, labels):
    ys = [3, 7, 11, 0]
    a = LabelScorer(*smollm, class_aware_template(labels), labels, batch_size=1).log_prob(TEXTS, ys)
    b = LabelScorer(*smollm, class_aware_template(labels), labels, batch_size=4).log_prob(TEXTS, ys)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_renormalised_probabilities_sum_to_one(smollm):
    names = ["card_arrival", "pin_blocked", "age_limit", "exchange_rate"]
    scorer = LabelScorer(*smollm, class_aware_template(names), names, renormalise=True)
    lp = np.array([scorer.log_prob([TEXTS[0]], [y])[0] for y in range(len(names))])
    assert abs(np.exp(lp).sum() - 1.0) < 1e-6
    raw = LabelScorer(*smollm, class_aware_template(names), names).log_prob([TEXTS[0]] * 4, [0, 1, 2, 3])
    np.testing.assert_allclose(lp, raw - np.logaddexp.reduce(raw), atol=1e-9)


def test_truncation_is_counted(smollm, labels):
    scorer = LabelScorer(*smollm, plain_template(), labels, max_text_tokens=5)
    scorer.log_prob([TEXTS[0], "card"], [0, 0])
    assert scorer.truncated == 1
