"""``eg-train``: one command for the training stage and the end-to-end experiment.

    eg-train fit|validate|test --config configs/demo.yaml [--key value ...]   (LightningCLI)
    eg-train demo [--config configs/pipeline_demo.yaml]                       (priors -> training -> evaluation)

A thin shell: the Lightning subcommands go to :mod:`eg_train.training.cli`, ``demo`` to
:mod:`eg_train.experiment.pipeline`; both are imported only when used.
"""

from __future__ import annotations

import logging
import sys

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eg-train``."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        from eg_train.training.cli import run_cli

        # From the shell LightningCLI reads sys.argv itself (passing it again triggers its warning).
        run_cli(None if from_command_line else argv)
        return 0
    if argv and argv[0] == "demo":
        from eg_train.experiment.pipeline import main as pipeline_main

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
