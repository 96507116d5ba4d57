"""`eg-train fit|test` and `eg_train.training.api.fit`: run directory contract, priors, resume."""

from __future__ import annotations

import pytest
import torch
import yaml

from eg_train.foundation.data import DataSpec, load_split
from eg_train.training.api import fit

LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]  # the tiny_spec fixture's intents


@pytest.fixture()
def config(tmp_path, tiny_spec):
    spec = tiny_spec
    # Priors for every training example, written through the prior cache's own API.
    from priors.cache import PriorCache

    from eg_train.foundation.words import split_words, text_fingerprint

    split = load_split(DataSpec(**spec), "train")
    records = [
        {"id": i, "fingerprint": text_fingerprint(t), "label": int(y), "words": list(split_words(t).words),
         "scores": [float(k % 3) for k in range(len(split_words(t)))], "method": "ig", "model_id": "test",
         "config_hash": "h", "queries": 0, "proxy_queries": 0, "focus_words": -1, "seconds": 0.0}
        for i, t, y in zip(split.dataset["id"], split.dataset["text"], split.dataset["label"])
    ]
    PriorCache(tmp_path / "cache").append(records, "ig", "h")
    return {
        "seed_everything": 0,
        "trainer": {"default_root_dir": str(tmp_path / "run"), "max_epochs": 1, "accelerator": "cpu", "devices": 1,
                    "enable_progress_bar": False, "log_every_n_steps": 1},
        "model": {"model_name": "all-minilm-l6-v2", "beta": 1.0, "lr": 1e-4,
                  "ig": {"steps": 2, "method": "warped_gausslegendre", "calibration_resolution": 8}},
        "data": {**spec, "k_shot": 2, "val_per_class": 1, "batch_size": 3, "eval_batch_size": 8,
                 "prior": {"cache_dir": str(tmp_path / "cache"), "methods": ["ig"]}},
    }


def test_fit_writes_the_run_directory_and_resumes(config, tmp_path):
    from eg_train.foundation.models import load_sequence_classifier

    run = fit(config).run_dir
    assert run == tmp_path / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["ig"]["steps"] == 2 and saved["data"]["k_shot"] == 2
    assert (run / "checkpoints" / "last.ckpt").is_file()
    metrics = (run / "metrics.csv").read_text()
    assert "train_align" in metrics and "val_acc" in metrics
    model, tok = load_sequence_classifier(str(run / "model"), LABELS)
    assert [model.config.id2label[i] for i in range(3)] == LABELS

    # Resume from the checkpoint for one more epoch: the step counter continues.
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    fit(config, [f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "--trainer.max_epochs=2"])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4


def test_prior_none_is_the_ce_baseline(config):
    config["data"]["prior"] = "none"
    run = fit(config, ["--trainer.max_epochs=1", "--trainer.limit_val_batches=0"]).run_dir
    lines = (run / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    aligns = [float(r.split(",")[header.index("train_align")]) for r in lines[1:] if r.split(",")[header.index("train_align")]]
    assert aligns and all(a == 0.0 for a in aligns)


def test_main_usage_and_test_subcommand(config, tmp_path, capsys):
    from eg_train.cli import main

    assert main(["nonsense"]) == 2
    assert "usage: eg-train" in capsys.readouterr().err
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["test", "--config", str(path)]) == 0
    assert "test_acc" in (tmp_path / "run" / "metrics.csv").read_text()


@pytest.mark.parametrize("name", ["demo", "banking77_5shot", "banking77_full", "clinc150_5shot", "gpu_roberta_llama3"])
def test_shipped_configs_parse(name):
    """Every training config names only real options with valid types (parse only, no model load)."""
    from pathlib import Path

    import lightning.pytorch.cli as lc

    from eg_train.training.datamodule import EGDataModule
    from eg_train.training.module import EGModule

    parser = lc.LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(lc.Trainer, "trainer")
    parser.add_lightning_class_args(EGModule, "model")
    parser.add_lightning_class_args(EGDataModule, "data")
    parser.add_argument("--seed_everything", type=int, default=0)
    path = Path(__file__).resolve().parents[3] / "configs" / f"{name}.yaml"
    cfg = parser.parse_path(str(path))
    assert cfg.model.beta == 1.0 and cfg.trainer.default_root_dir == f"runs/{name}"
