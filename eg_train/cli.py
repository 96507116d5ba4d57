"""``eg-train fit|validate|test --config configs/xxx.yaml`` (LightningCLI).

Every run writes into ``trainer.default_root_dir`` (e.g. ``runs/demo/``): the resolved
``config.yaml``, ``metrics.csv``, ``checkpoints/`` and, after ``fit``, ``model/`` (the fine-tuned
classifier + tokenizer, loadable with :func:`eg_train.models.load_sequence_classifier`).
Resume with ``eg-train fit --config ... --ckpt_path runs/demo/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from eg_train.datamodule import EGDataModule
from eg_train.module import EGModule, ExportModel

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eg-train``: dispatches the Lightning subcommands to :class:`EGCLI`."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        # From the shell LightningCLI reads sys.argv itself (passing it again triggers its warning).
        run_cli(None if from_command_line else argv)
        return 0
    if argv and argv[0] == "demo":
        from eg_train.pipeline import main as pipeline_main

        pipeline_main(argv[1:] or ["--config", "configs/pipeline_demo.yaml"])
        return 0
    print(
        "usage: eg-train demo [--config configs/pipeline_demo.yaml]  (priors -> training -> evaluation)\n"
        "       eg-train {fit,validate,test} --config configs/demo.yaml [--key value ...]\n"
        "       eg-train fit --help   (every option of the model, data and trainer)",
        file=sys.stderr,
    )
    return 2 if argv and argv[0] not in ("-h", "--help") else 0


if __name__ == "__main__":
    raise SystemExit(main())
