"""The LLM counterfactual of the audit: its scorer against a direct forward of the whole prompt, its verdict
against hand-computed figures, and a known answer with a real LLM (SmolLM2-135M): inserting a class's own
keyword moves the LLM towards the class, inserting a nonce string does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eg_train.evaluation.audit.candidates import feature_table, score_candidates
from eg_train.evaluation.audit.llm_check import PairBatch, cap_log_prob, llm_rows, llm_verdict
from eg_train.evaluation.audit.proof import prove
from eg_train.evaluation.audit.run import AuditConfig
from eg_train.foundation.data.source import readable_label
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.words import split_words
from priors.prompts import DEFAULT_INSTRUCTION, class_aware_template

NAMES = ["card_arrival", "exchange_rate", "top_up_failed"]


def test_the_scorer_path_equals_a_direct_forward_of_the_whole_prompt(smollm):
    model, tok = smollm
    texts, labels = ["my card has not arrived", "what is the exchange rate today"], [0, 1]
    got = cap_log_prob(smollm, NAMES)(texts, labels)
    template = class_aware_template(NAMES, DEFAULT_INSTRUCTION)
    for text, y, lp in zip(texts, labels, got):
        prompt = tok(template.render(text))["input_ids"]
        full = tok(template.render(text, readable_label(NAMES[y])))["input_ids"]
        assert full[: len(prompt)] == prompt  # the label's tokens follow the prompt's
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([full])).logits[0].double()
        steps = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        direct = float(steps[torch.arange(len(full) - len(prompt)), torch.tensor(full[len(prompt):])].sum())
        assert lp == pytest.approx(direct, abs=2e-3)


def test_the_verdict_is_the_paired_interval_of_the_two_changes():
    base = np.zeros(6)
    feature = np.array([1.0, 1.2, 0.8, 1.1, 0.9, 1.0])
    control = np.array([0.1, -0.1, 0.0, 0.05, -0.05, 0.0])
    v = llm_verdict(base, feature, control, n_boot=500, seed=0)
    assert v["llm_n"] == 6 and v["llm_delta_log_p"] == pytest.approx(1.0) and v["llm_delta_log_p_control"] == pytest.approx(0.0)
    assert 0.8 < v["llm_ci95"][0] < 1.0 < v["llm_ci95"][1] < 1.2 and v["llm_evidence"]
    # Lowering log p(c) less than a control does is no evidence: the LLM does not move towards c.
    v = llm_verdict(base, feature - 2.0, control - 3.0, n_boot=500, seed=0)
    assert v["llm_ci95"][0] > 0 and not v["llm_evidence"]
    assert llm_verdict(base[:0], base[:0], base[:0], n_boot=10, seed=0)["llm_ci95"] is None


def test_the_random_word_margin_is_a_bonferroni_prediction_bound_of_the_pooled_word_spread():
    from scipy.stats import t

    from eg_train.evaluation.audit.llm_check import apply_word_margin, word_margin

    words = [np.array([0.0, 0.2, -0.2]), np.array([1.0, 1.4])]  # E_j of two candidates' control words
    ss, df = 0.04 + 0.04 + 0.04 + 0.04, 2 + 1  # squares around each candidate's mean
    margin, got_df = word_margin(words, 0.975)
    assert got_df == df and margin == pytest.approx(t.ppf(0.975, df) * np.sqrt(ss / df))
    base, n = np.zeros(4), 4
    verdicts = [llm_verdict(base, np.full(n, 2.0), np.stack([np.full(n, w) for w in words[0]]), n_boot=200, seed=0),
                llm_verdict(base, np.full(n, 1.3), np.stack([np.full(n, w) for w in words[1]]), n_boot=200, seed=0)]
    assert verdicts[0]["llm_evidence"] and verdicts[1]["llm_evidence"]  # the paired half: both above their controls
    apply_word_margin(verdicts)
    bound = t.ppf(1 - 0.025 / 2, df) * np.sqrt(ss / df)  # two candidates: Bonferroni over 2
    assert verdicts[0]["llm_word_margin"] == pytest.approx(bound * np.sqrt(1 + 1 / 3))
    assert verdicts[0]["llm_evidence"]  # 2.0 above its controls' mean 0: beyond any random word's range
    assert not verdicts[1]["llm_evidence"]  # 1.3 against 1.2: within a random word's range


def test_pairs_are_scored_once_and_rows_follow_the_seeded_order():
    batch = PairBatch()
    a = batch.add(["x", "y", "x"], 1)
    b = batch.add(["x"], 2)
    assert a.tolist() == [0, 1, 0] and b.tolist() == [2] and len(batch) == 3
    seen = []
    batch.score(lambda t, y: seen.append((list(t), list(y))) or np.arange(len(t), dtype=float))
    assert seen == [(["x", "y", "x"][:2] + ["x"], [1, 1, 2])]
    assert llm_rows([1, 3, 5, 7], order=[7, 0, 5, 1, 3], max_texts=2) == [5, 7]
    assert llm_rows([1, 3], order=[3, 1], max_texts=None) == [1, 3]


@pytest.mark.parametrize("kw, message", [({"llm_contrast": "top_m"}, "llm_contrast"), ({"llm_scope": "some"}, "llm_scope"),
                                         ({"llm_max_texts": 1}, "llm_max_texts")])
def test_bad_llm_settings_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        AuditConfig(**kw)


def test_an_llm_that_cannot_be_loaded_is_one_actionable_error(tmp_path):
    with pytest.raises(ConfigError, match="params.llm null"):
        cap_log_prob(str(tmp_path / "no-such-llm"), NAMES)


@pytest.fixture(scope="module")
def banking8():
    """The first 8 Banking77 intents: 5 training texts per class (a nonce ``zqab`` planted at the end of every
    card-arrival one) and the next 2 per class as the held-out split."""
    from eg_train.foundation.data import DataSpec, load_split

    split = load_split(DataSpec(preset="banking77", classes=8), "train")
    names, texts, labels = list(split.label_names), split.dataset["text"], split.dataset["label"]
    train, held = [], []
    for c in range(len(names)):
        rows = [t for t, y in zip(texts, labels) if y == c]
        train += [(t + " zqab" if c == 0 else t, c) for t in rows[:5]]
        held += [(t, c) for t in rows[5:7]]
    return names, train, held


def keyword_classifier(names):
    """A known rule: ``zqab`` -> class 0, else ``currencies`` -> fiat_currency_support, else card_linking."""
    kw, other = names.index("fiat_currency_support"), names.index("card_linking")

    def predict(texts):
        out = np.full((len(texts), len(names)), 0.01)
        for i, t in enumerate(texts):
            words = [w.lower() for w in split_words(t).words]
            out[i, 0 if "zqab" in words else kw if "currencies" in words else other] = 0.9
        return out

    return predict


@pytest.mark.slow
def test_a_class_keyword_is_llm_evidence_and_a_nonce_token_is_not(smollm, banking8):
    names, train, held = banking8
    table = feature_table([t for t, _ in train], [y for _, y in train], len(names))
    flat = [np.ones(len(split_words(t))) for t, _ in train]
    scored = score_candidates(table, flat, flat)
    nonce = next(c for c in scored if c.feature == "zqab" and c.label == 0)
    keyword = next(c for c in scored if c.feature == "currencies" and names[c.label] == "fiat_currency_support")
    prove([nonce, keyword], table, [t for t, _ in held], [y for _, y in held], keyword_classifier(names), n_controls=3,
          n_boot=1000, llm=cap_log_prob(smollm, names), llm_max_texts=None, llm_scope="tested")
    n, k = nonce.proof, keyword.proof
    # The classifier follows both (its rule): both flip it, their controls do not.
    assert n["flip_ci95"][0] > 0 and k["flip_ci95"][0] > 0
    # The LLM: "currencies" moves it towards the fiat-currency intent, more than its control words and more
    # than a random word would; "zqab" does not move it towards card arrival.
    assert k["llm_tested"] and k["llm_n"] >= 10
    assert k["llm_delta_log_p"] > 0 and k["llm_ci95"][0] > 0 and k["llm_evidence"] and not k["confirmed"]
    assert k["llm_delta_log_p"] - k["llm_delta_log_p_control"] > k["llm_word_margin"] > 0
    assert n["llm_tested"] and n["llm_n"] >= 10 and not n["llm_evidence"] and n["confirmed"]
