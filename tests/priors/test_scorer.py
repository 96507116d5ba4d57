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
    # The raw rows (one full row per label) against the body + label-tree path: same quantity,
    # different forward passes, so float32 rounding apart.
    raw = LabelScorer(*smollm, class_aware_template(names), names).log_prob([TEXTS[0]] * 4, [0, 1, 2, 3])
    np.testing.assert_allclose(lp, raw - np.logaddexp.reduce(raw), atol=2e-4)


def test_truncation_is_counted(smollm, labels):
    scorer = LabelScorer(*smollm, plain_template(), labels, max_text_tokens=5)
    scorer.log_prob([TEXTS[0], "card"], [0, 0])
    assert scorer.truncated == 1


def test_shared_prefix_attention_equals_sdpa_over_concatenated_keys():
    from types import SimpleNamespace

    import torch

    from priors.scorer import shared_prefix_attention

    torch.manual_seed(0)
    B, H, Hkv, P, L, D = 3, 6, 2, 7, 5, 8
    q = torch.randn(B, H, L, D)
    k, v = torch.randn(B, Hkv, L, D), torch.randn(B, Hkv, L, D)
    pk, pv = torch.randn(1, Hkv, P, D), torch.randn(1, Hkv, P, D)
    lengths = torch.tensor([5, 3, 1])
    pos = torch.arange(L)
    allowed = ((pos[:, None] >= pos[None, :])[None] & (pos[None, None, :] < lengths[:, None, None])).unsqueeze(1)
    out, _ = shared_prefix_attention(SimpleNamespace(layer_idx=0), q, k, v, allowed, scaling=0.3, shared_prefix=[(pk, pv)])
    # Reference: every row gets its own copy of the prefix, GQA heads repeated, one sdpa call.
    keys = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2).repeat_interleave(H // Hkv, dim=1)
    values = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2).repeat_interleave(H // Hkv, dim=1)
    mask = torch.cat([torch.ones(B, 1, L, P, dtype=torch.bool), allowed], dim=-1)
    ref = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=0.3)
    for r, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[r, :n], ref.transpose(1, 2)[r, :n], atol=1e-5, rtol=1e-5)


def test_both_prefix_paths_equal_full_prompt(smollm, labels):
    ys = [labels.index("pin_blocked"), 3, 7, 0]
    scores = {}
    for shared in (True, False):
        scorer = LabelScorer(*smollm, class_aware_template(labels), labels, batch_size=4)
        assert scorer._use_shared_prefix(scorer.prefix_ids)  # SmolLM2 (Llama) supports the attention interface
        scorer._shared_prefix = shared
        scores[shared] = scorer.log_prob(TEXTS, ys)
    full = np.array([scorer.full_prompt_log_prob(t, y) for t, y in zip(TEXTS, ys)])
    for shared in (True, False):
        np.testing.assert_allclose(scores[shared], full, atol=2e-4)
