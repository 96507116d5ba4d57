"""``eg-train``: one command for the training stage and the end-to-end experiment.

    eg-train fit|validate|test --config configs/demo.yaml [--key value ...]   (LightningCLI)
    eg-train fit --config F [--recipe rule|fixed]   (with a prior: the recipe rule, docs/recipe.md)
    eg-train demo [--config configs/showcase.yaml]                                (the demo: clean vs planted shortcut)
    eg-train pipeline --config configs/pipeline_demo.yaml                      (priors -> training -> evaluation)
    eg-train shortcut [--config configs/shortcut_banking77_5shot.yaml]        (the shortcut robustness benchmark)
    eg-train suite --config configs/suite.yaml                                 (the shortcut suite)

A thin shell: the Lightning subcommands go to :mod:`eg_train.training.cli`, the others to their
module in :mod:`eg_train.experiment` (``showcase``, ``pipeline``, ``shortcut``, ``suite``), each
imported only when used (``demo`` is ``showcase``). ``fit`` with a prior (``data.prior``) trains by the recipe rule
(:func:`eg_train.experiment.fit_rule.fit_with_rule`: CE, the shortcut audit, the candidates, the
choice on validation) unless ``--recipe fixed`` (or ``--ckpt_path``, which resumes one run) asks for
the config as written.
"""

from __future__ import annotations

import logging
import sys

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")
FIT_RECIPES = ("rule", "fixed")
_LIGHTNING_ONLY = ("-h", "--help", "--print_config")

log = logging.getLogger("eg_train.cli")


def pop_recipe(args: list[str]) -> tuple[str | None, list[str]]:
    """``--recipe X`` / ``--recipe=X`` taken out of ``fit``'s arguments (the rest is LightningCLI's)."""
    from eg_train.foundation.errors import ConfigError

    recipe, rest, i = None, [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--recipe" or arg.startswith("--recipe="):
            if "=" in arg:
                recipe = arg.split("=", 1)[1]
            elif i + 1 < len(args):
                recipe, i = args[i + 1], i + 1
            else:
                raise ConfigError("--recipe needs a value: rule or fixed")
            if recipe not in FIT_RECIPES:
                raise ConfigError(f"--recipe must be one of {list(FIT_RECIPES)}, got {recipe!r}")
        else:
            rest.append(arg)
        i += 1
    return recipe, rest


def rule_fit_config(args: list[str], recipe: str | None):
    """The :class:`~eg_train.training.config.TrainConfig` that ``eg-train fit`` trains by the recipe rule,
    or None when it trains one model as written (LightningCLI): ``--recipe fixed``, no prior, ``--ckpt_path``
    (resuming one run), or a LightningCLI-only flag (``--help``, ``--print_config``)."""
    from eg_train.foundation.errors import ConfigError
    from eg_train.training.config import TrainConfig

    if recipe == "fixed" or any(a.split("=", 1)[0] in _LIGHTNING_ONLY for a in args):
        return None
    configs, overrides, i = [], [], 0
    while i < len(args):
        if args[i] == "--config" and i + 1 < len(args):
            configs.append(args[i + 1])
            i += 2
            continue
        if args[i].startswith("--config="):
            configs.append(args[i].split("=", 1)[1])
        else:
            overrides.append(args[i])
        i += 1
    if len(configs) > 1:
        raise ConfigError("eg-train fit --recipe rule reads one --config file")
    try:
        cfg = TrainConfig.from_yaml(configs[0], overrides) if configs else TrainConfig.from_mapping({}).with_overrides(overrides)
    except ConfigError as err:
        if recipe == "rule":
            raise
        # LightningCLI accepts more than the typed config reads (any Trainer argument, callbacks):
        # such a run is trained as written, and LightningCLI reports what is really wrong.
        log.warning("eg-train fit: %s; training the config as written (--recipe fixed)", err)
        return None
    if cfg.prior is None:
        if recipe == "rule":
            raise ConfigError("--recipe rule needs a prior (data.prior: {cache_dir: ..., methods: [lime, cap]})")
        return None
    if cfg.ckpt_path is not None:
        if recipe == "rule":
            raise ConfigError("--recipe rule resumes by itself (run the same command again); --ckpt_path resumes one "
                              "run of --recipe fixed")
        return None
    return cfg


def _dispatch(argv: list[str], from_command_line: bool) -> int:
    if argv and argv[0] == "fit":
        recipe, rest = pop_recipe(argv[1:])
        cfg = rule_fit_config(rest, recipe)
        if cfg is not None:
            from eg_train.experiment.fit_rule import fit_with_rule

            log.info("eg-train fit: a prior is configured, so the recipe rule trains CE, audits it and chooses "
                     "(docs/recipe.md); --recipe fixed trains the config as written")
            res = fit_with_rule(cfg, device="cuda" if cfg.trainer.accelerator == "gpu" else "cpu")
            print(f"eg-train fit (recipe rule): chose {res.chosen} -- {res.reason}; model: {res.model_dir}")
            return 0
        argv = ["fit", *rest]
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
        "usage: eg-train demo [--config configs/showcase.yaml]  (the demo: CE vs the recipe, clean and with a planted shortcut)\n"
        "       eg-train pipeline [--config configs/pipeline_demo.yaml]  (priors -> training -> evaluation)\n"
        "       eg-train shortcut [--config configs/shortcut_banking77_5shot.yaml]  (the shortcut robustness benchmark)\n"
        "       eg-train suite --config configs/suite.yaml  (the shortcut suite, docs/shortcut_suite.md)\n"
        "       eg-train {fit,validate,test} --config configs/demo.yaml [--key value ...]\n"
        "       eg-train fit --config F [--recipe rule|fixed]  (with a prior: the recipe rule, docs/recipe.md)\n"
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
