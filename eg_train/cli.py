"""``eg-train``: one command for the training stage and the end-to-end experiment.

    eg-train fit|validate|test --config configs/demo.yaml [--key value ...]   (LightningCLI)
    eg-train pipeline [--config configs/showcase.yaml]                            (the demo: clean vs planted shortcut)
    eg-train pipeline --config configs/pipeline_demo.yaml                      (priors -> training -> evaluation)
    eg-train shortcut [--config configs/shortcut_banking77_5shot.yaml]        (the shortcut robustness benchmark)
    eg-train suite --config configs/suite.yaml                                 (the shortcut suite)

A thin shell: the Lightning subcommands go to :mod:`eg_train.training.cli`, the others to their
module in :mod:`eg_train.experiment` (``showcase``, ``pipeline``, ``shortcut``, ``suite``), each
imported only when used.
"""

from __future__ import annotations

import logging
import sys

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")


def _dispatch(argv: list[str], from_command_line: bool) -> int:
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        from eg_train.training.cli import run_cli

        if from_command_line:
            # LightningCLI reads sys.argv itself (passing it again triggers its warning): hand it the
            # arguments without --verbose.
            sys.argv[1:] = argv
        run_cli(None if from_command_line else argv)
        return 0
    if argv and argv[0] == "demo":
        from eg_train.experiment.showcase import main as showcase_main

        showcase_main(argv[1:] or ["--config", "configs/showcase.yaml"])
        return 0
    if argv and argv[0] == "pipeline":
        from eg_train.experiment.pipeline import main as pipeline_main

        pipeline_main(argv[1:] or ["--config", "configs/pipeline_demo.yaml"])
        return 0
    if argv and argv[0] == "shortcut":
        from eg_train.experiment.shortcut import main as shortcut_main

        shortcut_main(argv[1:] or ["--config", "configs/shortcut_banking77_5shot.yaml"])
        return 0
    if argv and argv[0] == "suite":
        from eg_train.experiment.suite import main as suite_main

        suite_main(argv[1:])
        return 0
    print(
        "usage: eg-train pipeline [--config configs/showcase.yaml]  (the demo: CE vs the recipe, clean and with a planted shortcut)\n"
        "       eg-train pipeline [--config configs/pipeline_demo.yaml]  (priors -> training -> evaluation)\n"
        "       eg-train shortcut [--config configs/shortcut_banking77_5shot.yaml]  (the shortcut robustness benchmark)\n"
        "       eg-train suite --config configs/suite.yaml  (the shortcut suite, docs/shortcut_suite.md)\n"
        "       eg-train {fit,validate,test} --config configs/demo.yaml [--key value ...]\n"
        "       eg-train fit --help   (every option of the model, data and trainer)\n"
        "       --verbose (any command): show the traceback of an input or configuration error",
        file=sys.stderr,
    )
    return 2 if argv and argv[0] not in ("-h", "--help") else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``eg-train``: a user error prints one line and exits 2 (traceback with ``--verbose``)."""
    from eg_train.foundation.errors import run_main

    from_command_line = argv is None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_main(lambda args: _dispatch(args, from_command_line), "eg-train", argv)


if __name__ == "__main__":
    raise SystemExit(main())
