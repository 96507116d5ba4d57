"""The run directory of one training run, and what writes into it.

``<run dir>/`` (``trainer.default_root_dir``) holds:

- ``config.yaml``: the resolved configuration, a valid LightningCLI config
  (``eg-train test --config <run dir>/config.yaml``);
- ``metrics.csv``: every logged value, one row per step / epoch; resuming and testing append to it;
- ``checkpoints/best.ckpt``: the epoch with the highest ``val_acc`` (the last epoch when the run has no
  validation), ``checkpoints/last.ckpt``: the last epoch (resume from it with ``--ckpt_path``);
- ``model/``: the fine-tuned classifier + tokenizer (``save_pretrained``), written after ``fit``.

A directory that already holds a run is never replaced silently: ``fit`` refuses it unless it
resumes (``ckpt_path``) or is told to ``overwrite`` (which removes the previous run's files first).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from eg_train.foundation.errors import UserError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "best"  # checkpoints/best.ckpt
MODEL_DIR = "model"
# What a run writes: the entries that mark a directory as holding a run (and that overwrite removes).
RUN_ENTRIES = (CONFIG_FILE, METRICS_FILE, "hparams.yaml", CHECKPOINT_DIR, MODEL_DIR)


class RunDirExistsError(UserError, FileExistsError):
    """``fit`` into a directory that already holds a run, without resuming or overwriting."""


def existing_run(run_dir: str | os.PathLike) -> list[str]:
    """The entries of a previous run in ``run_dir`` (empty when it holds none)."""
    run_dir = Path(run_dir)
    return [name for name in RUN_ENTRIES if (run_dir / name).exists()]


def resumes(run_dir: str | os.PathLike, ckpt_path: str | os.PathLike | None) -> bool:
    """Whether ``ckpt_path`` continues the run in ``run_dir`` (a checkpoint inside it)."""
    if ckpt_path is None:
        return False
    return Path(run_dir).resolve() in Path(ckpt_path).resolve().parents


def prepare_run_dir(run_dir: str | os.PathLike, ckpt_path: str | os.PathLike | None = None,
                    overwrite: bool = False) -> Path:
    """Check that ``fit`` may write into ``run_dir``; with ``overwrite`` remove the previous run.

    Raises :class:`RunDirExistsError` when the directory holds a run and the call neither resumes it
    (``ckpt_path`` is one of its checkpoints) nor overwrites it. Starting from another run's
    checkpoint needs a directory of its own, like any new run.
    """
    run_dir = Path(run_dir)
    found = existing_run(run_dir)
    if not found or resumes(run_dir, ckpt_path):
        return run_dir
    if not overwrite:
        last = run_dir / CHECKPOINT_DIR / "last.ckpt"
        resume_hint = f"resume it with --ckpt_path {last}, " if last.is_file() else ""
        raise RunDirExistsError(
            f"{run_dir} already holds a training run ({', '.join(found)}); {resume_hint}choose another "
            "--trainer.default_root_dir, or pass --overwrite true to replace it"
        )
    log.warning("overwrite: removing the previous run in %s (%s)", run_dir, ", ".join(found))
    for name in found:
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return run_dir


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is kept and extended.

    Lightning's writer deletes ``metrics.csv`` when the directory is not empty, so resuming a run
    (or ``eg-train test`` into it) would silently drop the earlier epochs' metrics.
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                header = next(csv.reader(fh), [])
            self.metrics_keys = sorted(header)


class RunLogger(CSVLogger):
    """A CSV logger writing ``metrics.csv`` into the run directory itself (appending, never replacing)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        # name="" and version="" make the log dir the run dir itself: runs/<name>/metrics.csv.
        super().__init__(save_dir=str(run_dir), name="", version="")

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class BestCheckpoint(ModelCheckpoint):
    """``checkpoints/best.ckpt`` (highest ``val_acc``) and ``checkpoints/last.ckpt``.

    Without validation (no validation split, ``limit_val_batches: 0``) there is nothing to rank
    epochs by: ``best.ckpt`` is then the last epoch (logged once).
    """

    def __init__(self, monitor: str = "val_acc", mode: str = "max") -> None:
        super().__init__(filename=BEST_CHECKPOINT, monitor=monitor, mode=mode, save_top_k=1, save_last=True,
                         auto_insert_metric_name=False)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit" or self.monitor is None:
            return
        dm = trainer.datamodule
        no_val = (dm is not None and getattr(dm, "has_validation", True) is False) or trainer.limit_val_batches == 0
        if no_val:
            log.info("no validation: checkpoints/%s.ckpt is the last epoch", BEST_CHECKPOINT)
            self.monitor = None


def resumable_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """``checkpoints/last.ckpt`` of a run that stopped before exporting its model (None otherwise):
    ``fit`` with it as ``ckpt_path`` continues that run where its last finished epoch left it."""
    run_dir = Path(run_dir)
    last = run_dir / CHECKPOINT_DIR / "last.ckpt"
    return last if last.is_file() and not (run_dir / MODEL_DIR / "config.json").is_file() else None


def remove_checkpoints(run_dir: str | os.PathLike) -> int:
    """Delete ``checkpoints/`` of a finished run (its ``model/`` exported); returns the bytes freed.

    Each checkpoint holds the weights and the optimiser state (about twice the model's size), and a
    finished run is read through ``model/``: a pipeline of many runs would otherwise keep gigabytes
    nobody reads. Refuses a run without an exported model, whose ``last.ckpt`` is how it resumes.
    """
    run_dir = Path(run_dir)
    if not (run_dir / MODEL_DIR / "config.json").is_file():
        raise UserError(f"{run_dir}: no exported model ({MODEL_DIR}/config.json); its checkpoints are how it "
                        "resumes and are kept")
    ckpts = run_dir / CHECKPOINT_DIR
    if not ckpts.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in ckpts.rglob("*") if f.is_file())
    shutil.rmtree(ckpts)
    return freed


class RandomState(L.Callback):
    """Keep the random generators' states in every checkpoint and restore them on resume.

    Lightning restores weights, optimiser, scheduler and loop counters, not the generators: without
    them a resumed run shuffles its next epochs (and draws its dropout masks) differently from the
    uninterrupted run. With them, resuming from ``last.ckpt`` gives the uninterrupted run's result.
    """

    def state_dict(self) -> dict:
        from lightning.fabric.utilities.seed import _collect_rng_states

        states = _collect_rng_states()
        # numpy's state holds an ndarray, which a weights-only checkpoint load refuses: plain ints.
        kind, keys, pos, has_gauss, gauss = states.pop("numpy")
        states["numpy"] = [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)]
        return {"rng": states}

    def load_state_dict(self, state_dict: dict) -> None:
        import numpy as np
        from lightning.fabric.utilities.seed import _set_rng_states

        states = dict(state_dict.get("rng") or {})
        if not states:
            return
        if "numpy" in states:
            kind, keys, pos, has_gauss, gauss = states["numpy"]
            states["numpy"] = (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss)
        _set_rng_states(states)


def run_callbacks() -> list[L.Callback]:
    """The callbacks every training run has: the two checkpoints, the random state and the exported model."""
    from eg_train.training.module import ExportModel

    return [BestCheckpoint(), RandomState(), ExportModel()]
