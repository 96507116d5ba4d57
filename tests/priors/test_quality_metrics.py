"""Prior-quality metrics against known answers and independent references (scipy)."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from eg_train.foundation.keywords import class_keywords
from eg_train.foundation.words import split_words
from priors.quality.agreement import ReferenceKeywords, keyword_precision, mean_spearman, spearman, KeywordSettings
from priors.quality.competence import competence, gold_ranks
from priors.quality.faithfulness import deletion_aopc, deletion_sizes


# ---------------------------------------------------------------- competence
def test_competence_known_answer():
    lp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]))
    gold = [0, 1, 1, 2]
    np.testing.assert_array_equal(gold_ranks(lp, gold), [1, 2, 2, 1])
    c = competence(lp, gold)
    assert c["llm_accuracy"] == 0.5 and c["median_gold_rank"] == 1.5 and c["mean_gold_rank"] == 1.5
    assert c["chance"] == pytest.approx(1 / 3) and c["n"] == 4
    assert c["mean_log_p_gold"] == pytest.approx(np.mean(np.log([0.7, 0.3, 0.4, 0.6])))


def test_competence_rejects_non_finite():
    with pytest.raises(ValueError, match="not finite"):
        competence(np.array([[0.0, np.nan]]), [0])


# ---------------------------------------------------------------- keywords
REF_TEXTS = [f"my card zebra arrived {i}" for i in range(8)] + [f"my card quokka arrived {i}" for i in range(8)]
REF_LABELS = [0] * 8 + [1] * 8


def test_planted_keyword_first_gets_precision_one():
    ref = ReferenceKeywords(REF_TEXTS, REF_LABELS, 2, KeywordSettings(min_z=1.0))
    assert ref.keywords == [{"zebra"}, {"quokka"}]
    words = [split_words("where is my zebra card"), split_words("the quokka never came")]
    kws = [ref.for_example("", 0), ref.for_example("", 1)]
    planted = [np.array([0.1, 0.2, 0.3, 0.9, 0.0]), np.array([0.0, 5.0, 1.0, 2.0])]
    r = keyword_precision(words, planted, kws, k=1)
    assert r["keyword_precision_at_1"] == 1.0
    assert r["keyword_precision_at_1_ceiling"] == 1.0
    assert r["keyword_precision_at_1_random"] == pytest.approx((1 / 5 + 1 / 4) / 2)
    fluent = [np.array([0.9, 0.8, 0.7, 0.0, 0.6]), np.array([5.0, 0.0, 1.0, 2.0])]
    assert keyword_precision(words, fluent, kws, k=1)["keyword_precision_at_1"] == 0.0
    # At k = 3 the keyword is one of the top 3 distinct words of the planted prior: 1/3.
    assert keyword_precision(words, planted, kws, k=3)["keyword_precision_at_3"] == pytest.approx(1 / 3)


def test_repeated_words_count_once():
    w = split_words("zebra zebra zebra card")
    r = keyword_precision([w], [np.array([3.0, 2.0, 1.0, 0.0])], [{"zebra", "card"}], k=2)
    assert r["keyword_precision_at_2"] == 1.0  # top-2 distinct: zebra, card


def test_leave_one_out_equals_mining_without_the_text():
    texts = REF_TEXTS + ["zebra zebra lost", "quokka quokka gone", "zebra gone lost"]
    labels = REF_LABELS + [0, 1, 0]
    s = KeywordSettings(min_z=0.5, min_count=1, top=5)
    ref = ReferenceKeywords(texts, labels, 2, s)
    for j in range(len(texts)):
        rest_t = texts[:j] + texts[j + 1 :]
        rest_y = labels[:j] + labels[j + 1 :]
        expected = class_keywords(rest_t, rest_y, 2, top=s.top, min_z=s.min_z, prior_scale=s.prior_scale, min_count=1)
        assert ref.for_example(texts[j], labels[j], leave_out=True) == set(expected[labels[j]])


# ---------------------------------------------------------------- Spearman
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 20):
        for _ in range(30):
            a = rng.integers(0, 4, n).astype(float)  # many ties
            b = rng.normal(size=n)
            ref = spearmanr(a, b).statistic
            got = spearman(a, b)
            if np.isnan(ref):
                assert np.isnan(got)
            else:
                assert got == pytest.approx(ref, abs=1e-12)


def test_mean_spearman_skips_missing_and_constant():
    a = [np.array([1.0, 2, 3]), None, np.array([1.0, 1, 1]), np.array([3.0, 2, 1])]
    b = [np.array([1.0, 2, 3]), np.array([1.0, 2]), np.array([1.0, 2, 3]), np.array([1.0, 2, 3])]
    assert mean_spearman(a, b) == (0.0, 2)  # (+1 and -1) over the 2 defined examples


# ---------------------------------------------------------------- deletion AOPC
class AdditiveScorer:
    """A deterministic toy LLM: f(text) = the sum of fixed word weights of the words present."""

    def __init__(self, weights):
        self.weights = weights
        self.calls = 0

    def __call__(self, texts, labels, examples):
        self.calls += 1
        return np.array([sum(self.weights.get(w, 0.0) for w in split_words(t).words) for t in texts])


def _toy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(50)]
    weights = {w: float(rng.exponential()) for w in vocab}
    words, oracle = [], []
    for _ in range(n):
        toks = list(rng.choice(vocab, size=int(rng.integers(4, 15)), replace=False))
        w = split_words(" ".join(toks))
        words.append(w)
        oracle.append(np.array([weights[t] for t in w.words]))
    return words, oracle, AdditiveScorer(weights)


def test_deletion_sizes():
    assert deletion_sizes(11) == [1, 2, 3, 4, 6]
    assert deletion_sizes(3) == [1, 2]
    assert deletion_sizes(1) == [1]
    assert deletion_sizes(0) == []


def test_oracle_aopc_is_the_sum_of_the_top_weights():
    words, oracle, f = _toy(40)
    res = deletion_aopc(words, oracle, [0] * len(words), f, n_random=2)
    expected = [np.mean([np.sort(s)[::-1][:k].sum() for k in deletion_sizes(len(s))]) for s in oracle]
    np.testing.assert_allclose(res.per_example, expected, rtol=1e-9)
    assert res.ratio > 1.5
    assert f.calls == 1  # one batched call for every query


def test_random_prior_has_ratio_near_one_and_inverse_below():
    words, oracle, f = _toy(400)
    rng = np.random.default_rng(1)
    random_prior = [rng.normal(size=len(w)) for w in words]
    r = deletion_aopc(words, random_prior, [0] * len(words), f, n_random=3, seed=5).ratio
    assert 0.9 < r < 1.1
    inverse = deletion_aopc(words, [-s for s in oracle], [0] * len(words), f, n_random=3).ratio
    assert inverse < 0.7


def test_deletion_queries_are_deduplicated_and_seeded():
    words, oracle, f = _toy(5)
    a = deletion_aopc(words, oracle, [0] * 5, f, ids=list("abcde"), n_random=2, seed=3)
    b = deletion_aopc(words, oracle, [0] * 5, f, ids=list("abcde"), n_random=2, seed=3)
    assert a.per_example_random == b.per_example_random
    n_max = sum(1 + 3 * len(deletion_sizes(len(w))) for w in words)
    assert a.queries <= n_max


def test_deletion_rejects_mismatched_scores():
    with pytest.raises(ValueError, match="scores for"):
        deletion_aopc([split_words("a b c")], [np.array([1.0, 2.0])], [0], lambda t, y, e: np.zeros(len(t)))


def test_each_query_names_its_example():
    words, oracle, f = _toy(6)

    def checked(texts, labels, examples):
        for t, e in zip(texts, examples):
            assert set(split_words(t).words) <= set(words[e].words)
        return f(texts, labels, examples)

    deletion_aopc(words, oracle, list(range(6)), checked, n_random=2)


def test_a_random_reference_that_does_not_lower_the_score_gives_no_ratio():
    # f rises as words go (a fluency effect): random deletion AOPC < 0, so the ratio is undefined.
    words = [split_words("a b c d e f")] * 3
    res = deletion_aopc(words, [np.arange(6.0)] * 3, [0] * 3, lambda t, y, e: -np.array([len(x) for x in t], float),
                        ids=["x", "y", "z"])
    assert res.aopc_random < 0 and np.isnan(res.ratio)
    assert res.summary()["deletion_aopc_gain_vs_random"] == pytest.approx(res.aopc - res.aopc_random)
