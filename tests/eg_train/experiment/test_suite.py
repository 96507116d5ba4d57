"""The shortcut suite (eg_train.experiment.suite): design, selection rule, records, resume, tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eg_train.experiment.suite import (
    DESIGN,
    SuiteConfig,
    SuiteCase,
    assemble,
    case_benchmark_config,
    case_key,
    choose_oracle_weight,
    oracle_gain_share,
    paired_vs_ce,
    oracle_name,
    parse_config,
    run_case,
    summarise_case,
)
from eg_train.foundation.data.shortcut import KINDS
from eg_train.foundation.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_design_is_about_ten_cases_covering_every_kind_and_dataset():
    names = [c.name for c in DESIGN]
    assert 8 <= len(DESIGN) <= 14 and len(set(names)) == len(names)
    assert {c.shortcut.kind for c in DESIGN} == set(KINDS)
    assert {c.data for c in DESIGN} == {"b8", "b77", "c15"}
    assert {c.shortcut.position for c in DESIGN} >= {"random", "start", "end"}
    assert {c.shortcut.strength for c in DESIGN} >= {1.0, 0.8, 0.7} and {c.shortcut.rest for c in DESIGN} == {"clean", "other"}
    for data in ("b8", "b77", "c15"):  # every dataset has its no-shortcut reference
        assert any(c.data == data and c.shortcut.kind == "none" for c in DESIGN)
    order = SuiteConfig().selected_cases()
    assert [c.shortcut.kind == "none" for c in order] == sorted([c.shortcut.kind == "none" for c in order], reverse=True)


def test_case_configs_add_the_oracle_with_gold_positions_except_without_artefact():
    cfg = SuiteConfig(oracle_weights=[10.0, 100.0], recipes=[{"name": "cap_gr3", "priors": ["cap"], "recipe": "fixed"}],
                      benchmark={"pipeline": {"seeds": [0]}})
    by = {c.name: c for c in DESIGN}
    bench = case_benchmark_config(cfg, by["b8-phrase-end"])
    assert [v.name for v in bench.pipeline.variants] == ["ce", "cap_gr3", oracle_name(10.0), oracle_name(100.0)]
    oracle = bench.pipeline.variants[-1]
    assert (oracle.priors, oracle.train) == ([], {"model": {"penalty_weight": 100.0}})
    assert bench.shortcut.penalty_words  # the gold mask in the files
    assert bench.data.classes == 8 and bench.results is None
    assert bench.pipeline.train_config == "configs/banking77_5shot.yaml"
    assert case_benchmark_config(cfg, by["c15-phrase-end"]).pipeline.train_config == "configs/clinc150_5shot.yaml"
    none = case_benchmark_config(cfg, by["b8-none"])
    assert [v.name for v in none.pipeline.variants] == ["ce", "cap_gr3"] and not none.shortcut.penalty_words
    assert case_key(cfg, by["b8-none"]) != case_key(SuiteConfig(benchmark={"pipeline": {"seeds": [0, 1]}}), by["b8-none"])
    with pytest.raises(ConfigError, match="set per case"):
        case_benchmark_config(SuiteConfig(benchmark={"pipeline": {"variants": []}}), by["b8-none"])
    with pytest.raises(ConfigError, match="set per case"):
        case_benchmark_config(SuiteConfig(benchmark={"shortcut": {}}), by["b8-none"])
    with pytest.raises(ConfigError, match="unknown suite case"):
        SuiteConfig(cases=["b8-nonce"]).selected_cases()
    # 0.9 of 5 texts plants all 5: the same data as 1.0, refused; at k = 10 it plants 9.
    noisy = SuiteCase("b8-frequent-90", "b8", {"kind": "frequent", "strength": 0.9, "rest": "other"})
    with pytest.raises(ConfigError, match="plants all 5"):
        case_benchmark_config(SuiteConfig(benchmark={"k_shot": 5}), noisy)
    assert case_benchmark_config(SuiteConfig(benchmark={"k_shot": 10}), noisy).shortcut.strength == 0.9


@pytest.mark.parametrize("name", ["suite.yaml", "suite_draw1.yaml", "suite_smoke.yaml"])
def test_shipped_configs_parse(name):
    cfg = parse_config(["--config", str(ROOT / "configs" / name)])
    for case in cfg.selected_cases():
        case_benchmark_config(cfg, case)


def _models(ce_val, oracles, test=None):
    """Benchmark-style model rows: {name: {seeds, per_seed: {0: metrics}}}."""
    test = test or {}

    def row(clean, counter, extra=None):
        return {"seeds": [0], "per_seed": {"0": {**(extra or {}), "validation": {"clean_accuracy": clean,
                                                                               "counter_accuracy": counter}}}}

    out = {"ce": row(*ce_val, test.get("ce"))}
    for w, vals in oracles.items():
        out[oracle_name(w)] = row(*vals, test.get(oracle_name(w)))
    return out


def test_oracle_weight_rule_maximises_counter_validation_within_the_clean_floor():
    models = _models((0.80, 0.40), {10.0: (0.80, 0.60), 100.0: (0.795, 0.70), 1000.0: (0.60, 0.90)})
    # 1000 has the best counter accuracy but loses 20 clean points: excluded; 100 is within 1 point
    assert choose_oracle_weight(models, [10.0, 100.0, 1000.0], 0.01) == 100.0
    assert choose_oracle_weight(models, [10.0, 100.0, 1000.0], 0.001) == 10.0
    tie = _models((0.8, 0.4), {10.0: (0.8, 0.6), 100.0: (0.8, 0.6)})
    assert choose_oracle_weight(tie, [100.0, 10.0]) == 10.0  # ties go to the smaller weight
    assert choose_oracle_weight(_models((0.8, 0.4), {10.0: (0.5, 0.9)}), [10.0]) is None


def test_gain_share_known_answers():
    assert oracle_gain_share(0.70, 0.50, 0.90) == pytest.approx(0.5)
    assert oracle_gain_share(0.40, 0.50, 0.90) == pytest.approx(-0.25)
    assert math.isnan(oracle_gain_share(0.70, 0.50, 0.50))


def _record(name="b8-word", confusion=0.1):
    test = {"ce": {"clean_accuracy": 0.8, "counter_accuracy": 0.5, "worst_group_accuracy": 0.2, "shortcut_reliance": 0.4},
            oracle_name(10.0): {"clean_accuracy": 0.8, "counter_accuracy": 0.7, "worst_group_accuracy": 0.6,
                                "shortcut_reliance": 0.1},
            "cap_gr3": {"clean_accuracy": 0.79, "counter_accuracy": 0.6, "worst_group_accuracy": 0.4,
                        "shortcut_reliance": 0.2}}
    models = _models((0.8, 0.4), {10.0: (0.8, 0.6)}, test)
    models["cap_gr3"] = {"seeds": [0], "per_seed": {"0": {**test["cap_gr3"], "validation": {"clean_accuracy": 0.8,
                                                                                              "counter_accuracy": 0.5}}}}
    return {"case": {"name": name, "shortcut": {"kind": "word"}}, "benchmark": {"models": models, "partial": False},
            "confusion": confusion}


def test_paired_differences_from_ce_with_a_bootstrap_interval():
    gold = [0, 1, 0, 1]
    models = {"ce": {"per_seed": {"0": {"predictions": {"clean": [0, 1, 1, 0]}}, "1": {"predictions": {"clean": [0, 1, 1, 1]}}}},
              "x": {"per_seed": {"0": {"predictions": {"clean": [0, 1, 0, 1]}}, "1": {"predictions": {"clean": [0, 1, 0, 1]}}}}}
    out = paired_vs_ce(models, {"clean": gold}, n_boot=500)["x"]["clean"]
    assert out["mean"] == pytest.approx((1.0 - 0.5 + 1.0 - 0.75) / 2)  # paired mean over seeds
    assert out["ci95"][0] <= out["mean"] <= out["ci95"][1] and out["n_seeds"] == 2 and out["n_examples"] == 4


def test_summary_gives_ce_reliance_over_confusion_and_recipe_gain_share():
    s = summarise_case(_record(), [10.0])
    assert s["oracle"] == oracle_name(10.0)
    assert s["ce_reliance_over_confusion"] == pytest.approx(4.0)
    assert s["gain_share"] == {"cap_gr3": pytest.approx(0.5)}
    assert s["models"]["ce"]["worst_group_accuracy"] == 0.2


def test_records_are_reused_and_tables_assembled_from_them(tmp_path):
    cfg = SuiteConfig(records=str(tmp_path / "records"), results=str(tmp_path / "suite"), cases=["b8-word", "b8-none"],
                      oracle_weights=[10.0], recipes=[{"name": "cap_gr3", "priors": ["cap"]}])
    case = next(c for c in DESIGN if c.name == "b8-word")
    record = {**_record(), "key": case_key(cfg, case)}
    record["summary"] = summarise_case(record, cfg.oracle_weights)
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "b8-word.json").write_text(json.dumps(record))
    assert run_case(cfg, case) == record  # current: returned without running anything
    out = assemble(cfg)
    # Every case of the design is in the tables, not only the two selected: the others are missing.
    assert out["partial"] and set(out["missing"]) == {c.name for c in DESIGN} - {"b8-word"}
    assert list(out["cases"]) == ["b8-word"]
    md = (tmp_path / "suite.md").read_text()
    assert "| b8-word | cap_gr3 | 79.0 | – | 60.0 | – | 40.0 | 20.0 | 50.0 |" in md  # no labels: no paired interval
    assert "| b8-word | 40.0 | 10.0 | 4.0 |" in md
    assert json.loads((tmp_path / "suite.json").read_text())["cases"]["b8-word"]["summary"]["oracle"] == oracle_name(10.0)


@pytest.mark.slow
def test_smoke_suite_runs_end_to_end(tmp_path, monkeypatch):
    """configs/suite_smoke.yaml: two tiny cases (none, decoy at the end), CE, one oracle and the recipe
    rule, a real MiniLM and SmolLM2; the records and tables land, and a rerun recomputes nothing."""
    from eg_train.experiment.suite import run_suite

    monkeypatch.chdir(ROOT)
    cfg = parse_config(["--config", "configs/suite_smoke.yaml", "--out_dir", str(tmp_path / "out"),
                        "--records", str(tmp_path / "records"), "--results", str(tmp_path / "suite")])
    out = run_suite(cfg)
    assert not out["partial"] and set(out["cases"]) == {"b3-none", "b3-decoy-end"}
    s = out["cases"]["b3-decoy-end"]["summary"]
    assert set(s["models"]) == {"ce", oracle_name(10000.0), "rule", "rule~penalty_1e+03", "rule~penalty_1e+04",
                                "rule~prior_gr3"} and 0.0 <= s["confusion_rate"] <= 1.0
    record = json.loads((tmp_path / "records" / "b3-decoy-end.json").read_text())
    choice = record["rule_choices"]["rule"]["0"]
    assert choice["chosen"] in {"ce", "rule~penalty_1e+03", "rule~penalty_1e+04", "rule~prior_gr3"} and choice["reason"]
    selection = record["rule_selections"]["rule"]  # the validation evidence of the choice, per text
    assert selection["chosen"] == choice["chosen"] and set(selection["per_seed"]) >= {"ce", choice["chosen"]}
    assert len(selection["per_seed"]["ce"]["0"]["clean_correct"]) == selection["validation"]["n_clean"]
    assert 0.0 <= s["models"]["ce"]["worst_group_accuracy"] <= 1.0
    mtime = (tmp_path / "records" / "b3-decoy-end.json").stat().st_mtime
    run_suite(cfg)
    assert (tmp_path / "records" / "b3-decoy-end.json").stat().st_mtime == mtime
    # A record carried to a machine without the none case's models (its confusion not computed there):
    # the CE models of the reference are trained again and the confusion is filled in, nothing else changes.
    import shutil

    from eg_train.experiment.suite import _model_dirs, case_benchmark_config

    none_case = next(c for c in cfg.selected_cases() if c.name == "b3-none")
    for (variant, _), model in _model_dirs(case_benchmark_config(cfg, none_case)).items():
        if variant == "ce":
            shutil.rmtree(model.parent)
    shutil.rmtree(tmp_path / "out" / "b3-none")  # nothing of the none case is on this machine
    path = tmp_path / "records" / "b3-decoy-end.json"
    record = json.loads(path.read_text())
    record["confusion"] = None
    path.write_text(json.dumps(record))
    run_suite(cfg)
    filled = json.loads(path.read_text())
    assert filled["confusion"] == pytest.approx(s["confusion_rate"], abs=0.05)
    assert filled["benchmark"] == record["benchmark"] and filled["key"] == record["key"]
