"""``eg-eval``: build attack datasets, evaluate checkpoints, write reports.

    eg-eval attack   --data.preset banking77 --out runs/attacks/banking77 --params.seed 0
    eg-eval model_attack --checkpoint runs/ce/model --data.preset banking77 --out runs/attacks/ce_model \\
                     --params.recipes '[deepwordbug, pwws, textfooler]' --subset 500
    eg-eval evaluate --checkpoint runs/ce/model --data.preset banking77 \\
                     --attacks runs/attacks/banking77 --out runs/ce/eval --method ce --seed 0 \\
                     [--model_attacks '[deepwordbug, pwws]'] [--transfer runs/attacks/ce_model --subset 500]
    eg-eval audit    --checkpoint runs/ce-seed0/model --data.preset banking77 --k_shot 5 \\
                     --prior_cache outputs/demo/prior_cache --prior_methods '[lime, cap]' --out runs/audit \\
                     [--reserve_per_class 2] [--params.candidates_per_class 5]
    eg-eval report   --runs '[runs/ce/eval, runs/cap_hybrid/eval]' --out runs/report \\
                     --attacks runs/attacks/banking77

Every subcommand accepts ``--config file.yaml`` (jsonargparse) and ``--help``. A shell over
:mod:`eg_train.evaluation.api`: its result lines are printed on stdout, everything else is logged.
"""

from __future__ import annotations

import logging
import sys

from eg_train.evaluation.api import attack, audit, evaluate, model_attack, report
from eg_train.evaluation.attacks.build import AttackFileError
from eg_train.evaluation.evaluate import CheckpointLabelError
from eg_train.foundation.data.source import DataError

# Bad input the user can fix: reported as one line (exit status 2), not as a traceback.
USER_ERRORS = (DataError, AttackFileError, CheckpointLabelError, FileExistsError, FileNotFoundError)


def _results_to_stdout() -> logging.Handler:
    """Show the API's result lines on stdout, plainly (they are the command's output)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    api_log = logging.getLogger("eg_train.evaluation.api")
    api_log.addHandler(handler)
    api_log.setLevel(logging.INFO)
    api_log.propagate = False
    return handler


def main(args: list[str] | None = None) -> None:
    """Console entry point (``eg-eval``)."""
    from jsonargparse import CLI

    from eg_train.foundation.errors import run_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = _results_to_stdout()

    def dispatch(a: list[str]) -> int:
        CLI([attack, model_attack, evaluate, report, audit], args=a, as_positional=False)  # returns a path, not a status
        return 0

    try:
        code = run_main(dispatch, "eg-eval", args, user_errors=USER_ERRORS)
    finally:
        logging.getLogger("eg_train.evaluation.api").removeHandler(handler)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
