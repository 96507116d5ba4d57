"""Programmatic training: typed configuration in, a described run directory out.

    from eg_train.training.api import TrainConfig, TrainResult, fit

    fit(cfg: TrainConfig, *, test: bool = False) -> TrainResult

    cfg = TrainConfig.from_yaml("configs/demo.yaml", run_dir="runs/x", seed=1)   # or TrainConfig(...)
    cfg.model.model_name = "all-minilm-l6-v2"                  # ModelOptions (EGModule's hyper-parameters)
    cfg.data.sample = SampleSpec(data=DataSpec(preset="banking77", classes=8), k_shot=5, seed=0)
    cfg.data.batch_size = 8                                     # DataOptions: sample + loaders + val_per_class
    cfg.prior = PriorSpec(cache_dir="outputs/demo/prior_cache", methods=["lime", "cap", "ig"])  # None: CE
    cfg.trainer.max_epochs = 8                                  # TrainerOptions (+ .extra for any Trainer arg)
    cfg = cfg.with_overrides(["--trainer.max_epochs=8"])        # CLI-spelled overrides, if you have strings
    result = fit(cfg)    # TrainResult(run_dir, model_dir, best_checkpoint, last_checkpoint, metrics, ...)

``fit`` refuses a ``run_dir`` that already holds a run unless ``cfg.ckpt_path`` resumes it (one of
its checkpoints) or ``cfg.overwrite`` is true (:mod:`eg_train.training.rundir`). The run directory holds
``config.yaml`` (a LightningCLI config: ``eg-train test --config <run_dir>/config.yaml``),
``metrics.csv``, ``checkpoints/best.ckpt`` + ``checkpoints/last.ckpt`` and ``model/``.
``eg-train fit`` (:mod:`eg_train.training.cli`) builds the same module, data module, logger and
callbacks from the same options.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch

from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.foundation.data.source import DataSpec
from eg_train.training.config import TrainConfig, TrainerOptions
from eg_train.training.datamodule import DataOptions, EGDataModule, PriorSpec
from eg_train.training.module import EGModule, LoraSpec, ModelOptions
from eg_train.training.rundir import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MODEL_DIR,
    RunLogger,
    prepare_run_dir,
    run_callbacks,
)

__all__ = [
    "DataOptions", "DataSpec", "LoraSpec", "ModelOptions", "PriorSpec", "SampleSpec", "TrainConfig", "TrainResult",
    "TrainerOptions", "build_trainer", "fit",
]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished ``fit`` left behind."""

    run_dir: Path
    model_dir: Path  # the fine-tuned classifier + tokenizer (save_pretrained)
    best_checkpoint: Path | None  # highest val_acc (the last epoch without validation)
    last_checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)  # the last logged values (val_acc, train_loss_epoch, ...)
    test_metrics: dict[str, float] | None = None
    seconds: float = 0.0
    prior_coverage: tuple[int, int] | None = None  # (training examples with a prior, training examples)


class _WriteRunConfig(L.Callback):
    """Write ``config.yaml`` once the data have loaded (a data error leaves no half-made run behind)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero:
            from eg_train.foundation.io import atomic_write_text

            path = Path(trainer.default_root_dir) / CONFIG_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, self.text)


def build_trainer(options: TrainerOptions, run_dir: str | os.PathLike, extra_callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    """A ``lightning.Trainer`` writing the eg-train run directory layout into ``run_dir``."""
    from eg_train.training.progress import progress_callback

    callbacks = [*run_callbacks(), *extra_callbacks]
    if options.enable_progress_bar:
        callbacks.append(progress_callback(every_n_steps=max(1, options.log_every_n_steps)))
    kwargs = options.kwargs()
    if str(kwargs.get("precision", "")).lower() == "auto":  # eg-train's own value: bf16-mixed where native
        from eg_train.foundation.device import lightning_precision

        cuda = options.accelerator in ("gpu", "cuda") or (options.accelerator == "auto" and torch.cuda.is_available())
        kwargs["precision"] = lightning_precision("auto", "cuda" if cuda else "cpu")
    return L.Trainer(default_root_dir=str(run_dir), logger=RunLogger(run_dir), callbacks=callbacks, **kwargs)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def fit(cfg: TrainConfig | str | os.PathLike | dict[str, Any], overrides: Sequence[str] = (), *,
        test: bool = False) -> TrainResult:
    """Train one model as ``cfg`` says; with ``test=True`` also evaluate the test split (final weights).

    ``cfg`` may also be a LightningCLI config, as a YAML path or a mapping (with optional
    command-line style ``overrides``); it is read into a :class:`TrainConfig` first.
    """
    if isinstance(cfg, (str, os.PathLike)):
        cfg = TrainConfig.from_yaml(cfg, overrides)
    elif isinstance(cfg, dict):
        cfg = TrainConfig.from_mapping(cfg).with_overrides(overrides)
    elif overrides:
        cfg = cfg.with_overrides(overrides)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    run_dir = prepare_run_dir(cfg.run_dir, cfg.ckpt_path, overwrite=cfg.overwrite)
    # Same order as LightningCLI: seed, data module (it gives the labels), then the module.
    L.seed_everything(cfg.seed, workers=True)
    dm = EGDataModule.from_options(cfg.data, cfg.prior, model_name=cfg.model.model_name)
    module = EGModule.from_options(cfg.model, dm.label_names)
    trainer = build_trainer(cfg.trainer, run_dir, [_WriteRunConfig(cfg.to_yaml())])
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
    metrics = _scalars(trainer.callback_metrics)
    test_metrics = None
    if test:
        out = trainer.test(module, datamodule=dm, verbose=False)
        test_metrics = _scalars(out[0]) if out else {}
    ckpts = run_dir / CHECKPOINT_DIR
    best, last = ckpts / f"{BEST_CHECKPOINT}.ckpt", ckpts / "last.ckpt"
    return TrainResult(
        run_dir=run_dir,
        model_dir=run_dir / MODEL_DIR,
        best_checkpoint=best if best.is_file() else None,
        last_checkpoint=last if last.is_file() else None,
        metrics=metrics,
        test_metrics=test_metrics,
        seconds=time.perf_counter() - t0,
        prior_coverage=dm.prior_coverage,
    )
