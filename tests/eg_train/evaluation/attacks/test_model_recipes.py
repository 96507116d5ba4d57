"""Known-answer tests of the model-aware recipes' parts, on a hand-checkable classifier and the real fixture model."""

import math

import numpy as np
import pytest
import torch

from eg_train.evaluation.attacks.core import TextState
from eg_train.evaluation.attacks.model_attack import (
    ModelAttack,
    NoNegationOrAntonym,
    RepeatModification,
    LevenshteinEditDistance,
    StopwordModification,
)
from eg_train.evaluation.attacks.recipes import RECIPES, ModelAttackConfig, build_recipe
from eg_train.evaluation.attacks.search import GreedyWordImportance, run_jobs
from eg_train.evaluation.attacks.similarity import TEXTFOOLER_COSINE, window_text
from eg_train.evaluation.attacks.stopwords import ENGLISH
from eg_train.evaluation.attacks.transforms import CharacterEdits, SynonymSwap, char_edit
from eg_train.evaluation.attacks.victim import UntargetedGoal, VictimModel

# A bag-of-words classifier whose probabilities can be worked out by hand: logit_c = sum of word weights.
WEIGHTS = {"alpha": (2.0, 0.0), "beta": (1.0, 0.0), "gamma": (0.5, 0.0), "delta": (0.0, 1.0), "eps": (0.0, 3.0)}


def bow_probs(texts):
    out = []
    for t in texts:
        logits = np.zeros(2)
        for w in TextState.from_text(t).words:
            logits += WEIGHTS.get(w.lower(), (0.0, 0.0))
        e = np.exp(logits - logits.max())
        out.append(e / e.sum())
    return np.array(out)


class DictSource:
    source = "dict"
    table = {"alpha": ["delta"], "beta": ["eps"], "gamma": ["delta", "eps"], "the": ["eps"]}

    def neighbours(self, word):
        return [(w, 1.0) for w in self.table.get(word, [])]


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _attack(wir):
    return ModelAttack("test", SynonymSwap(DictSource()), [RepeatModification(), StopwordModification(ENGLISH)],
                       [NoNegationOrAntonym()], GreedyWordImportance(wir))


def _rank(attack, text, gold=0):
    def job():
        goal = UntargetedGoal(gold)
        initial = (yield from goal.evaluate([TextState.from_text(text)]))[0]
        order = yield from attack.search.rank(attack, initial, goal, np.random.default_rng(0))
        return order, goal.queries

    return run_jobs([job()], {"victim": bow_probs})[0]


def test_pwws_orders_words_by_softmax_saliency_times_best_swap_score():
    # By hand: p(class 0 | "alpha beta gamma") = sigmoid(3.5). [UNK] carries no weight, so the
    # saliency scores (1 - p0) are 1 - sigmoid(1.5), 1 - sigmoid(2.5), 1 - sigmoid(3.0); the best swap
    # scores are alpha->delta 1 - sigmoid(0.5), beta->eps 1 - sigmoid(-0.5), gamma->eps 1 - sigmoid(0) = 0.5.
    sal = np.array([1 - sigmoid(1.5), 1 - sigmoid(2.5), 1 - sigmoid(3.0)])
    best = np.array([1 - sigmoid(0.5), 1 - sigmoid(-0.5), 0.5])
    expected = list(np.argsort(-(np.exp(sal) / np.exp(sal).sum()) * best))
    assert expected == [1, 2, 0]  # beta, gamma, alpha: not the saliency order (alpha first)
    order, queries = _rank(_attack("weighted-saliency"), "alpha beta gamma")
    assert order == expected
    assert queries == 1 + 3 + 4  # original, three [UNK] probes, four swap candidates


def test_unk_and_delete_order_by_score_without_the_word():
    assert _rank(_attack("unk"), "alpha beta gamma")[0] == [0, 1, 2]  # removing alpha lowers p0 most
    assert _rank(_attack("delete"), "gamma alpha beta")[0] == [1, 2, 0]


def test_greedy_search_stops_at_first_success_and_counts_queries():
    attack = _attack("weighted-saliency")
    [out] = run_jobs([attack.attack("alpha beta gamma", 0, None, 0)], {"victim": bow_probs})
    assert out.status == "succeeded" and out.final.state.text == "alpha eps gamma"
    assert out.queries == 1 + 3 + 4 + 1 and out.perturbed == [1]
    [skipped] = run_jobs([attack.attack("eps", 0, None, 0)], {"victim": bow_probs})
    assert skipped.status == "skipped" and skipped.queries == 1
    # The budget cuts the search: 5 queries at most, and the attack is reported failed.
    [cut] = run_jobs([attack.attack("alpha beta gamma", 0, 5, 0)], {"victim": bow_probs})
    assert cut.status == "failed" and cut.queries == 5


def test_constraints_reject_stopwords_repeats_and_negations():
    attack = _attack("unk")
    state = TextState.from_text("the alpha is incorrect")
    assert not attack.modifiable(state, 0)  # "the" is a stopword (DictSource has a swap for it)
    assert attack.modifiable(state, 1)
    swapped = state.replace_word(1, "delta")
    assert not attack.modifiable(swapped, 1)  # already modified
    neg = NoNegationOrAntonym()
    assert not neg.allows(state.replace_word(3, "correct"), 3, state)
    assert neg.allows(state.replace_word(3, "wrong"), 3, state)


def test_scheduler_pools_requests_of_all_jobs():
    calls = []

    def channel(texts):
        calls.append(len(texts))
        return bow_probs(texts)

    attack = _attack("weighted-saliency")
    texts = ["alpha beta gamma", "beta gamma alpha", "gamma alpha", "alpha"] * 5
    outs = run_jobs([attack.attack(t, 0, None, i) for i, t in enumerate(texts)], {"victim": channel}, max_active=64)
    single = run_jobs([attack.attack(texts[0], 0, None, 0)], {"victim": bow_probs})[0]
    assert outs[0].final.state.text == single.final.state.text  # concurrency does not change results
    assert len(calls) <= 5 and sum(calls) == sum(o.queries for o in outs)  # ~ one pooled call per search step


def levenshtein(a: str, b: str) -> int:
    """Independent reference: the textbook dynamic programme (insert, delete, substitute: cost 1)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def test_levenshtein_reference_known_answers():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("flaw", "lawn") == 2 and levenshtein("same", "same") == 0


def test_edit_distance_constraint_matches_the_reference_at_its_budget():
    rng = np.random.default_rng(0)
    original = TextState.from_text("please transfer the money to my savings account today")
    for _ in range(200):
        chars = list(original.text)
        for _ in range(int(rng.integers(0, 8))):  # random edits, some past the budget
            k = int(rng.integers(0, len(chars)))
            op = rng.integers(0, 3)
            if op == 0:
                chars[k] = "xyz"[int(rng.integers(0, 3))]
            elif op == 1:
                del chars[k]
            else:
                chars.insert(k, "q")
        candidate = TextState.from_text("".join(chars))
        dist = levenshtein(original.text, candidate.text)
        for budget in (0, 3, 5):
            assert LevenshteinEditDistance(budget).allows(candidate, 0, original) == (dist <= budget)


@pytest.mark.parametrize("op,delta_len", [("swap", 0), ("substitute", 0), ("delete", -1), ("insert", 1)])
def test_character_edits(op, delta_len):
    rng = np.random.default_rng(0)
    for word in ["card", "exchange", "ab"]:
        for _ in range(20):
            new = char_edit(word, op, rng)
            assert len(new) == len(word) + delta_len
            assert levenshtein(word, new) <= (2 if op == "swap" else 1)
            if op == "swap":
                assert sorted(new) == sorted(word)
    assert char_edit("a", op, rng) is None  # one-letter words are left alone, as in TextAttack
    assert all(w != "card" for w in CharacterEdits().replacements("card", np.random.default_rng(1)))


def test_window_text_and_textfooler_threshold():
    s = TextState.from_text(" ".join(f"w{i}" for i in range(30)))
    assert window_text(s, 0, 15).split() == [f"w{i}" for i in range(15)]
    assert window_text(s, 20, 15).split() == [f"w{i}" for i in range(13, 28)]
    assert window_text(TextState.from_text("a short text"), 1, 15) == "a short text"
    assert TEXTFOOLER_COSINE == pytest.approx(math.cos(math.pi * (1 - 0.840845057)))


def test_registry_lists_and_refuses_unknown_recipes():
    assert {"deepwordbug", "pwws", "textfooler"} <= set(RECIPES.names())
    with pytest.raises(ValueError, match=r"^unknown model attack recipe 'textfoolr'; registered: \['deepwordbug', 'pwws', 'textfooler'\]$"):
        ModelAttackConfig(recipes=("deepwordbug", "textfoolr"))
    with pytest.raises(ValueError, match="query_budget"):
        ModelAttackConfig(query_budget=0)
    assert build_recipe("deepwordbug", ModelAttackConfig()).search.wir == "unk"


def test_victim_matches_a_plain_forward_and_caches(checkpoint, test_split):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = list(test_split.dataset["text"][:12])
    victim = VictimModel.from_checkpoint(str(checkpoint), batch_size=5)
    got = victim.probs(texts)
    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        ref = model(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    scored = victim.texts_scored
    victim.probs(texts[:3] + texts[:3])
    assert victim.texts_scored == scored and victim.forward_passes == 3  # answered from the cache


def test_deepwordbug_respects_its_edit_distance_budget(checkpoint, test_split):
    from eg_train.evaluation.attacks.recipes import Resources
    from eg_train.evaluation.attacks.run_model import attack_examples

    victim = VictimModel.from_checkpoint(str(checkpoint))
    texts, labels = list(test_split.dataset["text"][:40]), list(test_split.dataset["label"][:40])
    results = {}
    for budget in (1, 30):
        cfg = ModelAttackConfig(recipes=("deepwordbug",), max_edit_distance=budget)
        outs = attack_examples(victim, "deepwordbug", texts, labels, cfg, Resources(cfg), progress=False)
        for o, y in zip(outs, labels):
            assert levenshtein(o.original.state.text, o.final.state.text) <= budget
            if o.status == "succeeded":  # the saved text really fools the model
                assert victim.probs([o.final.state.text])[0].argmax() != y
        results[budget] = sum(o.status == "succeeded" for o in outs)
    assert results[30] > results[1] > 0


def test_sentence_encoder_is_mean_pooled_minilm():
    from transformers import AutoModel, AutoTokenizer

    from eg_train.evaluation.attacks.similarity import SentenceEncoder
    from eg_train.foundation.models.resolve import resolve_model

    texts = ["my card has not arrived", "my card has not arrived yet", "what is the exchange rate"]
    got = SentenceEncoder("all-minilm-l6-v2", batch_size=2).embed(texts)
    loc = resolve_model("all-minilm-l6-v2").location
    tok, model = AutoTokenizer.from_pretrained(loc), AutoModel.from_pretrained(loc).eval()
    with torch.no_grad():  # reference: one padded batch, masked mean, L2 norm
        b = tok(texts, padding=True, return_tensors="pt")
        h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    sims = got[1:] @ got[0]
    assert sims[0] > TEXTFOOLER_COSINE > sims[1]  # a paraphrase passes the constraint, another intent does not
