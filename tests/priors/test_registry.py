"""Prior methods are built from the configuration through their registry, and every scoring
option is part of the config hash (priors of different scorings never share a cache key)."""

import numpy as np
import pytest
from datasets import Dataset

from eg_train.foundation.data.source import LabelledSplit

from priors.base import PRIOR_REGISTRY, PriorMethod, PriorResult, register_prior
from priors.config import PriorsConfig, build_methods
from priors.demonstrations import DemonstrationRouting, demonstration_sets
from priors.methods.cap import CapPrior
from priors.methods.lime import LimePrior
from priors.prompts import class_aware_template
from priors.scorer import LabelScorer

NAMES = ["card_arrival", "pin_blocked", "age_limit"]
LEGACY_KEYS = {"model", "template", "renormalise", "labels", "n_samples", "ridge_lambda", "seed", "keep_prob", "max_text_tokens"}


def test_a_registered_method_is_built_by_name_from_the_config():
    @register_prior("test_constant")
    class Constant(PriorMethod):
        def __init__(self, value: float) -> None:
            self.value = value

        @classmethod
        def from_config(cls, cfg, ctx):
            return cls(value=cfg.ridge_lambda * len(ctx.label_names))

        def config(self):
            return {"value": self.value}

        def compute(self, batch):
            return [PriorResult(np.full(len(w), self.value, dtype=np.float32), queries=0) for w in batch.words]

    try:
        [m] = build_methods(PriorsConfig(methods=["test_constant"], ridge_lambda=2.0), NAMES)
        assert isinstance(m, Constant) and m.value == 6.0
        with pytest.raises(KeyError, match="registered: .*'cap'.*'lime'"):
            build_methods(PriorsConfig(methods=["nope"]), NAMES)
    finally:
        PRIOR_REGISTRY.unregister("test_constant")


def test_lime_and_cap_share_one_llm(monkeypatch, smollm):
    import eg_train.foundation.models as models

    calls = []
    monkeypatch.setattr(models, "load_causal_lm", lambda name: calls.append(name) or smollm)
    lime, cap = build_methods(PriorsConfig(methods=["lime", "cap"], contrast="top_m", contrast_m=1, llm="smollm2-135m-instruct",
                                                demonstrations_per_class=0), NAMES)
    assert calls == ["smollm2-135m-instruct"]
    assert isinstance(lime, LimePrior) and isinstance(cap, CapPrior) and lime.scorer.model is cap.scorer.model
    assert cap.scorer.contrast == "top_m" and cap.transform == "inv_one_minus_log"  # auto with a contrast


def _cap(smollm, *, transform="auto", demos=0, demo_seed=0, **scorer_kw) -> CapPrior:
    scorer = LabelScorer(*smollm, class_aware_template(NAMES), NAMES, **scorer_kw)
    routing = None
    if demos:
        ids, texts, labels = [f"e{i}" for i in range(6)], [f"text {i}" for i in range(6)], [0, 1, 2, 0, 1, 2]
        plan = demonstration_sets(ids, texts, labels, per_class=demos, seed=demo_seed)
        routing = DemonstrationRouting(
            plan, lambda ds: LabelScorer(*smollm, class_aware_template(NAMES, demonstrations=[(d.text, NAMES[d.label]) for d in ds]), NAMES),
            per_class=demos, seed=demo_seed,
        )
    return CapPrior(scorer, model_id="smollm2-135m-instruct", transform=transform, routing=routing)


def test_every_scoring_option_changes_the_config_hash(smollm):
    legacy = _cap(smollm)
    assert set(legacy.config()) == LEGACY_KEYS  # priors cached before these options existed keep their key
    variants = {
        "full": _cap(smollm, contrast="full"),
        "top_m1": _cap(smollm, contrast="top_m", contrast_m=1),
        "top_m2": _cap(smollm, contrast="top_m", contrast_m=2),
        "top_m1_calibrated": _cap(smollm, contrast="top_m", contrast_m=1, calibrate=True),
        "full_calibrated": _cap(smollm, contrast="full", calibrate=True),
        "full_neg_inv_log": _cap(smollm, contrast="full", transform="neg_inv_log"),
        "full_log_p": _cap(smollm, contrast="full", transform="log_p"),
        "inv_one_minus_log": _cap(smollm, transform="inv_one_minus_log"),
        "demos1": _cap(smollm, demos=1),
        "demos1_seed1": _cap(smollm, demos=1, demo_seed=1),
        "demos2": _cap(smollm, demos=2),
    }
    hashes = {k: v.config_hash() for k, v in variants.items()}
    assert len(set(hashes.values()) | {legacy.config_hash()}) == len(variants) + 1, hashes


def test_renormalise_flag_and_full_contrast_are_one_configuration(smollm):
    assert _cap(smollm, renormalise=True).config_hash() == _cap(smollm, contrast="full").config_hash()
    with pytest.raises(ValueError, match="contrast must be"):
        _cap(smollm, contrast="softmax")
    with pytest.raises(ValueError, match="cap_transform"):
        _cap(smollm, transform="exp")


def test_default_scoring_is_the_benchmark_choice_and_never_shares_a_hash_with_the_old(monkeypatch, smollm):
    """results/bench/bench_prior_quality.md chose Gemma 3 270M + 1 demonstration per class; priors of
    the old default (SmolLM2, none) must never be read as the new one's."""
    import eg_train.foundation.models as models

    assert (PriorsConfig().llm, PriorsConfig().demonstrations_per_class) == ("gemma3-270m", 1)
    monkeypatch.setattr(models, "load_causal_lm", lambda name: smollm)  # the hash, not the model, is under test
    examples = LabelledSplit(Dataset.from_dict({"id": [f"e{i}" for i in range(6)], "text": [f"text {i}" for i in range(6)],
                                                "label": [i % 3 for i in range(6)]}), NAMES, "test")
    new = build_methods(PriorsConfig(methods=["cap"]), NAMES, examples)[0]
    old = build_methods(PriorsConfig(methods=["cap"], llm="smollm2-135m-instruct", demonstrations_per_class=0), NAMES, examples)[0]
    assert "demonstrations" in new.config() and "demonstrations" not in old.config()
    assert new.config()["model"] == "gemma3-270m" and new.config_hash() != old.config_hash()
