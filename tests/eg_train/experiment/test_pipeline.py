"""`eg-train demo` pipeline: priors shared across seeds, worker pool, resume, results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eg_train.foundation.data import DataSpec
from eg_train.experiment.jobs import Job
from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, pipeline_jobs, run_pipeline
from priors.cache import PriorCache

@pytest.fixture()
def pipeline_config(tmp_path, tiny_spec):
    spec = DataSpec(**tiny_spec)
    return PipelineConfig(
        out_dir=str(tmp_path / "out"),
        data=spec,
        k_shot=2,
        train_config="configs/demo.yaml",
        train={"trainer": {"max_epochs": 1, "enable_progress_bar": False},
               "data": {"batch_size": 3, "val_per_class": 1}, "model": {"ig": {"calibration_resolution": 8}}},
        seeds=[1, 0],
        llm="smollm2-135m-instruct",  # the tiny run stays on the smaller LLM; the default is checked below
        priors={"demonstrations_per_class": 0},
        n_samples=8,
        variants=[TrainedVariant("ce"), TrainedVariant("hybrid", ["lime", "cap", "ig"], "mean")],
        ig_prior_seed=0,
        test_subset=None,
        faithfulness_examples=3,
        eval_ig_steps=4,
        workers=2,
        results=str(tmp_path / "results" / "tiny"),
        model_attacks=["deepwordbug"],
        prior_quality_examples=3,
    )


def test_priors_are_computed_once_for_all_seeds_and_results_are_written(pipeline_config, tmp_path):
    # A warm-started variant on one of the two seeds only.
    pipeline_config.variants.append(TrainedVariant("warm", ["lime", "cap", "ig"], "mean", init_from_ce=True, seeds=[0]))
    summary = run_pipeline(pipeline_config)
    cache = PriorCache(tmp_path / "out" / "prior_cache")
    for method in ("lime", "cap", "ig"):
        assert len(cache.config_hashes(method)) == 1, method  # one configuration shared by both seeds
    records = cache.records()
    assert sorted(records.filter(lambda r: r["method"] == "cap")["id"]) == sorted(records.filter(lambda r: r["method"] == "ig")["id"])
    assert len(records.filter(lambda r: r["method"] == "cap")) == 6  # 2 per class
    ig_cfg = json.loads(next((tmp_path / "out" / "prior_cache" / "configs").glob("ig-*.json")).read_text())
    assert ig_cfg["priors_config"]["slm_checkpoint"].endswith("ce-seed0/model")  # ig_prior_seed's CE model

    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    for key in ("priors_lime_s", "priors_cap_s", "priors_ig_s", "train_ce_seed0_s", "train_hybrid_seed1_s", "eval_hybrid_seed0_s"):
        assert timings[key] > 0, key
    assert [p.split("/")[-1] for p in summary["runs"]] == ["ce-seed1", "hybrid-seed1", "ce-seed0", "hybrid-seed0", "warm-seed0"]
    # The warm-started variant trained from its own seed's CE model, on its one seed.
    assert "ce-seed0/model" in (tmp_path / "out" / "runs" / "warm-seed0" / "config.yaml").read_text()
    assert not (tmp_path / "out" / "runs" / "warm-seed1").exists()

    # Model-aware attacks: every model attacked itself, and the others on the CE model's texts.
    ce_src = json.loads((tmp_path / "out" / "eval" / "ce-seed0" / "metrics.json").read_text())
    hybrid = json.loads((tmp_path / "out" / "eval" / "hybrid-seed1" / "metrics.json").read_text())
    assert "deepwordbug" in ce_src["model_attacks"]["recipes"] and "deepwordbug" in hybrid["model_attacks"]["recipes"]
    assert hybrid["transfer_path"].endswith("eval/ce-seed0/model_attacks") and "deepwordbug" in hybrid["transfer"]

    res = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert set(res["methods"]) == {"ce", "hybrid", "warm"}
    acc = res["methods"]["hybrid"]["metrics"]["accuracy"]
    assert acc["n"] == 2 and len(acc["values"]) == 2
    delta = res["methods"]["hybrid"]["delta_vs_ce"]["accuracy"]["values"]
    ce = res["methods"]["ce"]["metrics"]["accuracy"]["values"]
    assert delta == pytest.approx([h - c for h, c in zip(acc["values"], ce)])
    assert res["priors"]["cap"]["examples"] == 6
    # Paired intervals from the per-example predictions: the bootstrap's mean is the mean paired
    # accuracy difference, and the adaptive attack is compared too.
    paired = res["methods"]["hybrid"]["paired_vs_ce"]
    assert paired["accuracy"]["bootstrap"]["mean"] == pytest.approx(sum(delta) / len(delta))
    assert paired["accuracy"]["bootstrap"]["low"] <= paired["accuracy"]["bootstrap"]["mean"] <= paired["accuracy"]["bootstrap"]["high"]
    assert "adaptive:deepwordbug/accuracy" in paired and "transfer:deepwordbug/accuracy" in paired
    assert res["methods"]["warm"]["paired_vs_ce"]["accuracy"]["seeds"] == [0]
    assert "Paired difference from CE" in (tmp_path / "results" / "tiny.md").read_text()
    # Prior quality measured once on 3 examples, stored in the cache and shown in the results.
    quality = res["prior_quality"]
    assert {q["method"] for q in quality.values()} == {"lime", "cap", "ig"}
    assert "Prior quality" in (tmp_path / "results" / "tiny.md").read_text()
    assert all(q["examples"] == 3 for q in quality.values())
    assert all(q["llm_accuracy"] is not None for q in quality.values() if q["method"] != "ig")
    assert timings["prior_quality_s"] > 0

    # A hand-written analysis survives a rerun; the rerun trains nothing and computes no prior.
    md = tmp_path / "results" / "tiny.md"
    md.write_text(md.read_text().replace("<!-- analysis -->\n", "<!-- analysis -->\nOur reading.\n"))
    model = tmp_path / "out" / "runs" / "hybrid-seed1" / "model" / "config.json"
    stamp = model.stat().st_mtime_ns
    run_pipeline(pipeline_config)
    assert model.stat().st_mtime_ns == stamp
    assert "Our reading." in md.read_text() and "| hybrid |" in md.read_text()
    assert json.loads((tmp_path / "out" / "timings.json").read_text())["priors_cap_s"] == timings["priors_cap_s"]


def test_init_from_ce_starts_each_seed_from_its_own_ce_model(pipeline_config, tmp_path):
    from eg_train.experiment.pipeline import train_config

    warm = TrainedVariant("hybrid_from_ce", ["lime", "cap", "ig"], init_from_ce=True)
    pipeline_config.variants.append(warm)
    tc = train_config(pipeline_config, warm, 1, tmp_path / "cache", tmp_path / "run")
    assert tc.model.model_name == str(Path(pipeline_config.out_dir) / "runs" / "ce-seed1" / "model")
    assert tc.prior is not None and tc.seed == 1
    cold = train_config(pipeline_config, pipeline_config.variants[1], 1, tmp_path / "cache", tmp_path / "run")
    assert cold.model.model_name == pipeline_config.slm
    with pytest.raises(ValueError, match="needs priors"):
        train_config(pipeline_config, TrainedVariant("x", [], init_from_ce=True), 0, None, tmp_path / "run")


def test_job_graph_waits_only_for_what_each_step_needs(pipeline_config):
    cfg = pipeline_config
    cfg.variants = [TrainedVariant("ce"), TrainedVariant("lime", ["lime"]),
                    TrainedVariant("hybrid", ["lime", "cap", "ig"]), TrainedVariant("warm", ["cap"], init_from_ce=True)]
    extra = lambda v, s, run: [Job(f"extra:{v.name}-seed{s}", print, (str(run),))]  # noqa: E731
    jobs = {j.key: j for j in pipeline_jobs(cfg, extra)}
    order = list(jobs)
    assert order[:3] == ["priors:cap", "priors:lime", "train:ce-seed0"]  # the longest jobs, then the IG source
    assert jobs["priors:ig"].deps == ("train:ce-seed0",)  # ig_prior_seed 0
    assert jobs["train:lime-seed1"].deps == ("priors:lime",)  # not the CAP or IG prior, not CE
    assert set(jobs["train:hybrid-seed1"].deps) == {"priors:lime", "priors:cap", "priors:ig"}
    assert set(jobs["train:warm-seed1"].deps) == {"priors:cap", "train:ce-seed1"}
    # every evaluation after the CE model's (its model-aware texts are the transfer set)
    assert jobs["eval:lime-seed1"].deps == ("train:lime-seed1", "eval:ce-seed0")
    assert jobs["eval:ce-seed0"].deps == ("train:ce-seed0",)
    assert set(jobs["prior_quality"].deps) >= {"priors:lime", "priors:cap", "priors:ig"}
    assert "prior_quality" in jobs["heatmaps"].deps
    assert jobs["extra:hybrid-seed0"].deps == ("train:hybrid-seed0",)
    assert jobs["extra:ce-seed1"].args == (str(Path(cfg.out_dir) / "runs" / "ce-seed1"),)
    # seed 0 (the IG source) before seed 1 among the aligned runs
    assert order.index("train:lime-seed0") < order.index("train:lime-seed1")


def test_priors_mapping_sets_prior_stage_options_and_refuses_pipeline_owned_ones(pipeline_config):
    from eg_train.experiment.pipeline import _prior_config

    pipeline_config.priors = {"demonstrations_per_class": 2, "contrast": "top_m", "focus": {"min_words": 99}}
    pcfg = _prior_config(pipeline_config, ["cap"])
    assert (pcfg.demonstrations_per_class, pcfg.contrast, pcfg.focus.min_words) == (2, "top_m", 99)
    assert pcfg.llm == "smollm2-135m-instruct" and pcfg.n_samples == 8  # the pipeline's own fields
    for bad in ({"llm": "x"}, {"no_such_option": 1}):
        pipeline_config.priors = bad
        with pytest.raises(ValueError, match="cannot be set here.*allowed: .*contrast"):
            _prior_config(pipeline_config, ["cap"])
    assert PipelineConfig().llm == "gemma3-270m"  # the prior stage's default LLM


def test_variant_seeds_must_be_pipeline_seeds(pipeline_config):
    pipeline_config.variants.append(TrainedVariant("five", ["cap"], seeds=[0, 4]))
    with pytest.raises(ValueError, match=r"seeds \[4\] are not among"):
        run_pipeline(pipeline_config)


def test_ig_prior_seed_must_be_trained(pipeline_config):
    pipeline_config.ig_prior_seed = 7
    with pytest.raises(ValueError, match="ig_prior_seed 7"):
        run_pipeline(pipeline_config)


@pytest.mark.parametrize("name", ["pipeline_demo", "pipeline_banking77_5shot", "pipeline_banking77_5shot_beta_warmup", "pipeline_clinc150_5shot"])
def test_shipped_pipeline_configs_parse(name):
    from pathlib import Path

    from eg_train.experiment.pipeline import parse_config

    path = Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml"
    cfg = parse_config(["--config", str(path)])
    assert cfg.variants[0].priors == [] and Path(cfg.train_config).is_file()
    assert all(m in ("lime", "cap", "ig") for v in cfg.variants for m in v.priors)
    # A config's data section merges into the default DataSpec: no hidden class subset may leak in.
    assert cfg.data.classes == (8 if name == "pipeline_demo" else None)


def _hold_lock(run_dir, ready, release):
    from eg_train.experiment.pipeline import _run_lock

    with _run_lock(Path(run_dir)):
        ready.set()
        release.wait(60)


def test_a_run_being_trained_by_another_process_is_left_alone(pipeline_config, tmp_path):
    import multiprocessing as mp

    from eg_train.experiment.pipeline import _run_lock, _train

    run_dir = tmp_path / "out" / "runs" / "ce-seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_text("in progress")
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(run_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RuntimeError, match="being trained"):
            _train(pipeline_config, TrainedVariant("ce"), 0, None)
        assert (run_dir / "metrics.csv").read_text() == "in progress"  # not wiped
    finally:
        release.set()
        holder.join(60)
    # Released by its holder (or by the OS when the holder dies): free again.
    with _run_lock(run_dir):
        pass


def test_a_second_config_never_overwrites_the_first_ones_outputs(pipeline_config):
    from dataclasses import replace

    from eg_train.experiment.pipeline import claim_outputs

    pipeline_config.results = None
    assert claim_outputs(pipeline_config) == ""
    assert claim_outputs(replace(pipeline_config, workers=1)) == ""  # the same config resumes
    other = replace(pipeline_config, seeds=[0])
    with pytest.raises(FileExistsError, match="differs in: seeds"):
        claim_outputs(other)
    assert claim_outputs(replace(other, name="one_seed")) == "-one_seed"
    out = Path(pipeline_config.out_dir)
    assert sorted(p.name for p in out.glob("pipeline*.yaml")) == ["pipeline-one_seed.yaml", "pipeline.yaml"]


def test_default_dataset_never_overrides_a_custom_file(tmp_path):
    from eg_train.experiment.pipeline import parse_config

    cfg = parse_config(["--data.files", "{train: f.csv}", "--data.label_column", "category"])
    assert cfg.data.preset is None and cfg.data.files == {"train": "f.csv"}
    assert parse_config([]).data.preset is None  # set to banking77 only when no data is given at all
