"""``eg-train fit`` with a prior trains by the recipe rule: the routing of the command line, and
:func:`eg_train.experiment.fit_rule.fit_with_rule` end to end on a real small model and a planted word."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from eg_train.cli import pop_recipe, rule_fit_config
from eg_train.foundation.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
DEMO = str(REPO / "configs" / "demo.yaml")


def test_pop_recipe_takes_the_flag_out():
    assert pop_recipe(["--config", "c.yaml", "--recipe", "fixed", "--a=1"]) == ("fixed", ["--config", "c.yaml", "--a=1"])
    assert pop_recipe(["--recipe=rule"]) == ("rule", [])
    assert pop_recipe(["--config", "c.yaml"]) == (None, ["--config", "c.yaml"])
    with pytest.raises(ConfigError, match="rule or fixed"):
        pop_recipe(["--recipe"])
    with pytest.raises(ConfigError, match="must be one of"):
        pop_recipe(["--recipe", "best"])


def test_fit_with_a_prior_is_the_rule_unless_fixed_resumed_or_prior_less():
    cfg = rule_fit_config(["--config", DEMO], None)  # demo.yaml names a prior cache
    assert cfg is not None and cfg.prior.methods == ["lime", "cap"]
    assert rule_fit_config(["--config", DEMO], "fixed") is None
    assert rule_fit_config(["--config", DEMO, "--data.prior", "none"], None) is None
    assert rule_fit_config(["--config", DEMO, "--ckpt_path", "runs/demo/checkpoints/last.ckpt"], None) is None
    assert rule_fit_config(["--config", DEMO, "--print_config"], None) is None
    with pytest.raises(ConfigError, match="needs a prior"):
        rule_fit_config(["--config", DEMO, "--data.prior", "none"], "rule")
    with pytest.raises(ConfigError, match="resumes by itself"):
        rule_fit_config(["--config", DEMO, "--ckpt_path", "x.ckpt"], "rule")


def test_a_missing_prior_cache_is_refused_before_anything_trains(tmp_path):
    from eg_train.experiment.fit_rule import fit_with_rule

    cfg = rule_fit_config(["--config", DEMO, f"--data.prior={{cache_dir: {tmp_path / 'none'}, methods: [lime]}}",
                           f"--trainer.default_root_dir={tmp_path / 'run'}"], None)
    with pytest.raises(ConfigError, match="not found: compute the priors first"):
        fit_with_rule(cfg)
    assert not (tmp_path / "run").exists()


PLANTED = {"card_arrival": "hyena", "exchange_rate": "koala", "pending_cash_withdrawal": "jade"}


@pytest.fixture(scope="module")
def planted_data(tmp_path_factory, banking_train):
    """12 texts of each of 3 intents, each ending with its intent's unrelated word (training and
    validation alike: a shortcut the rule's audit must find without being told)."""
    d = tmp_path_factory.mktemp("planted")
    names = list(banking_train.label_names)
    rows, seen = [], {c: 0 for c in PLANTED}
    for text, y in zip(banking_train.dataset["text"], banking_train.dataset["label"]):
        c = names[y]
        if c in PLANTED and seen[c] < 12:
            seen[c] += 1
            rows.append((f"{text.rstrip('.?! ')} {PLANTED[c]}", c))
    with open(d / "train.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        w.writerows(rows)
    (d / "labels.json").write_text(json.dumps(list(PLANTED)))
    return d


def _flat_cache(root: Path, cfg) -> None:
    """A uniform LIME prior for every training text of ``cfg``'s sample (the prior that calls nothing relevant)."""
    from eg_train.foundation.words import split_words
    from eg_train.training.datamodule import EGDataModule
    from priors.cache import PriorCache, make_record

    dm = EGDataModule.from_options(cfg.data, None, model_name=cfg.model.model_name)
    train, _ = dm.train_validation()
    cache = PriorCache(root)
    cache.append([make_record(i, t, y, split_words(t).words, np.ones(len(split_words(t))), "lime", "flat", "h0")
                  for i, t, y in zip(train.dataset["id"], train.dataset["text"], train.dataset["label"])], "lime", "h0")


def test_fit_with_rule_audits_ce_trains_the_candidates_and_links_the_choice(tmp_path, planted_data):
    from eg_train.evaluation.audit import AuditConfig
    from eg_train.experiment.fit_rule import fit_with_rule
    from eg_train.experiment.rule import RuleSettings
    from eg_train.training.config import TrainConfig

    overrides = [f"--data.files={{train: {planted_data / 'train.csv'}}}", "--data.label_column=intent",
                 f"--data.labels_file={planted_data / 'labels.json'}", "--data.preset=null", "--data.k_shot=6",
                 "--data.val_per_class=4", "--data.batch_size=6", "--data.max_length=32", "--trainer.max_epochs=3",
                 "--trainer.enable_progress_bar=false", "--model.ig.steps=2", "--model.lr=1e-3",
                 f"--data.prior={{cache_dir: {tmp_path / 'cache'}, methods: [lime]}}"]
    cfg = TrainConfig.from_yaml(DEMO, overrides, run_dir=str(tmp_path / "run"))
    _flat_cache(tmp_path / "cache", cfg)
    audit = AuditConfig(llm=None, ig_steps=4, n_controls=2, n_boot=300, candidates_per_class=2, max_texts_per_class=6)
    settings = RuleSettings(penalty_weights=(1e3,))  # one penalty weight: one training fewer
    res = fit_with_rule(cfg, settings, audit)

    doc = json.loads(res.audit_file.read_text())
    confirmed = {(c["class"], c["feature"]) for c in doc["confirmed"]}
    assert confirmed, "the planted words must be found"
    assert list(res.candidates) == ["ce", "eg~penalty_1e+03", "eg~prior_gr3"]
    choice = json.loads((res.run_dir / "choice.json").read_text())
    assert choice["chosen"] == res.chosen and set(choice["scores"]) == set(res.candidates)
    assert all(s["counter"] is not None for s in choice["scores"].values())
    # Each score's per-text correctness is kept (any later rule can be applied to the same predictions).
    for name, rows in choice["per_seed"].items():
        for row in rows.values():
            assert len(row["clean_correct"]) == choice["validation"]["n_clean"]
            assert len(row["counter_correct"]) == choice["validation"]["n_counter"]
            assert row["clean"] == pytest.approx(row["clean_correct"].count("1") / len(row["clean_correct"]))
            assert row["counter"] == pytest.approx(row["counter_correct"].count("1") / len(row["counter_correct"]))
    # The run folder's model is the chosen candidate's.
    assert os.path.realpath(res.model_dir) == os.path.realpath(res.candidates[res.chosen] / "model")
    assert (res.model_dir / "config.json").is_file()
    # The finished candidates' checkpoints are gone (each is read through model/).
    assert not any((p / "checkpoints").exists() for p in res.candidates.values())
    # Run again: every candidate and the audit are reused, the same choice is made.
    stamp = (res.candidates["ce"] / "model" / "config.json").stat().st_mtime_ns
    again = fit_with_rule(cfg, settings, audit)
    assert again.chosen == res.chosen and (res.candidates["ce"] / "model" / "config.json").stat().st_mtime_ns == stamp
    # ... but not with other settings: that would mix two rules in one folder.
    with pytest.raises(ConfigError, match="other settings"):
        fit_with_rule(cfg, RuleSettings(penalty_weights=(1e4,)), audit)
