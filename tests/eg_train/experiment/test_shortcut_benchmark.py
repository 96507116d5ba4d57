"""The shortcut benchmark (eg_train.experiment.shortcut): data through the pipeline's own sample,
results arithmetic, shipped configs, and one tiny end-to-end run on the real embedded models."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, plan, sample_spec
from eg_train.experiment.shortcut import (
    ShortcutBenchmarkConfig,
    build_data,
    counter_validation,
    parse_config,
    pipeline_config,
    run_shortcut_benchmark,
)
from eg_train.experiment.shortcut_results import collect, paired, render_markdown, t975, write_results
from eg_train.foundation.data import DataSpec
from eg_train.foundation.data.shortcut import ShortcutConfig, ShortcutFileError, shortcut_metadata
from eg_train.foundation.words import split_words

REPO = Path(__file__).resolve().parents[3]


def test_t_quantiles_are_the_exact_ones():
    for df, published in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042), (120, 1.980)):
        assert t975(df) == pytest.approx(published, abs=5e-4), df  # the printed table's values
    assert t975(10_000) == pytest.approx(1.960, abs=1e-3)


def test_paired_difference_and_interval_known_answer():
    d = paired([0.5, 0.7, 0.6], [0.4, 0.5, 0.6])  # differences 0.1, 0.2, 0.0
    assert d["mean"] == pytest.approx(0.1) and d["std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3 ** 0.5  # t_{0.975, 2}
    assert d["ci95"] == pytest.approx([0.1 - half, 0.1 + half])
    assert paired([0.5], [0.4])["ci95"] is None


def _cfg(tmp_path, tiny_spec, **kw) -> ShortcutBenchmarkConfig:
    base = dict(
        out_dir=str(tmp_path / "out"), data=DataSpec(**tiny_spec), dataset_name="tiny", k_shot=2, val_per_class=1,
        shortcut=ShortcutConfig(kind="decoy", strength=1.0, seed=0),
        train={"trainer": {"max_epochs": 1, "enable_progress_bar": False}, "data": {"batch_size": 3},
               "model": {"ig": {"calibration_resolution": 8}}},
        seeds=[0], n_samples=8, llm="smollm2-135m-instruct", priors={"demonstrations_per_class": 0}, variants=[TrainedVariant("ce"), TrainedVariant("hybrid", ["lime", "cap", "ig"], "mean", recipe="fixed")],
        workers=1, diagnostics_batches=1, pipeline_test_subset=None, faithfulness_examples=2, eval_ig_steps=4, ig_examples=4, ig_steps=4,
        results=str(tmp_path / "results" / "shortcut_tiny"), train_config=str(REPO / "configs" / "demo.yaml"),
    )
    base.update(kw)
    # The pipeline's own fields go into the nested PipelineConfig.
    pipeline_fields = {f.name for f in fields(PipelineConfig)} - {"out_dir", "data", "k_shot", "sample_seed", "results", "name"}
    nested = {("test_subset" if k == "pipeline_test_subset" else k): base.pop(k) for k in list(base)
              if k in pipeline_fields or k == "pipeline_test_subset"}
    return ShortcutBenchmarkConfig(**base, pipeline=PipelineConfig(**nested))


def test_files_are_the_pipelines_sample_in_order(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec)
    data, spec = build_data(cfg)
    sample = sample_spec(pipeline_config(cfg, spec)).load()
    assert sample.dataset["text"] == data["train"]["text"]  # k texts per class in the file: all are the sample
    assert len(data["train"]) == 6 and all(len(p) == 1 for p in data["train"]["artefact_positions"])
    assert len(data["validation"]) == 3 and all(a == y for a, y in zip(data["validation"]["artefact_class"], data["validation"]["label"]))
    # the validation texts are the ones left out of the sample
    assert not set(data["validation"]["original_text"]) & set(data["train"]["original_text"])
    # a second build with the same recipe reuses the saved data; another recipe is refused
    again, _ = build_data(cfg)
    assert shortcut_metadata(again["train"]) == shortcut_metadata(data["train"])
    with pytest.raises(ShortcutFileError, match="another shortcut dataset"):
        build_data(_cfg(tmp_path, tiny_spec, shortcut=ShortcutConfig(kind="word")))


def _fake(clean, counter, reliance, val_reliance=None):
    val = reliance if val_reliance is None else val_reliance
    return {"clean_accuracy": clean, "counter_accuracy": counter, "aligned_accuracy": 1.0,
            "shortcut_reliance": reliance, "ig_share_abs": 0.5, "ig_top1": 0.5,
            "val_clean_accuracy": clean, "val_counter_accuracy": 1.0 - val, "val_shortcut_reliance": val}


def test_counter_validation_swaps_each_validation_artefact_for_every_other_class(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec)
    data, _ = build_data(cfg)
    val = counter_validation(data)
    n_classes = len(shortcut_metadata(data["train"])["label_names"])
    counter, artefacts = val["test_counter"], shortcut_metadata(data["train"])["artefacts"]
    assert len(counter) == len(data["validation"]) * (n_classes - 1)
    assert val["test_clean"]["text"] == data["validation"]["original_text"]
    assert val["test_aligned"]["text"] == data["validation"]["text"]
    by_id = {r["id"]: r for r in data["validation"]}
    for row in counter:
        source = by_id[row["id"].split("~")[0]]
        assert row["label"] == source["label"] and row["artefact_class"] != row["label"]
        words, own = split_words(row["text"]).words, split_words(source["text"]).words
        k = row["artefact_positions"][0]
        assert k == source["artefact_positions"][0] and words[k] == artefacts[row["artefact_class"]]
        assert words[:k] + words[k + 1:] == own[:k] + own[k + 1:]  # only the artefact differs
    assert {shortcut_metadata(ds)["split"] for ds in val.values()} == {"validation_clean", "validation_counter",
                                                                       "validation_aligned"}


def test_counter_validation_subsample_draws_distinct_other_classes_per_text(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec)
    data, _ = build_data(cfg)
    full = counter_validation(data)["test_counter"]
    one = counter_validation(data, per_text=1, seed=3)["test_counter"]
    assert len(one) == len(data["validation"])
    assert one["text"] == counter_validation(data, per_text=1, seed=3)["test_counter"]["text"]  # seeded
    assert set(one["id"]) <= set(full["id"])  # the same rows as the full set, a subset of them
    assert all(r["artefact_class"] != r["label"] for r in one)
    n_classes = len(shortcut_metadata(data["train"])["label_names"])
    assert len(counter_validation(data, per_text=n_classes + 5)["test_counter"]) == len(full)
    with pytest.raises(ValueError, match="validation_artefacts"):
        counter_validation(data, per_text=0)


def test_results_pairing_partial_flag_and_kept_analysis(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec, seeds=[0, 1, 2])
    data, _ = build_data(cfg)
    models = {"ce": {0: _fake(0.7, 0.1, 0.9), 1: _fake(0.6, 0.2, 0.8), 2: _fake(0.8, 0.0, 1.0)},
              "hybrid": {0: _fake(0.7, 0.3, 0.4), 1: _fake(0.6, 0.4, 0.4)}}
    res = collect(cfg, data, models, {}, {"total_s": 60.0}, {}, "cmd")
    assert res["partial"] and res["missing"] == ["hybrid-seed2"]
    d = res["models"]["hybrid"]["vs_ce"]["counter_accuracy"]
    assert d["values"] == pytest.approx([0.2, 0.2]) and d["seeds"] == [0, 1]
    assert res["targets"] is None  # not every seed has run
    md = render_markdown(res)
    assert "PARTIAL RESULTS" in md and "| hybrid | 0 |" in md
    write_results(cfg.results, res)
    path = Path(cfg.results).with_suffix(".md")
    path.write_text(path.read_text().replace("<!-- analysis -->\n", "<!-- analysis -->\nOur reading.\n"))
    models["hybrid"][2] = _fake(0.8, 0.4, 0.3)
    res = collect(cfg, data, models, {}, {}, {}, "cmd")
    write_results(cfg.results, res)
    assert not res["partial"] and "Our reading." in path.read_text()
    t = res["targets"]
    assert t["best_variant"] == "hybrid" and t["reliance_ratio"] == pytest.approx((1.1 / 3) / 0.9)
    assert t["halves_reliance"] and t["gains_10_points"] and t["clean_within_1_point"] and t["met"]


def test_best_variant_is_chosen_on_validation_and_a_selection_run_hides_the_tests(tmp_path, tiny_spec):
    variants = [TrainedVariant("ce"), TrainedVariant("a", ["lime"], recipe="fixed"), TrainedVariant("b", ["cap"], recipe="fixed")]
    cfg = _cfg(tmp_path, tiny_spec, seeds=[0, 1], variants=variants)
    data, _ = build_data(cfg)
    # "a" is better on the tests, "b" on validation: the target check must take "b".
    models = {"ce": {s: _fake(0.7, 0.0, 1.0) for s in (0, 1)},
              "a": {s: _fake(0.7, 0.5, 0.2, val_reliance=0.6) for s in (0, 1)},
              "b": {s: _fake(0.7, 0.3, 0.5, val_reliance=0.4) for s in (0, 1)}}
    res = collect(cfg, data, models, {}, {}, {}, "cmd")
    assert res["targets"]["best_variant"] == "b" and res["chosen_on_validation"] == "b"
    assert res["models"]["b"]["vs_ce"]["val_shortcut_reliance"]["mean"] == pytest.approx(-0.6)
    assert "Lowest validation reliance: **b**" in render_markdown(res)
    sel = collect(_cfg(tmp_path, tiny_spec, seeds=[0, 1], variants=variants, report_test=False), data, models, {}, {}, {}, "cmd")
    assert sel["targets"] is None and sel["chosen_on_validation"] == "b"
    assert set(sel["models"]["a"]["metrics"]) == {"val_clean_accuracy", "val_counter_accuracy", "val_shortcut_reliance"}
    assert all("counter_accuracy" not in m for m in sel["models"]["a"]["per_seed"].values())
    md = render_markdown(sel)
    assert "Selection run" in md and "counter-shortcut acc. |" not in md and "Targets" not in md


@pytest.mark.parametrize("name", ["shortcut_banking77_5shot", "shortcut_clinc150_5shot"])
def test_shipped_configs_parse(name):
    cfg = parse_config(["--config", str(REPO / "configs" / f"{name}.yaml")])
    # The recipe chosen on validation at 8 intents (grad_ratio 3), named in every aligned variant.
    assert [v.name for v in cfg.pipeline.variants] == ["ce"] + [f"{v}_gr3_mse" for v in ("lime", "cap", "ig", "cap_hybrid_mean",
                                                                                  "hybrid_no_ig_mean")]
    assert cfg.pipeline.train["model"]["grad_ratio"] == 3.0 and cfg.pipeline.train["model"]["beta_warmup_ratio"] == 0.0
    assert cfg.pipeline.variants[-1].priors == ["lime", "cap"] and cfg.pipeline.seeds == [0, 1, 2]
    assert cfg.shortcut.kind == "word" and cfg.shortcut.strength == 1.0
    assert cfg.results == f"results/{name}"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("shortcut_*.yaml")), ids=lambda p: p.stem)
def test_every_shortcut_config_parses_with_known_model_options(path):
    from dataclasses import fields

    from eg_train.training.module import ModelOptions

    from eg_train.experiment.shortcut import check_benchmark_config

    cfg = parse_config(["--config", str(path)])
    check_benchmark_config(cfg)  # what a run checks before building its data
    known = {f.name for f in fields(ModelOptions)}
    for opts in [cfg.pipeline.train] + [v.train for v in cfg.pipeline.variants]:
        assert set(opts.get("model", {})) <= known, (path.name, opts)


def test_tiny_end_to_end(tmp_path, tiny_spec):
    cfg = _cfg(tmp_path, tiny_spec, workers=2)  # two worker processes: the pipeline's and the evaluation's pools
    res = run_shortcut_benchmark(cfg)
    assert not res["partial"]
    for name in ("ce", "hybrid"):
        m = res["models"][name]["per_seed"]["0"]
        for k in ("clean_accuracy", "counter_accuracy", "aligned_accuracy", "shortcut_reliance", "ig_share_abs",
                  "val_clean_accuracy", "val_counter_accuracy", "val_shortcut_reliance"):
            assert 0.0 <= m[k] <= 1.0, (name, k)
    assert set(res["priors"]) == {"lime", "cap", "ig", "lime+cap+ig (mean)"}
    assert all(p["n"] == 6 for p in res["priors"].values())
    g = res["alignment_diagnostics"]["hybrid"]
    assert set(g) == {"pretrained_init", "ce_trained"} and all(-1 <= v["cosine"] <= 1 for v in g.values())
    assert "‖∇align‖" in Path(cfg.results).with_suffix(".md").read_text()
    # the diagnostics ran as a job of the pipeline's graph, not after it
    assert "diagnostics_s" in res["pipeline_timings"], res["pipeline_timings"]
    assert "diagnostics_s" not in res["timings"], res["timings"]
    saved = json.loads(Path(cfg.results).with_suffix(".json").read_text())
    assert saved["shortcut"]["recipe"]["kind"] == "decoy"
    # the IG prior's artefact share equals the CE model's own IG share on the training texts
    # (it is that model's IG): check it against a direct captum computation on one text
    from eg_train.evaluation.attribution import encode_texts, word_integrated_gradients
    from eg_train.evaluation.shortcut import artefact_share
    from eg_train.foundation.models.resolve import load_sequence_classifier
    from priors.cache import PriorCache

    data, spec = build_data(cfg)
    split = sample_spec(pipeline_config(cfg, spec)).load()
    cached = PriorCache(Path(cfg.out_dir) / "pipeline" / "prior_cache").scores_for(split, "ig")
    pcfg = pipeline_config(cfg, spec)
    model, tok = load_sequence_classifier(str(Path(plan(pcfg).model(pcfg.variants[0], 0).run_dir) / "model"))
    text, y, pos = data["train"][0]["text"], data["train"][0]["label"], data["train"][0]["artefact_positions"]
    (direct,) = word_integrated_gradients(model, encode_texts(tok, [text]), [y], tok.pad_token_id, n_steps=50)
    assert len(direct) == len(split_words(text))
    assert artefact_share(cached[0], pos) == pytest.approx(artefact_share(direct, pos), abs=0.05)
    # a rerun with skip_pipeline reuses every evaluation
    again = run_shortcut_benchmark(_cfg(tmp_path, tiny_spec, workers=2, skip_pipeline=True))
    assert again["models"]["hybrid"]["per_seed"] == res["models"]["hybrid"]["per_seed"]


def test_diagnostics_join_the_pipeline_graph_after_the_priors_and_the_ce_model(tmp_path, tiny_spec):
    from eg_train.experiment.pipeline import pipeline_jobs
    from eg_train.experiment.shortcut import _model_jobs

    cfg = _cfg(tmp_path, tiny_spec, seeds=[0, 1], ig_prior_seed=1)
    data, spec = build_data(cfg)
    jobs = {j.key: j for j in pipeline_jobs(pipeline_config(cfg, spec), _model_jobs(cfg, spec))}
    assert set(jobs["shortcut_diagnostics"].deps) == {"priors:cap", "priors:ig", "priors:lime", "train:ce-seed1"}
    hybrid_run = Path(plan(pipeline_config(cfg, spec)).model(cfg.pipeline.variants[1], 0).run_dir)
    assert f"shortcut_eval:{hybrid_run.name}" in jobs and hybrid_run.name.startswith("hybrid-seed0-")
    none = pipeline_jobs(pipeline_config(cfg, spec), _model_jobs(replace(cfg, diagnostics_batches=0), spec))
    assert "shortcut_diagnostics" not in {j.key for j in none}


def test_training_trace_reads_the_logged_alignment_weight(tmp_path):
    from eg_train.experiment.shortcut import training_trace

    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train_beta,train_grad_ratio,val_acc\n0,0,0.5,2.0,\n0,0,,,0.3\n0,1,1.5,1.0,\n0,2,4.0,0.25,\n")
    t = training_trace(csv)
    assert (t["train_beta_first"], t["train_beta_median"], t["train_beta_last"]) == (0.5, 1.5, 4.0)
    assert t["train_grad_ratio_last"] == 0.25 and "train_ce_first" not in t
    assert training_trace(tmp_path / "missing.csv") == {}


@pytest.mark.parametrize("name", ["shortcut_banking77_5shot_8intents", "shortcut_banking77_5shot_8intents_select"])
def test_recipe_configs_parse_and_their_training_options_are_model_options(name):
    from dataclasses import replace

    from eg_train.training.module import ModelOptions

    cfg = parse_config(["--config", str(REPO / "configs" / f"{name}.yaml")])
    ratio = [v for v in cfg.pipeline.variants if v.train.get("model", {}).get("grad_ratio")]
    assert ratio and all(v.priors for v in ratio)
    for v in ratio:
        replace(ModelOptions(), **v.train["model"])  # every key is a model option
    assert cfg.report_test is (name == "shortcut_banking77_5shot_8intents")
    assert cfg.out_dir == "outputs/shortcut_banking77_5shot_8intents"  # shared: runs and priors are reused


def test_a_bad_pipeline_section_is_refused_before_the_data_is_built(tmp_path, tiny_spec):
    from eg_train.foundation.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown prior methods"):
        run_shortcut_benchmark(_cfg(tmp_path, tiny_spec, variants=[TrainedVariant("ce"), TrainedVariant("h", ["limee"])]))
    bad = _cfg(tmp_path, tiny_spec)
    bad.pipeline.out_dir = "elsewhere"
    with pytest.raises(ConfigError, match="pipeline: out_dir are set by the shortcut benchmark"):
        run_shortcut_benchmark(bad)
    assert not (tmp_path / "out").exists()


def test_shortcut_metrics_are_kept_per_model_and_per_evaluation_setting(tmp_path, tiny_spec):
    from eg_train.experiment.shortcut import shortcut_eval_file

    cfg = _cfg(tmp_path, tiny_spec)
    run = tmp_path / "out" / "pipeline" / "runs" / "ce-seed0-0123456789"
    same = shortcut_eval_file(replace(cfg, validation_artefacts=3), run)  # validation metrics are added in place
    assert shortcut_eval_file(cfg, run) == same and same.name.startswith("ce-seed0-0123456789-")
    assert shortcut_eval_file(replace(cfg, ig_steps=5), run) != same
    assert shortcut_eval_file(cfg, run.with_name("ce-seed0-9876543210")) != same


def test_counter_validation_swaps_whole_phrases(tmp_path, tiny_spec):
    """A multi-word artefact is replaced as a whole: every recorded word index holds the other class's phrase."""
    cfg = _cfg(tmp_path, tiny_spec, shortcut=ShortcutConfig(kind="phrase", strength=1.0, position="end"))
    data, _ = build_data(cfg)
    counter = counter_validation(data)["test_counter"]
    artefacts = shortcut_metadata(data["train"])["artefacts"]
    assert len(counter) > 0
    for row in counter:
        words, phrase = split_words(row["text"]).words, split_words(artefacts[row["artefact_class"]]).words
        pos = row["artefact_positions"]
        assert len(pos) == len(phrase) and list(words[pos[0]:pos[-1] + 1]) == list(phrase)
        assert pos[-1] == len(words) - 1  # the end position is kept
