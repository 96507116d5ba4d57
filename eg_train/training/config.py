"""The typed configuration of one training run, and its LightningCLI spelling.

:class:`TrainConfig` is what :func:`eg_train.training.api.fit` takes. The YAML files in
``configs/`` (and the ``config.yaml`` saved in every run directory) are LightningCLI configs;
:meth:`TrainConfig.from_yaml` reads them and :meth:`TrainConfig.to_mapping` writes one back, so
``eg-train fit --config configs/demo.yaml`` and ``fit(TrainConfig.from_yaml("configs/demo.yaml"))``
run the same objects, and a run made either way re-runs with ``eg-train test --config <run>/config.yaml``.

The two spellings::

    TrainConfig field              LightningCLI key
    run_dir                        trainer.default_root_dir
    seed                           seed_everything
    model.<field>                  model.<field>
    data.sample.data.<field>       data.<field>        (preset, files, text_column, label_column, ...)
    data.sample.k_shot / .seed     data.k_shot / data.seed
    data.<field>                   data.<field>        (val_per_class, batch_size, max_length, ...)
    prior                          data.prior          (a mapping, or "none")
    trainer.<field> / .extra[k]    trainer.<field> / trainer.<k>
    ckpt_path, overwrite           ckpt_path, overwrite
"""

from __future__ import annotations

import copy
import inspect
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import yaml

from eg_train.foundation.attribution import IGConfig
from eg_train.foundation.data.fewshot import SampleSpec
from eg_train.foundation.data.source import DataSpec
from eg_train.foundation.errors import ConfigError
from eg_train.training.datamodule import DATA_SPEC_FIELDS, DataOptions, PriorSpec, parse_prior
from eg_train.training.module import LoraSpec, ModelOptions

DEFAULT_RUN_DIR = "runs/default"


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``3e-4`` is a number (YAML 1.1 reads a string)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """A training config's YAML (or one override's value), with ``1e-4``-style floats as numbers."""
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class TrainerOptions:
    """The ``lightning.Trainer`` arguments of a run (``default_root_dir`` is ``TrainConfig.run_dir``).

    ``extra`` holds any other ``Trainer`` argument (``strategy``, ``val_check_interval``,
    ``limit_val_batches``, ...), checked against the ``Trainer`` signature.

    Attributes:
        max_epochs: training epochs.
        accelerator: ``auto``, ``cpu`` or ``gpu``.
        devices: devices per node (a count, ``auto`` or a list of indices).
        precision: Lightning's precision (None: Lightning's default, 32-bit).
        log_every_n_steps: logging interval in optimisation steps (also the progress line's when not on a terminal).
        enable_progress_bar: show a progress bar on a terminal.
    """

    max_epochs: int = 10
    accelerator: str = "auto"
    devices: int | str | list[int] = 1
    precision: str | int | None = None
    log_every_n_steps: int = 50
    enable_progress_bar: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import lightning as L

        allowed = set(inspect.signature(L.Trainer.__init__).parameters) - {"self", "default_root_dir"}
        unknown = sorted(set(self.extra) - allowed)
        if unknown:
            raise ConfigError(f"trainer: unknown option(s) {unknown}; see `eg-train fit --help` for the Trainer's options")
        clash = sorted(set(self.extra) & {f.name for f in fields(self)})
        if clash:
            raise ConfigError(f"trainer.extra repeats {clash}; set them as TrainerOptions fields")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``lightning.Trainer`` (None values left to Lightning's defaults)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out = {k: v for k, v in out.items() if v is not None}
        return {**out, **self.extra}


@dataclass
class TrainConfig:
    """One training run: where it writes, the seed, the model, the data, the prior and the trainer.

    ``ckpt_path`` resumes a run (the run directory may then hold it already); ``overwrite``
    replaces the run in ``run_dir`` (otherwise an existing run there is an error).

    Attributes:
        run_dir: the run's folder (``trainer.default_root_dir`` on the command line).
        seed: the run's seed (``seed_everything``).
        model: the model's hyper-parameters (``model:``).
        data: the training sample and loaders (``data:``).
        prior: the fused prior to align to (``data.prior``); None: the CE baseline.
        trainer: the ``lightning.Trainer`` arguments (``trainer:``).
    """

    run_dir: str = DEFAULT_RUN_DIR
    seed: int = 0
    model: ModelOptions = field(default_factory=ModelOptions)
    data: DataOptions = field(default_factory=DataOptions)
    prior: PriorSpec | None = None
    trainer: TrainerOptions = field(default_factory=TrainerOptions)
    ckpt_path: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.run_dir = str(self.run_dir)
        self.prior = parse_prior(self.prior)

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = (), **changes: Any) -> "TrainConfig":
        """Read a LightningCLI training config (``configs/demo.yaml``).

        ``overrides`` are command-line style, in the CLI's spelling (``["--trainer.max_epochs=8",
        "--data.batch_size=8", "--data.prior=none"]``); ``changes`` then replace fields of the result
        (``run_dir="runs/x", seed=1``).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} not found")
        mapping = load_yaml(path.read_text(encoding="utf-8")) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: expected a mapping of seed_everything / trainer / model / data")
        try:
            cfg = cls.from_mapping(apply_overrides(mapping, overrides))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        return replace(cfg, **changes) if changes else cfg

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "TrainConfig":
        """Build from a LightningCLI mapping (the content of a YAML config)."""
        m = copy.deepcopy(mapping)
        # Keys a LightningCLI-saved config also holds: accepted when unset (EGModule configures AdamW).
        for key in ("optimizer", "lr_scheduler", "weights_only"):
            if m.get(key, None) is not None:
                raise ConfigError(f"{key} is not supported by the typed API (EGModule configures its optimizer)")
            m.pop(key, None)
        _no_unknown(m, {"seed_everything", "trainer", "model", "data", "ckpt_path", "overwrite"}, "")
        # A saved config lists every Trainer argument; the unset ones are Lightning's defaults.
        trainer = {k: v for k, v in dict(m.get("trainer") or {}).items() if v is not None}
        run_dir = trainer.pop("default_root_dir", None) or DEFAULT_RUN_DIR
        for key in ("logger", "callbacks"):
            if trainer.get(key) not in (None, True):
                raise ConfigError(f"trainer.{key} is set by eg-train (the run directory layout); remove it")
            trainer.pop(key, None)
        named = {f.name for f in fields(TrainerOptions)} - {"extra"}
        defaults = _trainer_defaults()
        trainer_opts = TrainerOptions(**{k: v for k, v in trainer.items() if k in named},
                                      extra={k: v for k, v in trainer.items()
                                             if k not in named and (k not in defaults or defaults[k] != v)})
        model = dict(m.get("model") or {})
        _no_unknown(model, {f.name for f in fields(ModelOptions)}, "model.")
        if isinstance(model.get("ig"), dict):
            model["ig"] = _build(IGConfig, model["ig"], "model.ig.")
        elif model.get("ig") is None:
            model.pop("ig", None)
        if isinstance(model.get("lora"), dict):
            model["lora"] = _build(LoraSpec, model["lora"], "model.lora.")
        model_opts = ModelOptions(**model)
        data = dict(m.get("data") or {})
        if "data" in data:
            raise ConfigError("data.data is no longer an option: write the data-source keys (preset, files, "
                              "text_column, label_column, labels, ...) directly under data")
        linked = data.pop("model_name", None)
        if linked is not None and linked != model_opts.model_name:
            raise ConfigError(f"data.model_name ({linked!r}) differs from model.model_name "
                              f"({model_opts.model_name!r}); set model.model_name only")
        option_names = {f.name for f in fields(DataOptions)} - {"sample"}
        _no_unknown(data, {*DATA_SPEC_FIELDS, *option_names, "k_shot", "seed", "prior"}, "data.")
        spec = {k: data[k] for k in DATA_SPEC_FIELDS if k in data}
        if spec.get("files") is None:
            spec.pop("files", None)
        if not (spec.get("preset") or spec.get("hub") or spec.get("files")):
            spec["preset"] = "banking77"  # the data module's default
        sample = SampleSpec(data=DataSpec(**spec), k_shot=data.get("k_shot"), seed=int(data.get("seed", 0)))
        data_opts = DataOptions(sample=sample, **{k: data[k] for k in option_names if k in data})
        seed = m.get("seed_everything", 0)
        if isinstance(seed, bool):
            raise ConfigError("seed_everything must be an integer (a run is reproducible by its seed)")
        return cls(run_dir=str(run_dir), seed=int(seed), model=model_opts, data=data_opts, prior=data.get("prior"),
                   trainer=trainer_opts, ckpt_path=m.get("ckpt_path"), overwrite=bool(m.get("overwrite", False)))

    def with_overrides(self, overrides: Sequence[str]) -> "TrainConfig":
        """A copy with command-line style overrides applied (``["--model.beta=0"]``, CLI spelling)."""
        return type(self).from_mapping(apply_overrides(self.to_mapping(), overrides)) if overrides else self

    # -- writing ------------------------------------------------------------------------------
    def to_mapping(self) -> dict[str, Any]:
        """The LightningCLI config of this run (what ``<run dir>/config.yaml`` holds).

        ``ckpt_path`` and ``overwrite`` are written as null / false: re-running the saved config
        starts nothing over by accident, and ``eg-train test`` picks the run's best checkpoint.
        """
        model = {f.name: getattr(self.model, f.name) for f in fields(ModelOptions)}
        model["ig"] = asdict(self.model.ig)
        model["lora"] = asdict(self.model.lora) if self.model.lora is not None else None
        s = self.data.sample
        data: dict[str, Any] = {name: copy.deepcopy(getattr(s.data, name)) for name in DATA_SPEC_FIELDS}
        data.update(k_shot=s.k_shot, seed=s.seed)
        data.update({f.name: getattr(self.data, f.name) for f in fields(DataOptions) if f.name != "sample"})
        data["prior"] = asdict(self.prior) if self.prior is not None else "none"
        return {
            "seed_everything": self.seed,
            "trainer": {"default_root_dir": self.run_dir, **self.trainer.kwargs()},
            "model": model,
            "data": data,
            "ckpt_path": None,
            "overwrite": False,
        }

    def to_yaml(self) -> str:
        """:meth:`to_mapping` as YAML."""
        return yaml.safe_dump(self.to_mapping(), sort_keys=False)


def apply_overrides(mapping: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--a.b=value`` / ``--a.b value`` overrides (values parsed as YAML) to a nested mapping."""
    out = copy.deepcopy(mapping)
    args = list(overrides)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"override {arg!r}: expected --key=value or --key value")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
        elif i + 1 < len(args):
            key, raw = arg[2:], args[i + 1]
            i += 1
        else:
            raise ConfigError(f"override {arg!r} has no value")
        i += 1
        value = load_yaml(raw) if raw.strip() else None
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[leaf] = value
    return out


def _trainer_defaults() -> dict[str, Any]:
    import lightning as L

    return {k: p.default for k, p in inspect.signature(L.Trainer.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _no_unknown(mapping: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {[prefix + k for k in unknown]}; known: {sorted(prefix + k for k in known)}")


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    _no_unknown(values, {f.name for f in fields(cls)}, prefix)
    return cls(**values)
