"""Programmatic training: the same code path as ``eg-train fit`` without a subprocess."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml


def fit(config: str | os.PathLike | dict[str, Any], overrides: Sequence[str] = (), test: bool = False) -> Path:
    """Train from a YAML file (or the same content as a dict); return the run directory.

    ``overrides`` are command-line style (``["--trainer.max_epochs=1", "--model.beta=0"]``). The run
    directory holds ``config.yaml``, ``checkpoints/`` and ``model/`` (see :mod:`eg_train.training.cli`).
    With ``test=True`` the test split is evaluated after training (metrics in ``metrics.csv``).
    """
    from eg_train.training.cli import run_cli

    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(config, dict):
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
        else:
            path = Path(config)
            if not path.is_file():
                raise FileNotFoundError(f"training config {path} not found")
        cli = run_cli(["fit", "--config", str(path), *overrides])
    run_dir = Path(cli.trainer.log_dir or cli.trainer.default_root_dir)
    if test:
        cli.trainer.test(cli.model, datamodule=cli.datamodule)
    return run_dir
