"""Several named configs on one out_dir (issue 22 §1): every reuse is keyed by content, and two
configs started at the same time both finish, each with its own test set's numbers."""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
from pathlib import Path

import pytest

from eg_train.experiment.pipeline import PipelineConfig, TrainedVariant, plan, run_pipeline
from eg_train.foundation.data import DataSpec, load_split
from eg_train.foundation.fingerprint import split_fingerprint

REPO = Path(__file__).resolve().parents[3]


def _write(path: Path, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        w.writerows(rows)
    return str(path)


@pytest.fixture()
def two_configs(tmp_path, banking_train):
    """8 Banking77 intents from files: one training file, a 'clean' and a 'counter' test file."""
    names = banking_train.label_names[:8]
    by_class: dict[int, list[str]] = {}
    for text, y in zip(banking_train.dataset["text"], banking_train.dataset["label"]):
        if y < 8:
            by_class.setdefault(int(y), []).append(text)
    rows = lambda lo, hi: [(t, names[c]) for c in range(8) for t in by_class[c][lo:hi]]  # noqa: E731
    train = _write(tmp_path / "train.csv", rows(0, 4))
    tests = {"clean": _write(tmp_path / "test_clean.csv", rows(4, 6)),
             "counter": _write(tmp_path / "test_counter.csv", rows(6, 9))}

    def config(name: str, test: str | None = None) -> PipelineConfig:
        return PipelineConfig(
            out_dir=str(tmp_path / "out"), name=name,
            data=DataSpec(files={"train": train, "test": tests[test or name]}, label_column="intent", labels=list(names)),
            k_shot=2, train_config=str(REPO / "configs" / "demo.yaml"),
            train={"trainer": {"max_epochs": 1, "enable_progress_bar": False},
                   "data": {"batch_size": 4, "val_per_class": 1}, "model": {"ig": {"calibration_resolution": 8}}},
            seeds=[0], variants=[TrainedVariant("ce")], test_subset=None, faithfulness_examples=2, eval_ig_steps=2,
            workers=1, results=str(tmp_path / "results" / name),
        )

    return config, tests


def _run(cfg: PipelineConfig, failures) -> None:
    try:
        run_pipeline(cfg)
    except BaseException as err:  # reported to the parent, which asserts there was none
        failures.put(f"{cfg.name}: {type(err).__name__}: {err}")
        raise


def _accuracy(model_dir: str, test_file: str, names: list[str]) -> float:
    """Accuracy of the model on the file, computed directly (not by the evaluation stage)."""
    import torch

    from eg_train.foundation.models.resolve import load_sequence_classifier

    model, tok = load_sequence_classifier(model_dir)
    model.eval()
    with open(test_file, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    enc = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        pred = model(**enc).logits.argmax(-1).tolist()
    return sum(p == names.index(r["intent"]) for p, r in zip(pred, rows)) / len(rows)


@pytest.mark.slow
def test_two_named_configs_at_once_on_one_out_dir_each_report_their_own_test_set(two_configs):
    config, tests = two_configs
    ctx = mp.get_context("spawn")
    failures = ctx.Queue()
    procs = [ctx.Process(target=_run, args=(config(name), failures)) for name in ("counter", "clean")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(900)
    assert all(p.exitcode == 0 for p in procs), [failures.get() for _ in range(failures.qsize())]

    plans = {name: plan(config(name)) for name in ("counter", "clean")}
    ce = TrainedVariant("ce")
    # One training shared (same train file, same settings); attacks and evaluations of their own.
    assert plans["clean"].model(ce, 0).run_dir == plans["counter"].model(ce, 0).run_dir
    assert plans["clean"].model(ce, 0).eval_dir != plans["counter"].model(ce, 0).eval_dir
    assert plans["clean"].attacks_dir != plans["counter"].attacks_dir
    out = Path(config("clean").out_dir)
    assert len(list((out / "runs").glob("ce-seed0-*/model"))) == 1
    for name, test_file in tests.items():
        cfg = config(name)
        res = json.loads(Path(cfg.results).with_suffix(".json").read_text())
        ds = res["dataset"]
        test = load_split(cfg.data, "test")
        assert ds["fingerprint"] and ds["n"] == len(test), (name, ds)
        assert test_file in ds["source"], (name, ds["source"])
        assert f"Test set: {ds['source']}" in Path(cfg.results).with_suffix(".md").read_text()
        acc = res["methods"]["ce"]["metrics"]["accuracy"]["mean"]
        direct = _accuracy(str(Path(plans[name].model(ce, 0).run_dir) / "model"), test_file, cfg.data.labels)
        assert acc == pytest.approx(direct), name
        summary = json.loads((out / f"summary-{name}.json").read_text())
        assert summary["keys"]["data"]["test"] == split_fingerprint(test)
    # Rerun of one config: everything reused (no model retrained, no evaluation recomputed).
    model = Path(plans["clean"].model(ce, 0).run_dir) / "model" / "config.json"
    metrics = Path(plans["clean"].model(ce, 0).eval_dir) / "metrics.json"
    stamps = model.stat().st_mtime_ns, metrics.stat().st_mtime_ns
    run_pipeline(config("clean"))
    assert (model.stat().st_mtime_ns, metrics.stat().st_mtime_ns) == stamps


def test_a_changed_training_config_trains_a_new_model_and_a_changed_eval_setting_reevaluates(two_configs):
    config, _ = two_configs
    cfg = config("clean")
    ce = TrainedVariant("ce")
    first = run_pipeline(cfg)
    p = plan(cfg)
    attacks_key = Path(p.attacks_dir) / "key.json"
    stamp = attacks_key.stat().st_mtime_ns
    cfg2 = config("clean_lr", test="clean")
    cfg2.train = {**cfg.train, "model": {**cfg.train["model"], "lr": 1e-4}}
    cfg2.faithfulness_examples = 3
    second = run_pipeline(cfg2)
    q = plan(cfg2)
    assert q.model(ce, 0).run_dir != p.model(ce, 0).run_dir  # trained anew, the first model kept
    assert (Path(p.model(ce, 0).run_dir) / "model" / "config.json").is_file()
    assert (Path(q.model(ce, 0).run_dir) / "model" / "config.json").is_file()
    assert first["runs"] != second["runs"] and q.attacks_dir == p.attacks_dir  # same test set: attacks shared
    assert attacks_key.stat().st_mtime_ns == stamp  # ... and not rebuilt
    key = json.loads((Path(q.model(ce, 0).run_dir) / "key.json").read_text())
    assert key["train"]["model"]["lr"] == 1e-4
