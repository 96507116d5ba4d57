"""The recipe rule (eg_train/experiment/rule.py, docs/recipe.md): candidates, the choice, its jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, check_config, pipeline_jobs, plan
from eg_train.experiment.rule import RuleSettings, choose, expand, is_rule, resolved_recipe
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
S = RuleSettings()
ORDER = ["ce", "eg~penalty_1e+03", "eg~penalty_1e+04", "eg~prior_gr3"]


def test_a_variant_with_priors_and_no_training_overrides_is_the_rule():
    assert is_rule(TrainedVariant("eg", ["lime", "cap", "ig"]))
    assert not is_rule(TrainedVariant("eg", ["lime"], train={"model": {"grad_ratio": 3.0}}))
    assert not is_rule(TrainedVariant("eg", ["lime"], recipe="fixed"))
    assert not is_rule(TrainedVariant("ce"))
    with pytest.raises(ConfigError, match="recipe must be one of"):
        resolved_recipe(TrainedVariant("eg", ["lime"], recipe="best"))


def test_expand_adds_the_candidates_once_cheapest_first():
    out = expand([TrainedVariant("ce"), TrainedVariant("eg", ["lime", "cap"])], S)
    assert [v.name for v in out] == ["ce", "eg"] + ORDER[1:]
    pen = out[2]
    assert pen.priors == [] and pen.train == {"model": {"penalty_weight": 1000.0}, "data": {"penalty_positions": "audit"}}
    prior = out[-1]
    assert prior.priors == ["lime", "cap"] and prior.train["model"]["grad_ratio"] == 3.0 and prior.candidate_of == "eg"
    assert [v.name for v in expand(out, S)] == [v.name for v in out]  # idempotent (a saved config reloads as is)
    # Only an LLM prior lets the audit call a feature irrelevant: an IG-only rule has no penalty candidate.
    assert [v.name for v in expand([TrainedVariant("eg", ["ig"])], S)] == ["eg", "eg~prior_gr3"]


@pytest.mark.parametrize("scores, has_counter, expected", [
    # Nothing confirmed: CE, whatever the candidates score.
    ({"ce": (0.8, None), "eg~prior_gr3": (0.9, None)}, False, "ce"),
    # The best counter-shortcut candidate within the clean tolerance wins.
    ({"ce": (0.80, 0.30), "eg~penalty_1e+03": (0.80, 0.60), "eg~penalty_1e+04": (0.79, 0.70), "eg~prior_gr3": (0.85, 0.50)},
     True, "eg~penalty_1e+04"),
    # A candidate that loses more than 1 point of clean validation accuracy is out.
    ({"ce": (0.80, 0.30), "eg~penalty_1e+03": (0.78, 0.90), "eg~prior_gr3": (0.80, 0.40)}, True, "eg~prior_gr3"),
    # A gain under the 2-point margin keeps CE.
    ({"ce": (0.80, 0.30), "eg~penalty_1e+03": (0.80, 0.31)}, True, "ce"),
    # Ties (within 0.5 points) go to the cheaper candidate.
    ({"ce": (0.80, 0.30), "eg~penalty_1e+03": (0.80, 0.600), "eg~prior_gr3": (0.80, 0.603)}, True, "eg~penalty_1e+03"),
])
def test_choose_known_answers(scores, has_counter, expected):
    rows = {n: {"clean": c, "counter": k} for n, (c, k) in scores.items()}
    pick, reason = choose(rows, [n for n in ORDER if n in rows], S, has_counter)
    assert pick == expected, reason
    assert reason


def _cfg(tmp_path, **kw) -> PipelineConfig:
    return PipelineConfig(out_dir=str(tmp_path / "out"), data=DataSpec(preset="banking77", classes=3), k_shot=2,
                          train_config=str(ROOT / "configs" / "demo.yaml"), seeds=[0, 1],
                          variants=[TrainedVariant("ce"), TrainedVariant("eg", ["lime"])], **kw)


def test_the_rule_variant_is_linked_after_the_selection_of_its_candidates(tmp_path):
    cfg = _cfg(tmp_path)
    check_config(cfg)
    p = plan(cfg)
    assert p.rule_audit and p.rule_audit["methods"] == ["lime"]
    jobs = {j.key: j for j in pipeline_jobs(cfg, the_plan=p)}
    assert jobs["audit:rule"].deps == ("train:ce-seed0", "priors:lime")
    assert set(jobs["train:eg~penalty_1e+03-seed1"].deps) == {"audit:rule", "train:ce-seed1"}
    select = set(jobs["select:eg"].deps)
    assert {"audit:rule", "train:ce-seed0", "train:ce-seed1", "train:eg~prior_gr3-seed1"} <= select
    assert jobs["train:eg-seed0"].deps == ("select:eg",)
    assert "train:eg-seed0" in jobs["eval:eg-seed0"].deps
    # The rule's model key is its candidates' keys: a changed candidate gets a new rule folder.
    keys = p.model(TrainedVariant("eg"), 0).train_key
    assert set(keys["candidates"]) == {"ce", "eg~penalty_1e+03", "eg~penalty_1e+04", "eg~prior_gr3"}
    other = plan(_cfg(tmp_path, rule={"penalty_weights": [100.0]}))
    assert other.model(TrainedVariant("eg"), 0).run.key != p.model(TrainedVariant("eg"), 0).run.key
    # The penalty candidates read the audit's positions (its file in their training key).
    pen = p.find("eg~penalty_1e+03", 0).train_key
    assert pen["train"]["data"]["penalty_positions"] == p.rule_audit["file"] and pen["penalty_audit"] == p.rule_audit["key"]
    # Variants without the option keep the keys they had before it existed.
    assert "penalty_positions" not in p.find("ce", 0).train_key["train"]["data"]
    no_candidates = {j.key for j in pipeline_jobs(_cfg(tmp_path, evaluate_candidates=False))}
    assert "eval:eg-seed0" in no_candidates and "eval:eg~prior_gr3-seed0" not in no_candidates


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="give it priors"):
        check_config(_cfg(tmp_path).__class__(**{**_cfg(tmp_path).__dict__,
                                                  "variants": [TrainedVariant("ce"), TrainedVariant("x", [], recipe="rule")]}))
    with pytest.raises(ConfigError, match="penalty_positions: audit needs an LLM prior"):
        check_config(_cfg(tmp_path).__class__(**{**_cfg(tmp_path).__dict__, "variants": [
            TrainedVariant("ce"), TrainedVariant("t", [], train={"model": {"penalty_weight": 1.0},
                                                                 "data": {"penalty_positions": "audit"}})]}))
    with pytest.raises(ConfigError, match="unknown option"):
        RuleSettings.from_mapping({"weights": [1.0]})


def test_penalty_positions_attach_the_audit_words_by_fingerprint(tmp_path):
    import datasets

    from eg_train.foundation.data.source import DataError, LabelledSplit
    from eg_train.foundation.words import text_fingerprint
    from eg_train.training.datamodule import with_penalty_positions

    split = LabelledSplit(datasets.Dataset.from_dict({"id": ["a", "b"], "text": ["my card zqaa", "top up"], "label": [0, 1]}),
                          ["x", "y"], "mem", 0)
    f = tmp_path / "audit.json"
    f.write_text(json.dumps({"positions": [{"id": "a", "fingerprint": text_fingerprint("my card zqaa"), "positions": [2]}]}))
    out = with_penalty_positions(split, str(f))
    assert out.dataset["penalty_words"] == [[2], []]
    f.write_text("[]")
    with pytest.raises(DataError, match="expected a JSON object"):
        with_penalty_positions(split, str(f))
    with pytest.raises(DataError, match="not found"):
        with_penalty_positions(split, str(tmp_path / "none.json"))


def test_unknown_audit_params_are_refused_up_front(tmp_path):
    with pytest.raises(ConfigError, match="audit_params: unknown option"):
        check_config(_cfg(tmp_path, audit_params={"top_k": 1}))


def test_options_added_later_stay_out_of_the_keys_while_unset(tmp_path):
    from eg_train.experiment.pipeline import KEY_NEUTRAL_OPTIONS

    p = plan(_cfg(tmp_path))
    key = p.find("ce", 0).train_key["train"]
    for section, option in KEY_NEUTRAL_OPTIONS:
        assert option not in key[section]
    set_ = plan(_cfg(tmp_path, train={"model": {"align_top_layers": 2}})).find("eg~prior_gr3", 0).train_key["train"]
    assert set_["model"]["align_top_layers"] == 2
