"""The typed fit API, the CLI over the same objects, and the run directory contract (issue 15)."""

from __future__ import annotations

import csv
import inspect
import logging
from dataclasses import fields
from pathlib import Path

import pytest
import torch
import yaml

from eg_train.foundation.data import DataSpec
from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.training.api import DataOptions, ModelOptions, PriorSpec, TrainConfig, TrainResult, fit
from eg_train.training.datamodule import EGDataModule
from eg_train.training.module import EGModule

REPO = Path(__file__).resolve().parents[3]
CONFIGS = ["demo", "banking77_5shot", "banking77_full", "clinc150_5shot", "gpu_roberta_llama3"]
LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]


def _write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "category")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


ROWS = [
    ("My card got blocked, help!", "card_blocked"), ("Why is my card blocked?", "card_blocked"),
    ("The card was frozen yesterday.", "card_blocked"), ("How long do transfers take?", "transfer_timing"),
    ("My transfer hasn't arrived yet.", "transfer_timing"), ("When will the wire transfer land?", "transfer_timing"),
    ("I forgot my PIN.", "forgot_pin"), ("Can't remember my PIN number", "forgot_pin"), ("Reset my PIN, I lost it", "forgot_pin"),
]


def _config(tmp_path: Path, rows=ROWS, **data) -> TrainConfig:
    """A one-epoch CE run on a tiny CSV, built in Python (the way the pipeline builds its runs)."""
    path = _write_csv(tmp_path / "train.csv", rows)
    cfg = TrainConfig.from_yaml(REPO / "configs" / "demo.yaml", run_dir=str(tmp_path / "run"))
    cfg.data.sample = SampleSpec(data=DataSpec(files={"train": str(path), "test": str(path)}, label_column="category",
                                               labels=LABELS), k_shot=2, seed=0)
    cfg.data.batch_size, cfg.data.eval_batch_size, cfg.data.max_length = 2, 8, 32
    for k, v in data.items():
        setattr(cfg.data, k, v)
    cfg.prior = None
    cfg.model.beta = 1.0  # no prior: the run must still report beta 0 (no alignment)
    cfg.trainer.max_epochs, cfg.trainer.log_every_n_steps, cfg.trainer.enable_progress_bar = 1, 1, False
    return cfg


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# -- the typed configuration ---------------------------------------------------------------------
@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_round_trip_through_the_typed_config(name):
    """Every shipped config reads into a TrainConfig, and its mapping parses with the CLI's own parser."""
    import lightning.pytorch.cli as lc

    cfg = TrainConfig.from_yaml(REPO / "configs" / f"{name}.yaml")
    assert cfg.run_dir == f"runs/{name}" and cfg.model.beta == 1.0
    assert TrainConfig.from_mapping(cfg.to_mapping()) == cfg
    parser = lc.LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(lc.Trainer, "trainer")
    parser.add_lightning_class_args(EGModule, "model")
    parser.add_lightning_class_args(EGDataModule, "data")
    parser.add_argument("--seed_everything", type=int, default=0)
    parser.add_argument("--ckpt_path", type=str | None, default=None)
    parser.add_argument("--overwrite", type=bool, default=False)
    parsed = parser.parse_object(cfg.to_mapping())
    assert parsed.data.k_shot == cfg.data.sample.k_shot and parsed.data.preset == cfg.data.sample.data.preset


def test_options_mirror_the_module_and_data_module_signatures():
    """ModelOptions is EGModule's hyper-parameters; the data module takes every DataSpec field with its default."""
    module_params = set(inspect.signature(EGModule.__init__).parameters) - {"self", "label_names"}
    assert module_params == {f.name for f in fields(ModelOptions)}
    dm_params = inspect.signature(EGDataModule.__init__).parameters
    for f in fields(DataSpec):
        assert f.name in dm_params, f.name
        default = f.default_factory() if callable(f.default_factory) else f.default
        assert dm_params[f.name].default in (default, None), f.name
    for f in fields(DataOptions):
        assert f.name == "sample" or f.name in dm_params, f.name


def test_overrides_use_the_cli_spelling():
    cfg = TrainConfig.from_yaml(REPO / "configs" / "demo.yaml", ["--trainer.max_epochs=8", "--data.batch_size", "8",
                                                                "--data.prior=none", "--data.files={train: a.csv}",
                                                                "--data.label_column=category", "--trainer.val_check_interval=0.5"],
                                seed=3)
    assert cfg.trainer.max_epochs == 8 and cfg.data.batch_size == 8 and cfg.prior is None and cfg.seed == 3
    assert cfg.data.sample.data.files == {"train": "a.csv"} and cfg.data.sample.data.label_column == "category"
    assert cfg.trainer.extra == {"val_check_interval": 0.5}


@pytest.mark.parametrize(
    "override, message",
    [
        ("--data.prior={cache_dir: c, methods: [lime], on_missing: skpi}", "on_missing must be one of"),
        ("--model.betta=0", "unknown option"),
        ("--trainer.max_epoch=3", "unknown option"),
        ("--data.data={preset: banking77}", "data.data is no longer an option"),
    ],
)
def test_bad_options_are_config_errors(override, message):
    from eg_train.foundation.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_yaml(REPO / "configs" / "demo.yaml", [override])


def test_on_missing_is_validated():
    """Fault 10: a value other than error / skip is an error, not a silent skip."""
    from eg_train.foundation.errors import ConfigError

    for bad in ("skpi", "warn", "Skip"):
        with pytest.raises(ConfigError, match="on_missing must be one of"):
            PriorSpec(cache_dir="c", on_missing=bad)
        with pytest.raises(ConfigError, match="on_missing"):
            EGDataModule(prior={"cache_dir": "c", "on_missing": bad})
    assert PriorSpec(cache_dir="c", on_missing="skip").on_missing == "skip"


# -- fit: the run directory ----------------------------------------------------------------------
def test_typed_fit_writes_a_run_the_cli_can_test(tmp_path, capsys):
    """fit(TrainConfig) -> TrainResult; config.yaml re-runs under `eg-train test`; a second fit is refused."""
    from eg_train.cli import main

    cfg = _config(tmp_path)
    result = fit(cfg)
    assert isinstance(result, TrainResult) and result.run_dir == tmp_path / "run"
    assert result.best_checkpoint == result.run_dir / "checkpoints" / "best.ckpt" and result.best_checkpoint.is_file()
    assert result.last_checkpoint.is_file() and (result.model_dir / "config.json").is_file()
    assert 0.0 <= result.metrics["val_acc"] <= 1.0
    saved = TrainConfig.from_yaml(result.run_dir / "config.yaml")
    assert saved == cfg
    n_fit_rows = len(_metrics(result.run_dir))

    # The saved config is a LightningCLI config; test evaluates the run's best checkpoint and appends.
    assert main(["test", "--config", str(result.run_dir / "config.yaml")]) == 0
    rows = _metrics(result.run_dir)
    assert len(rows) == n_fit_rows + 1 and rows[-1]["test_acc"] != ""
    assert any(r["train_loss"] for r in rows), "testing must not drop the fit's metrics"

    # Fault 3: fitting again into the same directory is refused (nothing replaced, no last-v1.ckpt).
    before = {p.name: p.stat().st_mtime_ns for p in (result.run_dir / "checkpoints").iterdir()}
    capsys.readouterr()
    assert main(["fit", "--config", str(result.run_dir / "config.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a training run" in err[0] and "--ckpt_path" in err[0]
    assert "last.ckpt" in err[0] and "--overwrite" in err[0]
    assert {p.name: p.stat().st_mtime_ns for p in (result.run_dir / "checkpoints").iterdir()} == before
    from eg_train.training.rundir import RunDirExistsError

    with pytest.raises(RunDirExistsError):
        fit(cfg)
    # Starting from this run's checkpoint is a new run: it needs a directory of its own.
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.yaml").write_text("seed_everything: 0\n")
    with pytest.raises(RunDirExistsError):
        fit(TrainConfig(run_dir=str(other), ckpt_path=str(result.last_checkpoint)))


def test_overwrite_replaces_and_ckpt_path_resumes(tmp_path):
    cfg = _config(tmp_path)
    first = fit(cfg)
    step = torch.load(first.last_checkpoint, weights_only=True)["global_step"]
    cfg.trainer.max_epochs = 2
    cfg.ckpt_path = str(first.last_checkpoint)
    resumed = fit(cfg)
    assert torch.load(resumed.last_checkpoint, weights_only=True)["global_step"] == 2 * step
    assert sorted(p.name for p in (resumed.run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    epochs = {r["epoch"] for r in _metrics(resumed.run_dir) if r["train_loss"]}
    assert epochs == {"0", "1"}, "resuming keeps the first epoch's metrics"

    cfg.ckpt_path, cfg.overwrite, cfg.trainer.max_epochs = None, True, 1
    again = fit(cfg)
    assert torch.load(again.last_checkpoint, weights_only=True)["global_step"] == step
    assert {r["epoch"] for r in _metrics(again.run_dir) if r["train_loss"]} == {"0"}
    assert yaml.safe_load((again.run_dir / "config.yaml").read_text())["overwrite"] is False


def test_ce_run_logs_beta_zero_and_epoch_means(tmp_path):
    """Fault 11: without priors train_beta is 0 (model.beta is 1 here); the epoch accuracy is the mean
    over the epoch's examples, not the last (one-example) batch's."""
    cfg = _config(tmp_path, val_per_class=0)
    cfg.data.sample.k_shot = 3  # 9 examples, batch 2: the last batch holds one example
    result = fit(cfg, test=True)
    assert 0.0 <= result.test_metrics["test_acc"] <= 1.0
    rows = _metrics(result.run_dir)
    steps = [r for r in rows if r["train_acc"]]
    assert len(steps) == 5 and all(float(r["train_beta"]) == 0.0 for r in steps)
    sizes = [2, 2, 2, 2, 1]
    mean = sum(float(r["train_acc"]) * b for r, b in zip(steps, sizes)) / sum(sizes)
    epoch = [r for r in rows if r["train_acc_epoch"]]
    assert len(epoch) == 1 and float(epoch[0]["train_acc_epoch"]) == pytest.approx(mean, abs=1e-6)
    assert result.metrics["train_acc_epoch"] == pytest.approx(mean, abs=1e-6)


def test_exactly_k_per_class_trains_without_validation(tmp_path, caplog):
    """Fault 14: k texts per class and the default val_per_class: a warning, no validation, and
    best.ckpt is the last epoch (was: a raw IndexError from the tokenizer)."""
    rows = [r for i, r in enumerate(ROWS) if i % 3 != 2]  # 2 per class
    cfg = _config(tmp_path, rows=rows)
    assert cfg.data.val_per_class == 1 and cfg.data.sample.k_shot == 2
    with caplog.at_level(logging.WARNING, logger="eg_train.training.datamodule"):
        result = fit(cfg)
    assert "no example is left for validation" in caplog.text
    assert result.best_checkpoint is not None and "val_acc" not in result.metrics
    best = torch.load(result.best_checkpoint, weights_only=True)
    last = torch.load(result.last_checkpoint, weights_only=True)
    assert best["global_step"] == last["global_step"] == 3  # 6 examples, batch 2, one epoch


# -- the command line ----------------------------------------------------------------------------
def test_readme_data_flags_work_on_eg_train(tmp_path, capsys):
    """Fault 2: `eg-train fit --data.files '{train: f.csv}' --data.label_column category` (README spelling)."""
    from eg_train.cli import main

    path = _write_csv(tmp_path / "f.csv", ROWS)
    code = main(["fit", "--config", str(REPO / "configs" / "demo.yaml"), "--data.files", f"{{train: {path}}}",
                 "--data.label_column", "category", "--data.prior", "none", "--data.k_shot", "2",
                 "--data.batch_size", "4", "--data.classes", "2", "--trainer.max_epochs", "1",
                 "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path / "run")])
    assert code == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["files"] == {"train": str(path)} and saved["data"]["label_column"] == "category"
    assert saved["ckpt_path"] is None and saved["overwrite"] is False
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    # The config LightningCLI saved reads back into the typed API as what was asked for.
    typed = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert typed.data.sample == SampleSpec(DataSpec(preset="banking77", files={"train": str(path)}, label_column="category",
                                                    classes=2), k_shot=2, seed=0)
    assert typed.prior is None and typed.trainer.max_epochs == 1 and typed.trainer.extra == {}
    from eg_train.foundation.models import load_sequence_classifier

    model, _ = load_sequence_classifier(str(tmp_path / "run" / "model"), sorted(LABELS)[:2])  # sorted: no label list given
    assert model.config.num_labels == 2


def test_fit_help_lists_the_readme_flags(capsys):
    from eg_train.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data.preset", "--data.files", "--data.text_column", "--data.label_column", "--data.labels",
                 "--data.labels_file", "--data.classes", "--data.skip_invalid", "--data.prior", "--overwrite"):
        assert flag in out, flag
    assert "--data.data" not in out


@pytest.mark.parametrize("content, message", [("text,category\n", "no data rows"),
                                              (None, "file not found"),
                                              ("text,category\n,card_blocked\n", "empty or whitespace-only text")])
def test_user_errors_are_one_line(tmp_path, capsys, content, message):
    """Fault 6: a bad data file prints one line and exits 2; --verbose adds the traceback."""
    from eg_train.cli import main

    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    args = ["fit", "--config", str(REPO / "configs" / "demo.yaml"), "--data.files", f"{{train: {path}}}",
            "--data.label_column", "category", "--data.prior", "none", "--trainer.default_root_dir", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # (datasets' own "Generating train split" progress lines may come first: not part of the error)
    err = [ln for ln in err.strip().splitlines() if not ln.startswith("Generating ")]
    assert len(err) == 1 and err[0].startswith("eg-train: error: ") and message in err[0] and str(path) in err[0]
    assert main([*args, "--verbose"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and message in err.strip().splitlines()[-1]


def test_line_progress_when_output_is_not_a_terminal(tmp_path, caplog):
    """Fault 11: written to a file, progress is periodic log lines (tqdm only on a terminal)."""
    import io

    from lightning.pytorch.callbacks import TQDMProgressBar

    from eg_train.training.progress import LineProgress, progress_callback

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_callback(io.StringIO()), LineProgress)
    assert isinstance(progress_callback(Tty()), TQDMProgressBar)
    cfg = _config(tmp_path, val_per_class=1)
    cfg.trainer.enable_progress_bar, cfg.trainer.log_every_n_steps, cfg.trainer.max_epochs = True, 2, 2
    with caplog.at_level(logging.INFO, logger="eg_train.training.progress"):
        fit(cfg)  # pytest captures stderr: not a terminal
    lines = [r.getMessage() for r in caplog.records if r.name == "eg_train.training.progress"]
    # 6 examples, batch 2: 3 steps per epoch, a line at step 2 and at the last step, one per epoch.
    assert [ln.split(" s/step")[0].rsplit(" ", 1)[0] for ln in lines if "step" in ln and "done" not in ln] == [
        "epoch 1/2 step 2/3 (67%)", "epoch 1/2 step 3/3 (100%)", "epoch 2/2 step 2/3 (67%)", "epoch 2/2 step 3/3 (100%)"]
    done = [ln for ln in lines if "done in" in ln]
    assert len(done) == 2 and all("val_acc" in ln and "train_acc_epoch" in ln for ln in done)


class _StopAfterFirstEpoch(Exception):
    pass


class _Interrupt:
    """A callback that kills the run as its second epoch starts (last.ckpt holds the first)."""

    def __new__(cls):
        import lightning as L

        class Interrupt(L.Callback):
            def on_train_epoch_start(self, trainer, pl_module):
                if trainer.current_epoch == 1:
                    raise _StopAfterFirstEpoch()

        return Interrupt()


def test_an_interrupted_run_resumes_from_last_ckpt_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """Interrupted after epoch 1 of 3, resumed from its last.ckpt: the same weights as a run that
    was never interrupted (the random state travels in the checkpoint)."""
    from safetensors.torch import load_file

    import eg_train.training.api as api
    from eg_train.foundation.errors import UserError
    from eg_train.training.rundir import remove_checkpoints, resumable_checkpoint

    def configured(name: str) -> TrainConfig:
        cfg = _config(tmp_path)
        cfg.run_dir = str(tmp_path / name)
        cfg.trainer.max_epochs = 3
        return cfg

    full = fit(configured("full"))
    stopped = configured("stopped")
    build = api.build_trainer
    monkeypatch.setattr(api, "build_trainer", lambda options, run_dir, extra=(): build(options, run_dir, [*extra, _Interrupt()]))
    with pytest.raises(_StopAfterFirstEpoch):
        fit(stopped)
    monkeypatch.setattr(api, "build_trainer", build)
    with pytest.raises(UserError, match="how it resumes"):  # an unfinished run keeps its checkpoints
        remove_checkpoints(stopped.run_dir)
    last = resumable_checkpoint(stopped.run_dir)
    assert last is not None and torch.load(last, weights_only=False)["epoch"] == 0
    stopped.ckpt_path = str(last)
    resumed = fit(stopped)
    assert resumable_checkpoint(stopped.run_dir) is None  # exported now
    a, b = (load_file(str(r.model_dir / "model.safetensors")) for r in (full, resumed))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=lambda m, k=k: f"{k}: {m}")
    epochs = [r["epoch"] for r in _metrics(Path(stopped.run_dir)) if r.get("val_acc")]
    assert epochs == ["0", "1", "2"]  # the first epoch's metrics kept, the others appended
    size = sum(p.stat().st_size for p in (Path(stopped.run_dir) / "checkpoints").iterdir())
    assert remove_checkpoints(stopped.run_dir) == size  # finished: removable, the model stays
    assert not (Path(stopped.run_dir) / "checkpoints").exists() and (resumed.model_dir / "config.json").is_file()


@pytest.mark.slow
def test_without_the_random_state_a_resumed_run_differs(tmp_path, monkeypatch):
    """The control of the test above: without RandomState the resumed weights differ."""
    import eg_train.training.api as api
    from eg_train.training.rundir import RandomState

    callbacks = api.run_callbacks
    monkeypatch.setattr(api, "run_callbacks", lambda: [c for c in callbacks() if not isinstance(c, RandomState)])
    with pytest.raises(AssertionError, match=r"^[\w.]+: Tensor-likes are not (equal|close)"):
        test_an_interrupted_run_resumes_from_last_ckpt_to_the_uninterrupted_result(tmp_path, monkeypatch)
