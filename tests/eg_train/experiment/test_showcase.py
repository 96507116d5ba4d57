"""The demo (`eg-train demo`): its config, its checks, and the table and plot it builds from the cases' outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eg_train.experiment.showcase import (
    ShowcaseCase,
    ShowcaseConfig,
    check_showcase_config,
    collect,
    parse_config,
    plot,
    render_markdown,
)
from eg_train.foundation.data.shortcut import ShortcutConfig
from eg_train.foundation.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_config_parses_and_compares_ce_with_the_recipe():
    cfg = parse_config(["--config", str(ROOT / "configs" / "showcase.yaml")])
    check_showcase_config(cfg)
    assert [c.shortcut.kind for c in cfg.cases] == ["none", "word"]
    variants = {v.name: v for v in cfg.benchmark.pipeline.variants}
    assert variants["ce"].priors == [] and variants[cfg.recipe].priors
    assert cfg.benchmark.pipeline.model_attacks == ["deepwordbug"]
    # The demo's recipe is the rule (docs/recipe.md), whose audit of the CE model the demo shows.
    from eg_train.experiment.rule import is_rule

    assert is_rule(variants[cfg.recipe]) and f"{cfg.recipe}~prior_gr3" in variants


@pytest.mark.parametrize("change, message", [({"recipe": "nope"}, "not one of"),
                                             ({"cases": []}, "distinct names"),
                                             ({"case_workers": 0}, "case_workers")])
def test_bad_configs_are_refused(change, message):
    cfg = parse_config(["--config", str(ROOT / "configs" / "showcase.yaml")])
    for k, v in change.items():
        setattr(cfg, k, v)
    with pytest.raises(ConfigError, match=message):
        check_showcase_config(cfg)


def _case_outputs(out: Path, case: str, models: dict[str, dict]) -> dict:
    """What one case's shortcut benchmark leaves: its result, the pipeline's summary, metrics and audit."""
    keys = {}
    for name, m in models.items():
        eval_dir = out / case / "pipeline" / "eval" / f"{name}-seed0-k"
        eval_dir.mkdir(parents=True)
        (eval_dir / "metrics.json").write_text(json.dumps({
            "model_attacks": {"recipes": {"deepwordbug": {"accuracy_under_attack": m["adaptive"]}}},
            "transfer": {"deepwordbug": {"accuracy": m["transfer"]}}}))
        keys[f"{name}-seed0"] = {"eval": str(eval_dir)}
        if "audit" in m:
            audit = out / case / "pipeline" / "audit" / f"{name}-seed0-k"
            audit.mkdir(parents=True)
            (audit / "audit.json").write_text(json.dumps({"confirmed": m["audit"]}))
            keys[f"{name}-seed0"]["audit"] = str(audit)
    (out / case / "pipeline" / "summary-results.json").write_text(json.dumps({"keys": {"models": keys}}))
    return {"shortcut": {"artefacts": {"card_arrival": "hyena"} if case == "planted" else {}},
            "models": {name: {"per_seed": {"0": m["metrics"]}} for name, m in models.items()}}


def test_table_markdown_and_plot_from_the_cases(tmp_path):
    cfg = parse_config(["--config", str(ROOT / "configs" / "showcase.yaml"), "--out_dir", str(tmp_path)])
    hyena = {"feature": ["hyena"], "class": "card_arrival", "position": "any", "flip_rate": 1.0,
             "flip_rate_control": 0.05, "flip_ci95": [0.8, 1.0]}
    keyword = {**hyena, "feature": ["card"], "flip_rate": 0.4}
    metrics = lambda clean, counter, rel: {"clean_accuracy": clean, "counter_accuracy": counter,  # noqa: E731
                                            "worst_group_accuracy": counter, "shortcut_reliance": rel}
    results = {
        "clean": _case_outputs(tmp_path, "clean", {
            "ce": {"metrics": metrics(0.9, 0.9, 0.1), "adaptive": 0.0, "transfer": 0.0, "audit": []},
            "eg": {"metrics": metrics(0.7, 0.7, 0.1), "adaptive": 0.0, "transfer": 0.4}}),
        "planted": _case_outputs(tmp_path, "planted", {
            "ce": {"metrics": metrics(0.6, 0.0, 1.0), "adaptive": 0.0, "transfer": 0.0, "audit": [hyena, keyword]},
            "eg": {"metrics": metrics(0.7, 0.5, 0.3), "adaptive": 0.1, "transfer": 0.35}}),
    }
    table = collect(cfg, results)
    clean, planted = table["cases"]["clean"]["models"], table["cases"]["planted"]["models"]
    # without an artefact the counter-shortcut texts are the clean ones: not reported
    assert clean["ce"]["counter_accuracy"] is None and clean["ce"]["clean_accuracy"] == pytest.approx(0.9)
    assert planted["eg"]["counter_accuracy"] == pytest.approx(0.5) and planted["ce"]["shortcut_reliance"] == 1.0
    assert planted["eg"]["attack_transfer_accuracy"] == pytest.approx(0.35)
    assert planted["eg"]["attack_adaptive_accuracy"] == pytest.approx(0.1)
    assert [f["feature"] for f in planted["ce"]["audit_confirmed"]] == [["hyena"], ["card"]]
    md = render_markdown(table, 420.0)
    assert "| planted | eg | 70.0 | 50.0 | 50.0 | 30.0 | 10.0 | 35.0 |" in md
    assert "| clean | ce | 90.0 | — | — | — |" in md
    assert "1 of the 1 planted words" in md and "`hyena` → card_arrival (planted)" in md
    assert "`card` → card_arrival:" in md
    png = plot(table, tmp_path / "demo.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cases_on_their_own_workers_run_their_pipelines_on_one(tmp_path):
    from eg_train.experiment.showcase import _case_config

    cfg = parse_config(["--config", str(ROOT / "configs" / "showcase.yaml"), "--out_dir", str(tmp_path)])
    benches = [_case_config(cfg, c) for c in cfg.cases]
    assert [b.out_dir for b in benches] == [str(tmp_path / "clean"), str(tmp_path / "planted")]
    assert all(b.pipeline.workers == 1 for b in benches)
    assert benches[1].shortcut == ShortcutConfig(kind="word", strength=1.0, rest="clean", seed=0)
    one = ShowcaseConfig(out_dir=str(tmp_path), benchmark=cfg.benchmark, cases=cfg.cases, case_workers=1)
    assert _case_config(one, ShowcaseCase("x")).pipeline.workers == cfg.benchmark.pipeline.workers
    assert not math.isnan(cfg.benchmark.pipeline.workers)


def test_a_pipeline_config_given_to_the_demo_is_pointed_at_eg_train_pipeline():
    with pytest.raises(ConfigError, match="eg-train pipeline --config"):
        parse_config(["--config", str(ROOT / "configs" / "pipeline_demo.yaml")])
