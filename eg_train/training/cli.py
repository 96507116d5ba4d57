"""``eg-train fit|validate|test --config configs/xxx.yaml`` (LightningCLI).

Every run writes into ``trainer.default_root_dir`` (e.g. ``runs/demo/``): the resolved
``config.yaml``, ``metrics.csv``, ``checkpoints/`` and, after ``fit``, ``model/`` (the fine-tuned
classifier + tokenizer, loadable with :func:`eg_train.foundation.models.load_sequence_classifier`).
Resume with ``eg-train fit --config ... --ckpt_path runs/demo/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from eg_train.training.datamodule import EGDataModule
from eg_train.training.module import EGModule, ExportModel

DEFAULT_RUN_DIR = "runs/default"


class EGCLI(LightningCLI):
    """LightningCLI with the model/data links and the run-directory layout of eg-train."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("seed_everything_default", 0)
        kwargs.setdefault(
            "trainer_defaults",
            {
                "callbacks": [
                    ModelCheckpoint(save_last=True, monitor="val_acc", mode="max", save_top_k=1),
                    ExportModel(),
                ]
            },
        )
        super().__init__(EGModule, EGDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model_name", "data.model_name")
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any):
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        root = trainer_cfg.get("default_root_dir") or DEFAULT_RUN_DIR
        if trainer_cfg.get("logger") in (None, True):
            # name="" and version="" make the log dir the run dir itself: runs/<name>/config.yaml.
            kwargs["logger"] = CSVLogger(save_dir=root, name="", version="")
        kwargs.setdefault("default_root_dir", root)
        return super().instantiate_trainer(**kwargs)


def run_cli(args: list[str] | dict | None = None) -> EGCLI:
    """Run a Lightning subcommand (``fit``, ``validate``, ``test``) and return the CLI object."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return EGCLI(args=args)
