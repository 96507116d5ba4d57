"""Focus-LIME selector: units, masks, Phase I on known-answer scorers, Phase II through LIME/CAP."""

import numpy as np
import pytest

from eg_train.foundation.words import split_words
from priors.base import PriorBatch
from priors.focus import FocusConfig, FocusSelector, _unit_masks, focus_masks, unit_ids, units_text
from priors.masks import example_rng
from priors.methods.cap import CapPrior
from priors.methods.lime import LimePrior
from priors.prompts import plain_template


class KeywordScorer:
    """Known answer: ``log p`` rises by ``gain`` for each keyword present in the text."""

    def __init__(self, keywords, base=-6.0, gain=2.5):
        self.keywords, self.base, self.gain = set(keywords), base, gain
        self.template = plain_template()
        self.renormalise = False
        self.label_names = ["a", "b"]
        self.max_text_tokens = 512
        self.queries = 0
        self.seen: list[str] = []

    def log_prob(self, texts, labels):
        self.queries += len(texts)
        self.seen.extend(texts)
        return np.array([self.base + self.gain * len(self.keywords & set(split_words(t).words)) for t in texts])


def long_document(n_par=30, per_par=5, planted=(17, 3), sentence="Zebras graze near the river"):
    """``n_par`` paragraphs of filler sentences; one planted sentence at (paragraph, position)."""
    paragraphs = []
    for p in range(n_par):
        sents = [f"The clerk filed report number {p * per_par + s} today." for s in range(per_par)]
        if p == planted[0]:
            sents[planted[1]] = sentence + "."
        paragraphs.append(" ".join(sents))
    return "\n\n".join(paragraphs)


def test_unit_ids_known_answer():
    w = split_words("One two. Three four!\n\nFive six? Seven\neight nine.")
    para, sent = unit_ids(w)
    assert para.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert sent.tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 4]


def test_units_text_drops_whole_units_without_stray_punctuation():
    w = split_words("One two. Three four!\n\nFive six? Seven eight.")
    _, sent = unit_ids(w)
    assert units_text(w, sent, [1, 3]) == "Three four!\n\nSeven eight."
    assert units_text(w, sent, [0, 2]) == "One two. Five six?"
    assert units_text(w, sent, []) == ""


def test_unit_masks_enumerate_small_spaces_exactly():
    m = _unit_masks(3, 64, np.random.default_rng(0), 0.5)
    assert m.shape == (8, 3) and m[0].tolist() == [1, 1, 1]
    assert len({tuple(r) for r in m.tolist()}) == 8
    big = _unit_masks(10, 64, np.random.default_rng(0), 0.5)
    assert big.shape == (64, 10) and big[0].all() and 0.35 < big[1:].mean() < 0.65


def test_focus_masks_perturb_only_the_focus():
    focus = np.zeros(200, dtype=bool)
    focus[50:70] = True
    m = focus_masks(focus, 400, np.random.default_rng(1))
    assert m.shape == (400, 200) and m[0].all()
    assert m[:, ~focus].all()
    assert 0.45 < m[1:, focus].mean() < 0.55
    with pytest.raises(ValueError, match="empty focus"):
        focus_masks(np.zeros(5, dtype=bool), 10, np.random.default_rng(0))


def test_phase_one_narrows_to_the_planted_sentence():
    text = long_document()
    words = split_words(text)
    proxy = KeywordScorer({"Zebras", "river"})
    cfg = FocusConfig(word_budget=16, proxy_samples=32, max_rounds=6)
    sel = FocusSelector(proxy, cfg, proxy_id="kw").select(words, 0, "doc")
    assert 0 < sel.focus_words <= 16
    focused = {words.words[i] for i in np.flatnonzero(sel.mask)}
    assert {"Zebras", "graze", "near", "river"} <= focused
    assert sel.rounds[0]["level"] == "paragraph" and sel.rounds[-1]["level"] == "sentence"
    assert sel.proxy_queries == proxy.queries == sum(r["samples"] for r in sel.rounds)
    # Surviving texts shrink: later rounds never show a dropped paragraph again.
    assert all("report number 3 " not in t for t in proxy.seen[sel.rounds[0]["samples"] :])
    # Seeded by (seed, example id): the same example gives the same focus.
    again = FocusSelector(KeywordScorer({"Zebras", "river"}), cfg).select(words, 0, "doc")
    assert (again.mask == sel.mask).all()


class AnyKeywordScorer(KeywordScorer):
    """Known answer with redundant evidence: ``log p`` rises by ``gain`` if any keyword is present."""

    def log_prob(self, texts, labels):
        self.queries += len(texts)
        return np.array([self.base + self.gain * bool(self.keywords & set(split_words(t).words)) for t in texts])


def redundant_document(planted_in=(4, 15, 26)):
    """Filler paragraphs with the same evidence sentence (different keyword each) in three of them."""
    paragraphs = []
    for p in range(30):
        sents = [f"The clerk filed report number {p * 5 + s} today." for s in range(5)]
        if p in planted_in:
            sents[2] = f"Zebras{planted_in.index(p)} graze near the river."
        paragraphs.append(" ".join(sents))
    return "\n\n".join(paragraphs)


def test_phase_one_keeps_repeated_evidence():
    """Any one of three planted sentences settles the label. Narrowing paragraph by paragraph
    until a round's cap fits one paragraph (``min_kept_units=1``) keeps a single copy, and
    Phase II would then see no effect; switching to sentences first keeps all three."""
    words = split_words(redundant_document())
    keys = {"Zebras0", "Zebras1", "Zebras2"}

    def kept_all(min_kept_units: int) -> int:
        n = 0
        for seed in range(20):  # the mask draw is random: count over seeds
            cfg = FocusConfig(word_budget=24, proxy_samples=64, min_kept_units=min_kept_units, seed=seed)
            sel = FocusSelector(AnyKeywordScorer(keys), cfg).select(words, 0, "doc")
            n += keys <= {words.words[i] for i in np.flatnonzero(sel.mask)}
            levels = "".join(r["level"][0] for r in sel.rounds)
            assert "sp" not in levels  # coarse to fine: no paragraph round after a sentence round
        return n

    assert kept_all(2) >= 17
    assert kept_all(1) <= 3


class ConstantScorer(KeywordScorer):
    """A proxy that sees nothing: the same ``log p`` for every text."""

    def log_prob(self, texts, labels):
        self.queries += len(texts)
        return np.full(len(texts), -3.0)


def test_min_drop_narrows_to_the_evidence_sentence():
    """The cap alone fills the budget with filler; ``min_drop`` keeps only the units whose
    removal takes the proxy's evidence away, and refines below the budget until that holds."""
    words = split_words(long_document())
    planted = ["Zebras", "graze", "near", "the", "river"]

    def focus(min_drop):
        proxy = KeywordScorer({"Zebras", "river"})
        sel = FocusSelector(proxy, FocusConfig(word_budget=64, proxy_samples=32, min_drop=min_drop)).select(words, 0, "doc")
        assert sel.proxy_queries == proxy.queries  # the removal checks are proxy queries too
        return sel, [words.words[i] for i in np.flatnonzero(sel.mask)]

    loose, loose_words = focus(0.0)
    tight, tight_words = focus(0.9)
    assert set(planted) <= set(loose_words) and 32 < loose.focus_words <= 64
    assert tight_words == planted
    assert tight.proxy_queries > sum(r["samples"] for r in tight.rounds)


def test_min_drop_keeps_repeated_evidence():
    """Removing one of three copies lowers nothing, so the shortest run that takes the evidence
    away holds all three."""
    words = split_words(redundant_document())
    keys = {"Zebras0", "Zebras1", "Zebras2"}
    kept_all, sizes = 0, []
    for seed in range(20):
        cfg = FocusConfig(word_budget=24, proxy_samples=64, min_drop=0.9, seed=seed)
        sel = FocusSelector(AnyKeywordScorer(keys), cfg).select(words, 0, "doc")
        kept_all += keys <= {words.words[i] for i in np.flatnonzero(sel.mask)}
        sizes.append(sel.focus_words)
    assert kept_all >= 17  # 18 of 20 when written
    assert np.median(sizes) == 15  # the three planted sentences, nothing else


def test_min_drop_leaves_a_blind_proxy_to_the_cap():
    """A proxy whose p(y) does not change has no evidence to localise: the cap decides, as
    without ``min_drop``, instead of a run chosen by noise."""
    words = split_words(long_document())
    masks = [FocusSelector(ConstantScorer(set()), FocusConfig(word_budget=64, min_drop=d)).select(words, 0, "doc").mask
             for d in (0.0, 0.9)]
    assert (masks[0] == masks[1]).all() and masks[0].sum() > 32


def test_round_limit_leaves_the_focus_above_budget():
    words = split_words(long_document())
    sel = FocusSelector(KeywordScorer({"Zebras"}), FocusConfig(word_budget=8, max_rounds=1)).select(words, 0, "d")
    assert len(sel.rounds) == 1 and sel.focus_words > 8
    assert sel.mask[[i for i, t in enumerate(words.words) if t == "Zebras"]].all()


def test_config_validation_is_clear():
    with pytest.raises(ValueError, match="keep_fraction"):
        FocusConfig(keep_fraction=1.0)
    with pytest.raises(ValueError, match="proxy_target"):
        FocusConfig(proxy_target="logit")
    with pytest.raises(ValueError, match="min_kept_units"):
        FocusConfig(min_kept_units=0)
    with pytest.raises(ValueError, match="min_drop"):
        FocusConfig(min_drop=1.5)


@pytest.mark.parametrize("prior_cls", [LimePrior, CapPrior])
def test_priors_use_the_focus_above_min_words(prior_cls):
    long_text = long_document()
    short_text = "zebras graze near the river today"
    keywords = {"Zebras", "zebras", "river"}
    selector = FocusSelector(KeywordScorer(keywords), FocusConfig(min_words=50, word_budget=16, proxy_samples=32))
    target = KeywordScorer(keywords, base=-8.0, gain=3.0)
    prior = prior_cls(target, model_id="kw", n_samples=60, seed=2, focus=selector)
    batch = PriorBatch(ids=["long", "short"], texts=[long_text, short_text], labels=[0, 0])
    long_res, short_res = prior.compute(batch)

    words = batch.words[0]
    assert long_res.queries == 60 and 0 < long_res.proxy_queries == selector.proxy.queries
    assert 0 < long_res.focus_words <= 16
    nonzero = np.flatnonzero(long_res.scores)
    assert len(nonzero) <= long_res.focus_words
    top = {words.words[i] for i in np.argsort(-long_res.scores)[:2]}
    assert top == {"Zebras", "river"}
    # Every target query keeps all words outside the focus.
    assert all("report number 0 today" in t for t in target.seen[:60])

    # The short input takes the plain path: same scores as a prior without a focus stage.
    plain = prior_cls(KeywordScorer(keywords, base=-8.0, gain=3.0), model_id="kw", n_samples=60, seed=2)
    [ref] = plain.compute(PriorBatch(ids=["short"], texts=[short_text], labels=[0]))
    np.testing.assert_allclose(short_res.scores, ref.scores)
    assert short_res.proxy_queries == 0 and short_res.focus_words == -1

    # The focus schedule is part of the cache key; a prior without focus keeps its old key.
    other = prior_cls(target, model_id="kw", n_samples=60, seed=2,
                      focus=FocusSelector(selector.proxy, FocusConfig(min_words=50, word_budget=32)))
    assert len({prior.config_hash(), plain.config_hash(), other.config_hash()}) == 3
    assert "focus" not in plain.config()


def test_phase_two_masks_are_seeded_like_plain_masks():
    focus = np.ones(30, dtype=bool)
    a = focus_masks(focus, 10, example_rng(0, "x"))
    b = focus_masks(focus, 10, example_rng(0, "x"))
    assert (a == b).all()


@pytest.mark.slow
def test_smollm_proxy_finds_the_evidence_paragraph(smollm):
    """A real causal-LM proxy (SmolLM2, plain prompt) keeps the paragraph that names the label."""
    from priors.scorer import LabelScorer

    model, tok = smollm
    text = long_document(n_par=6, per_par=4, planted=(4, 1),
                         sentence="I want to transfer money from my checking account to my savings account")
    labels = ["weather", "money transfer"]
    proxy = LabelScorer(model, tok, plain_template(), labels, max_text_tokens=2048, batch_size=16)
    sel = FocusSelector(proxy, FocusConfig(word_budget=40, proxy_samples=16, max_rounds=3)).select(
        split_words(text), 1, "smol")
    focused = " ".join(split_words(text).words[i] for i in np.flatnonzero(sel.mask))
    assert "transfer money" in focused
