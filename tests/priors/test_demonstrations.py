"""Demonstrations in the class-aware prefix: fixed shared sets, and never an example's own."""

from types import SimpleNamespace

import pytest

from eg_train.foundation.data.fewshot import sample_k_per_class
from priors.demonstrations import DemonstrationRouting, demo_fold, demonstration_sets
from priors.prompts import class_aware_template


@pytest.fixture(scope="module")
def shots(banking_train):
    return sample_k_per_class(banking_train, 5, 0)


def _routing(split, per_class=1, n_sets=2, seed=0):
    ds = split.dataset
    names = split.label_names
    plan = demonstration_sets(ds["id"], ds["text"], ds["label"], per_class=per_class, n_sets=n_sets, seed=seed)
    make = lambda demos: SimpleNamespace(  # noqa: E731  (only the prompt matters here)
        template=class_aware_template(names, demonstrations=[(d.text, names[d.label]) for d in demos]), demos=demos
    )
    return DemonstrationRouting(plan, make, per_class=per_class, seed=seed)


@pytest.mark.parametrize("n_sets", [2, 3])
def test_no_example_is_among_its_own_demonstrations(shots, n_sets):
    routing = _routing(shots, per_class=2, n_sets=n_sets)
    ds = shots.dataset
    for i, text in zip(ds["id"], ds["text"]):
        scorer = routing.scorer_for(i)
        assert i not in {d.id for d in scorer.demos}
        assert f"Text: {' '.join(text.split())}\n" not in scorer.template.prefix
    # ...while every example does appear as a demonstration of some other set (the pool is used).
    used = {d.id for s in routing.sets for d in s}
    assert len(used) > len(ds) // 2


def test_sets_are_fixed_shared_and_cover_every_class(shots):
    a, b = _routing(shots), _routing(shots)
    assert [s.template.prefix for s in a.scorers] == [s.template.prefix for s in b.scorers]  # deterministic
    folds = [a.fold(i) for i in shots.dataset["id"]]
    assert set(folds) == {0, 1} and min(folds.count(0), folds.count(1)) > len(folds) // 4  # prefixes are shared
    for s in a.sets:
        assert len({d.label for d in s}) == len(shots.label_names)  # one per class (5-shot pool)
    # Order of the split does not matter (shards see the same sets).
    rev = shots.dataset.select(range(len(shots.dataset) - 1, -1, -1))
    c = demonstration_sets(rev["id"], rev["text"], rev["label"], per_class=1, n_sets=2, seed=0)
    assert [[d.id for d in s] for s in c.sets] == [[d.id for d in s] for s in a.sets] and c.folds == a.plan.folds
    assert a.config() != _routing(shots, seed=1).config()


def test_demonstrations_sit_between_label_list_and_text():
    tpl = class_aware_template(["card_arrival", "pin_blocked"], demonstrations=[("where is\nmy card", "card_arrival")])
    assert tpl.prefix.endswith("Given Labels: card arrival, pin blocked\nText: where is my card\nLabel: card arrival\n")
    assert tpl.render("pin?").endswith("Label: card arrival\nText: pin?\nLabel:")


def test_one_set_is_refused():
    with pytest.raises(ValueError, match="n_sets >= 2"):
        demonstration_sets(["a"], ["t"], [0], per_class=1, n_sets=1)
    assert demo_fold("x", 2) == demo_fold("x", 2)


def test_an_example_outside_the_pool_gets_a_set():
    plan = demonstration_sets(["a", "b", "c", "d"], ["t1", "t2", "t3", "t4"], [0, 0, 1, 1], per_class=1)
    assert plan.fold("zzz") in (0, 1)
    for i in "abcd":
        assert i not in {d.id for d in plan.sets[plan.fold(i)]}
