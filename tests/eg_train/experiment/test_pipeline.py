"""`eg-train pipeline` pipeline: priors shared across seeds, worker pool, resume, results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eg_train.foundation.data import DataSpec
from eg_train.experiment.jobs import Job
from eg_train.experiment.layout import RunLayout
from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, pipeline_jobs, plan, run_pipeline
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
        variants=[TrainedVariant("ce"), TrainedVariant("hybrid", ["lime", "cap", "ig"], "mean", recipe="fixed")],
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
    p = plan(pipeline_config)
    ce, hybrid, warm = (pipeline_config.variants[i] for i in (0, 1, 2))
    run = lambda v, s: Path(p.model(v, s).run_dir)  # noqa: E731
    evald = lambda v, s: Path(p.model(v, s).eval_dir)  # noqa: E731
    cache = PriorCache(tmp_path / "out" / "prior_cache")
    for method in ("lime", "cap", "ig"):
        assert len(cache.config_hashes(method)) == 1, method  # one configuration shared by both seeds
    records = cache.records()
    assert sorted(records.filter(lambda r: r["method"] == "cap")["id"]) == sorted(records.filter(lambda r: r["method"] == "ig")["id"])
    assert len(records.filter(lambda r: r["method"] == "cap")) == 6  # 2 per class
    ig_cfg = json.loads(next((tmp_path / "out" / "prior_cache" / "configs").glob("ig-*.json")).read_text())
    assert ig_cfg["priors_config"]["slm_checkpoint"] == str(run(ce, 0) / "model")  # ig_prior_seed's CE model

    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    steps = [RunLayout.timing_key("priors", what=m) for m in ("lime", "cap", "ig")]
    steps += [RunLayout.timing_key("train", p.model(ce, 0).run), RunLayout.timing_key("train", p.model(hybrid, 1).run),
              RunLayout.timing_key("eval", p.model(hybrid, 0).run)]
    for key in steps:
        assert timings[key] > 0, key
    assert summary["runs"] == [str(evald(v, s)) for v, s in ((ce, 1), (hybrid, 1), (ce, 0), (hybrid, 0), (warm, 0))]
    # The warm-started variant trained from its own seed's CE model, on its one seed.
    assert str(run(ce, 0) / "model") in (run(warm, 0) / "config.yaml").read_text()
    assert p.find("warm", 1) is None and not list((tmp_path / "out" / "runs").glob("warm-seed1*"))

    # Model-aware attacks: every model attacked itself, and the others on the CE model's texts.
    ce_src = json.loads((evald(ce, 0) / "metrics.json").read_text())
    hybrid_m = json.loads((evald(hybrid, 1) / "metrics.json").read_text())
    assert "deepwordbug" in ce_src["model_attacks"]["recipes"] and "deepwordbug" in hybrid_m["model_attacks"]["recipes"]
    assert hybrid_m["transfer_path"] == str(evald(ce, 0) / "model_attacks") and "deepwordbug" in hybrid_m["transfer"]

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
    model = run(hybrid, 1) / "model" / "config.json"
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
    assert tc.model.model_name == str(Path(plan(pipeline_config).model(pipeline_config.variants[0], 1).run_dir) / "model")
    assert tc.prior is not None and tc.seed == 1
    cold = train_config(pipeline_config, pipeline_config.variants[1], 1, tmp_path / "cache", tmp_path / "run")
    assert cold.model.model_name == pipeline_config.slm
    with pytest.raises(ValueError, match="needs priors"):
        train_config(pipeline_config, TrainedVariant("x", [], init_from_ce=True), 0, None, tmp_path / "run")


def test_job_graph_waits_only_for_what_each_step_needs(pipeline_config):
    cfg = pipeline_config
    cfg.variants = [TrainedVariant("ce"), TrainedVariant("lime", ["lime"], recipe="fixed"),
                    TrainedVariant("hybrid", ["lime", "cap", "ig"], recipe="fixed"), TrainedVariant("warm", ["cap"], init_from_ce=True)]
    extra = lambda v, s, run: [Job(f"extra:{v.name}-seed{s}", print, (str(run),))]  # noqa: E731
    jobs = {j.key: j for j in pipeline_jobs(cfg, extra)}
    order = list(jobs)
    assert order[:3] == ["priors:cap", "priors:lime", "train:ce-seed0"]  # the longest jobs, then the IG source
    assert jobs["priors:ig"].deps == ("train:ce-seed0",)  # ig_prior_seed 0
    assert jobs["train:lime-seed1"].deps == ("priors:lime",)  # not the CAP or IG prior, not CE
    assert set(jobs["train:hybrid-seed1"].deps) == {"priors:lime", "priors:cap", "priors:ig"}
    assert set(jobs["train:warm-seed1"].deps) == {"priors:cap", "train:ce-seed1"}
    # every evaluation after the CE model's (its model-aware texts are the transfer set)
    assert jobs["eval:lime-seed1"].deps == ("train:lime-seed1", "attacks", "eval:ce-seed0")
    assert jobs["eval:ce-seed0"].deps == ("train:ce-seed0", "attacks")
    assert set(jobs["prior_quality"].deps) >= {"priors:lime", "priors:cap", "priors:ig"}
    assert "prior_quality" in jobs["heatmaps"].deps
    assert jobs["extra:hybrid-seed0"].deps == ("train:hybrid-seed0",)
    assert jobs["extra:ce-seed1"].args == (plan(cfg).model(cfg.variants[0], 1).run_dir,)
    # seed 0 (the IG source) before seed 1 among the aligned runs
    assert order.index("train:lime-seed0") < order.index("train:lime-seed1")


def test_priors_mapping_sets_prior_stage_options_and_refuses_pipeline_owned_ones(pipeline_config):
    from eg_train.experiment.prior_jobs import prior_config

    pipeline_config.priors = {"demonstrations_per_class": 2, "contrast": "top_m", "focus": {"min_words": 99}}
    pcfg = prior_config(pipeline_config, ["cap"])
    assert (pcfg.demonstrations_per_class, pcfg.contrast, pcfg.focus.min_words) == (2, "top_m", 99)
    assert pcfg.llm == "smollm2-135m-instruct" and pcfg.n_samples == 8  # the pipeline's own fields
    for bad in ({"llm": "x"}, {"no_such_option": 1}):
        pipeline_config.priors = bad
        with pytest.raises(ValueError, match="cannot be set here.*allowed: .*contrast"):
            prior_config(pipeline_config, ["cap"])
    assert PipelineConfig().llm == "gemma3-270m"  # the prior stage's default LLM


def test_variant_seeds_must_be_pipeline_seeds(pipeline_config):
    pipeline_config.variants.append(TrainedVariant("five", ["cap"], seeds=[0, 4], recipe="fixed"))
    with pytest.raises(ValueError, match=r"seeds \[4\] are not among"):
        run_pipeline(pipeline_config)


def test_ig_prior_seed_must_be_trained(pipeline_config):
    pipeline_config.ig_prior_seed = 7
    with pytest.raises(ValueError, match="ig_prior_seed 7"):
        run_pipeline(pipeline_config)


@pytest.mark.parametrize("name", ["pipeline_demo", "pipeline_banking77_5shot", "pipeline_banking77_5shot_beta_warmup", "pipeline_clinc150_5shot"])
def test_shipped_pipeline_configs_parse(name):
    from pathlib import Path

    from eg_train.experiment.pipeline import check_config, parse_config

    path = Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml"
    cfg = parse_config(["--config", str(path)])
    check_config(cfg)  # what a run checks before its first job
    assert cfg.variants[0].priors == [] and Path(cfg.train_config).is_file()
    assert all(m in ("lime", "cap", "ig") for v in cfg.variants for m in v.priors)
    # A config's data section merges into the default DataSpec: no hidden class subset may leak in.
    assert cfg.data.classes == (8 if name == "pipeline_demo" else None)


def _train_while_locked(run_dir, key, ready):
    """Hold the run's lock, then 'finish training' it (its model and key) and release."""
    import time

    from eg_train.experiment.layout import write_key
    from eg_train.experiment.pipeline import _run_lock

    with _run_lock(Path(run_dir)):
        ready.set()
        time.sleep(3)
        (Path(run_dir) / "model").mkdir(parents=True)
        (Path(run_dir) / "model" / "config.json").write_text("{}")
        write_key(Path(run_dir), key)


def test_a_run_being_trained_by_another_process_is_waited_for_and_reused(pipeline_config, tmp_path):
    import multiprocessing as mp

    from eg_train.experiment.pipeline import _train

    ce = pipeline_config.variants[0]
    model = plan(pipeline_config).model(ce, 0)
    run_dir = Path(model.run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_text("in progress")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_train_while_locked, args=(str(run_dir), model.train_key, ready))
    holder.start()
    try:
        assert ready.wait(60)
        assert _train(pipeline_config, ce, 0, None, model) == (run_dir, False)  # waited, then reused
        assert (run_dir / "metrics.csv").read_text() == "in progress"  # never wiped
    finally:
        holder.join(60)


def test_a_finished_runs_checkpoints_go_unless_kept(pipeline_config):
    """The pipeline reads a finished run through model/: its best/last.ckpt (twice the model each) go,
    unless keep_checkpoints; the option changes no key, so no run retrains for it."""
    from dataclasses import replace

    from eg_train.experiment.pipeline import _train

    ce = pipeline_config.variants[0]
    kept = replace(pipeline_config, keep_checkpoints=True)
    assert plan(kept).model(ce, 0).train_key == plan(pipeline_config).model(ce, 0).train_key
    dropped_dir, trained = _train(pipeline_config, ce, 0, None, plan(pipeline_config).model(ce, 0))
    assert trained and (dropped_dir / "model" / "config.json").is_file()
    assert not (dropped_dir / "checkpoints").exists()
    kept_dir, trained = _train(kept, ce, 1, None, plan(kept).model(ce, 1))
    assert trained and {p.name for p in (kept_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}


def test_every_key_follows_what_it_depends_on(pipeline_config, tmp_path):
    """Training keys follow the training settings and the training data's content, not the test
    file; evaluation and attack keys follow the test file's content too."""
    import csv
    from dataclasses import replace

    p = plan(pipeline_config)
    ce, hybrid = pipeline_config.variants
    assert plan(replace(pipeline_config, workers=1)).models == p.models  # how it runs is not what it is
    changed = plan(replace(pipeline_config, train={**pipeline_config.train, "model": {"lr": 1e-3}}))
    assert changed.model(ce, 0).run != p.model(ce, 0).run and changed.model(ce, 0).eval_dir != p.model(ce, 0).eval_dir
    # Another test file: same trained models, other evaluations and attacks.
    rows = list(csv.reader(open(pipeline_config.data.files["test"])))
    other = tmp_path / "other_test.csv"
    with open(other, "w", newline="") as fh:
        csv.writer(fh).writerows(rows[:1] + rows[1:][::-1])  # the same rows, another order
    spec = replace(pipeline_config.data, files={**pipeline_config.data.files, "test": str(other)})
    q = plan(replace(pipeline_config, data=spec))
    assert q.model(ce, 0).run_dir == p.model(ce, 0).run_dir and q.model(hybrid, 1).run_dir == p.model(hybrid, 1).run_dir
    assert q.model(ce, 0).eval_dir != p.model(ce, 0).eval_dir and q.attacks_dir != p.attacks_dir
    # The training file's content, not its path: rewritten in place, the models' keys change.
    train = Path(pipeline_config.data.files["train"])
    train.write_text(train.read_text().replace("help!", "help me!"))
    assert plan(pipeline_config).model(ce, 0).run != p.model(ce, 0).run
    # The aligned runs' keys follow the prior settings (the CE run's does not), and so do the heatmaps'.
    from eg_train.experiment.pipeline import heatmaps_file

    now = plan(pipeline_config)
    r = plan(replace(pipeline_config, n_samples=16))
    assert r.model(ce, 0).run == now.model(ce, 0).run
    assert r.model(hybrid, 0).run != now.model(hybrid, 0).run
    assert heatmaps_file(r, ["lime", "cap", "ig"]) != heatmaps_file(now, ["lime", "cap", "ig"])
    # An evaluation setting: the same models, other evaluations (and the same attacks).
    e = plan(replace(pipeline_config, faithfulness_examples=7))
    assert e.model(ce, 0).run == now.model(ce, 0).run and e.model(ce, 0).eval_dir != now.model(ce, 0).eval_dir
    assert e.attacks_dir == now.attacks_dir
    assert plan(replace(pipeline_config, attack_seed=1)).attacks_dir != now.attacks_dir


@pytest.mark.parametrize("variants, extra, message", [
    ([{"name": "ce", "priors": ["limee"]}], {}, r"variant ce: unknown prior methods \['limee'\]; choose from"),
    ([{"name": "ce"}, {"name": "h", "priors": ["lime"], "fusion": "meen"}], {}, "unknown fusion 'meen'"),
    ([{"name": "ce"}, {"name": "ce", "priors": ["lime"]}], {}, r"duplicate variant names \['ce'\]"),
    ([{"name": "ce", "fusion": "max"}], {}, "a CE baseline \\(no priors\\) takes no fusion"),
    ([{"name": "ce"}, {"name": "base2"}], {}, "one CE baseline only"),
    ([{"name": "ce", "priors": ["lime"]}], {}, "'ce' has priors"),
    ([{"name": "ce"}, {"name": "h", "priors": ["cap"], "seeds": [5]}], {}, r"seeds \[5\] are not among"),
    ([{"name": "ce"}, {"name": "h", "priors": ["cap"]}], {"--ig_prior_seed": "3"}, "ig_prior_seed 3 is not one of"),
    ([{"name": "ce"}], {"--model_attacks": "[pwwz]"}, r"unknown recipes \['pwwz'\]"),
])
def test_a_bad_config_is_refused_in_one_line_before_any_job(tmp_path, capsys, variants, extra, message):
    import yaml

    from eg_train.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "out"), "variants": variants, "seeds": [0]}))
    argv = ["pipeline", "--config", str(cfg)] + [x for kv in extra.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("eg-train: error: "), err
    import re

    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_second_config_never_overwrites_the_first_ones_outputs(pipeline_config):
    from dataclasses import replace

    from eg_train.experiment.pipeline import claim_outputs

    pipeline_config.results = None
    assert claim_outputs(pipeline_config) == ""
    assert claim_outputs(replace(pipeline_config, workers=1)) == ""  # the same config resumes
    assert claim_outputs(replace(pipeline_config, keep_checkpoints=True)) == ""  # keeping checkpoints changes no output
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


def test_a_prior_cache_of_another_prior_setting_is_refused_up_front(pipeline_config):
    from dataclasses import asdict, replace

    from eg_train.experiment.pipeline import check_prior_cache
    from eg_train.experiment.prior_jobs import prior_config
    from eg_train.foundation.errors import ConfigError

    configs = Path(pipeline_config.out_dir) / "prior_cache" / "configs"
    configs.mkdir(parents=True)
    # As `eg-priors compute` records it (priors.api.compute), for this config: accepted.
    mine = asdict(prior_config(pipeline_config, ["cap"]))
    (configs / "cap-aaaa.json").write_text(json.dumps({"priors_config": mine}, default=str))
    check_prior_cache(plan(pipeline_config))
    other = asdict(prior_config(replace(pipeline_config, n_samples=99), ["cap"]))
    (configs / "cap-aaaa.json").write_text(json.dumps({"priors_config": other}, default=str))
    with pytest.raises(ConfigError, match="holds cap priors of another setting \\(differs in: n_samples\\)"):
        check_prior_cache(plan(pipeline_config))
    check_prior_cache(plan(replace(pipeline_config, n_samples=99)))
