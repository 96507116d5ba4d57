"""The pipeline's audit jobs: which models, after what, into which folder (no model is run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eg_train.experiment.audit_jobs import audit_dir, audit_key, audit_methods
from eg_train.experiment.layout import KeyMismatchError, write_key
from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, pipeline_jobs, plan
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.errors import ConfigError


def _cfg(tmp_path, **kw) -> PipelineConfig:
    return PipelineConfig(out_dir=str(tmp_path / "out"), data=DataSpec(preset="banking77", classes=4), k_shot=2,
                          seeds=[0, 1], variants=[TrainedVariant("ce"), TrainedVariant("hybrid", ["lime", "cap", "ig"], recipe="fixed")],
                          **kw)


def test_off_by_default_and_the_ce_model_of_every_seed_when_on(tmp_path):
    assert not [j for j in pipeline_jobs(_cfg(tmp_path)) if j.key.startswith("audit:")]
    cfg = _cfg(tmp_path, audit=True)
    jobs = {j.key: j for j in pipeline_jobs(cfg) if j.key.startswith("audit:")}
    assert sorted(jobs) == ["audit:ce-seed0", "audit:ce-seed1"]
    assert set(jobs["audit:ce-seed1"].deps) == {"train:ce-seed1", "priors:cap", "priors:lime"}
    assert audit_methods(cfg) == ["cap", "lime"]  # the LLM priors; IG is the model's own
    run = plan(cfg).find("ce", 1).run
    assert audit_dir(cfg.out_dir, run.name) == Path(cfg.out_dir) / "audit" / f"ce-seed1-{run.key}"


def test_all_models_and_finished_audits_skipped_only_for_their_own_key(tmp_path):
    cfg = _cfg(tmp_path, audit=True, audit_models="all", audit_priors=["cap"])
    p = plan(cfg)
    model = p.find("hybrid", 0)
    done = audit_dir(cfg.out_dir, model.run.name)
    done.mkdir(parents=True)
    (done / "audit.json").write_text("{}")
    write_key(done, audit_key(cfg, model, ["cap"], p.prior_keys))
    keys = sorted(j.key for j in pipeline_jobs(cfg) if j.key.startswith("audit:"))
    assert keys == ["audit:ce-seed0", "audit:ce-seed1", "audit:hybrid-seed1"]
    # the same model audited with other settings: that folder is not reused
    other = PipelineConfig(**{**cfg.__dict__, "audit_params": {"candidates_per_class": 1}})
    with pytest.raises(KeyMismatchError):
        pipeline_jobs(other)


@pytest.mark.parametrize("kw, message", [({"audit_models": "some"}, "audit_models"),
                                         ({"audit_priors": ["focus"]}, "not computed")])
def test_bad_settings_are_config_errors(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        pipeline_jobs(_cfg(tmp_path, audit=True, **kw))


def test_the_audit_uses_the_pipelines_llm_unless_its_params_say_otherwise(tmp_path):
    from eg_train.experiment.audit_jobs import audit_params

    cfg = _cfg(tmp_path, audit=True, llm="smollm2-135m-instruct")
    assert audit_params(cfg) == {"llm": "smollm2-135m-instruct"}
    assert audit_params(_cfg(tmp_path, audit=True, audit_params={"llm": None}))["llm"] is None
    with_instruction = _cfg(tmp_path, audit=True, priors={"instruction": "Name the banking intent."})
    assert audit_params(with_instruction) == {"llm": "gemma3-270m", "llm_instruction": "Name the banking intent."}
    # the LLM is part of the audit's key: an audit by another LLM is not reused
    p = plan(cfg)
    model = p.find("ce", 0)
    other = _cfg(tmp_path, audit=True, llm="gemma3-270m")
    assert audit_key(cfg, model, ["cap"], p.prior_keys) != audit_key(other, plan(other).find("ce", 0), ["cap"],
                                                                      plan(other).prior_keys)
