"""``eg-train fit|validate|test --config configs/xxx.yaml`` (LightningCLI).

A thin shell over the objects of the typed API (:mod:`eg_train.training.api`): the same
:class:`EGModule`, :class:`EGDataModule`, logger and callbacks (:mod:`eg_train.training.rundir`).
The data-source options are spelled as for ``eg-priors`` and ``eg-eval``: ``--data.preset``,
``--data.files '{train: f.csv}'``, ``--data.text_column``, ``--data.label_column``,
``--data.labels``, ``--data.labels_file``, ``--data.classes``, ``--data.skip_invalid``.

Every run writes into ``trainer.default_root_dir`` (e.g. ``runs/demo/``): the resolved
``config.yaml``, ``metrics.csv``, ``checkpoints/best.ckpt`` + ``checkpoints/last.ckpt`` and, after
``fit``, ``model/`` (loadable with :func:`eg_train.foundation.models.load_sequence_classifier`).
``fit`` into a directory that holds a run is refused unless it resumes
(``--ckpt_path runs/demo/checkpoints/last.ckpt``) or ``--overwrite true`` is given. ``validate`` /
``test`` without ``--ckpt_path`` evaluate the run's ``checkpoints/best.ckpt`` when there is one,
and append to its ``metrics.csv`` (they never replace the saved ``config.yaml``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only

from eg_train.training.config import DEFAULT_RUN_DIR
from eg_train.training.datamodule import EGDataModule
from eg_train.training.module import EGModule
from eg_train.training.rundir import BEST_CHECKPOINT, CHECKPOINT_DIR, RunLogger, prepare_run_dir, run_callbacks

log = logging.getLogger(__name__)


class _SaveRunConfig(SaveConfigCallback):
    """Save ``config.yaml`` with ``ckpt_path: null`` and ``overwrite: false``: re-running it never
    resumes or replaces a run by accident (the run directory was checked before)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved:
            self.config = self.config.clone()
            for key in ("ckpt_path", "overwrite"):
                if key in self.config:
                    self.config[key] = None if key == "ckpt_path" else False
        super().setup(trainer, pl_module, stage)


class EGCLI(LightningCLI):
    """LightningCLI with the model/data links and the run-directory layout of eg-train."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_callback", _SaveRunConfig)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})  # prepare_run_dir decided already
        kwargs.setdefault("seed_everything_default", 0)
        super().__init__(EGModule, EGDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name", "data.model_name")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.add_argument(
            "--overwrite", type=bool, default=False,
            help="fit: replace the run already in trainer.default_root_dir (otherwise that is an error)",
        )

    def _root(self) -> str:
        cfg = self.config[self.subcommand]
        return (cfg.get("trainer") or {}).get("default_root_dir") or DEFAULT_RUN_DIR

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        root = self._root()
        if self.subcommand == "fit":
            # Rank 0 only: under torchrun the other ranks start while rank 0 writes the directory.
            if rank_zero_only.rank == 0:
                prepare_run_dir(root, cfg.get("ckpt_path"), overwrite=bool(cfg.get("overwrite")))
        elif self.subcommand in ("validate", "test") and cfg.get("ckpt_path") is None:
            best = Path(root) / CHECKPOINT_DIR / f"{BEST_CHECKPOINT}.ckpt"
            if best.is_file():
                log.info("%s: no --ckpt_path given, evaluating %s", self.subcommand, best)
                cfg["ckpt_path"] = str(best)

    def instantiate_trainer(self, **kwargs: Any):
        from eg_train.training.progress import progress_callback

        trainer_cfg = self._get(self.config_init, "trainer", default={})
        root = self._root()
        if self.subcommand != "fit":
            self.save_config_callback = None  # the run's config.yaml describes its fit
        if trainer_cfg.get("logger") in (None, True):
            kwargs["logger"] = RunLogger(root)
        callbacks = list(trainer_cfg.get("callbacks") or [])
        callbacks += run_callbacks()
        if trainer_cfg.get("enable_progress_bar") in (None, True):
            callbacks.append(progress_callback(every_n_steps=max(1, int(trainer_cfg.get("log_every_n_steps") or 50))))
        kwargs["callbacks"] = callbacks
        kwargs.setdefault("default_root_dir", root)
        return super().instantiate_trainer(**kwargs)


def run_cli(args: list[str] | dict | None = None) -> EGCLI:
    """Run a Lightning subcommand (``fit``, ``validate``, ``test``) and return the CLI object."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return EGCLI(args=args)
