"""Where every output of a pipeline lives in its ``out_dir``, and the keys that decide reuse.

    out_dir/
      pipeline[-NAME].yaml, report[-NAME]/, summary[-NAME].json   one config's own outputs (by name)
      timings.json                                                wall time per step (shared, locked)
      prior_cache/                                                priors keyed by text + config hash
      priors-<key>.html                                           prior heatmaps of one prior setting
      attacks/<key>/                                              keyword attacks of one test set
      runs/<variant>-seed<s>-<key>/                               one trained model (+ key.json)
      eval/<variant>-seed<s>-<key>/                               one evaluation (+ key.json)

A ``<key>`` is a short hash of a *key document*: the content fingerprints of the data splits the
artefact read, the keys of the artefacts it was built from (the model's, the attacks') and the
resolved settings that change it. The document itself is saved as ``key.json`` beside the
artefact. Reuse is by key, never by folder name: two configs that train the same model share its
folder, a changed training setting or another test file gets a folder of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eg_train.foundation.errors import UserError
from eg_train.foundation.fingerprint import digest
from eg_train.foundation.io import atomic_write_json

KEY_FILE = "key.json"
KEY_LENGTH = 10  # hex digits in a folder name: 40 bits, no collision among a folder's few artefacts


class KeyMismatchError(UserError, RuntimeError):
    """A folder named for one key holds an artefact recorded with another (edited by hand?)."""


def short_key(doc: Any) -> str:
    """The folder-name hash of a key document."""
    return digest(doc, KEY_LENGTH)


@dataclass(frozen=True)
class RunId:
    """One trained model: its variant, its seed and the short hash of its training key."""

    variant: str
    seed: int
    key: str

    @property
    def name(self) -> str:
        """The run's folder name, ``<variant>-seed<s>-<key>``."""
        return f"{self.variant}-seed{self.seed}-{self.key}"

    @property
    def label(self) -> str:
        """``<variant>-seed<s>``: unique within one config (job keys, log lines)."""
        return self.label_for(self.variant, self.seed)

    @staticmethod
    def label_for(variant: str, seed: int) -> str:
        """The :attr:`label` of a run of ``variant`` and ``seed``, whatever its key."""
        return f"{variant}-seed{seed}"


@dataclass(frozen=True)
class RunLayout:
    """Every path of a pipeline's ``out_dir`` (the only place that builds them)."""

    out_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))

    # -- one config's own outputs ------------------------------------------------------------
    def config_file(self, tag: str) -> Path:
        return self.out_dir / f"pipeline{tag}.yaml"

    def report_dir(self, tag: str) -> Path:
        return self.out_dir / f"report{tag}"

    def summary_file(self, tag: str) -> Path:
        return self.out_dir / f"summary{tag}.json"

    # -- shared outputs ----------------------------------------------------------------------
    @property
    def timings_file(self) -> Path:
        return self.out_dir / "timings.json"

    @property
    def prior_cache(self) -> Path:
        return self.out_dir / "prior_cache"

    def heatmaps_file(self, key: str) -> Path:
        return self.out_dir / f"priors-{key}.html"

    def attacks_dir(self, key: str) -> Path:
        return self.out_dir / "attacks" / key

    def run_dir(self, run: RunId) -> Path:
        return self.out_dir / "runs" / run.name

    def model_dir(self, run: RunId) -> Path:
        return self.run_dir(run) / "model"

    def eval_dir(self, run: RunId, key: str) -> Path:
        return self.out_dir / "eval" / f"{run.label}-{key}"

    @staticmethod
    def lock_file(path: Path) -> Path:
        """The lock held while ``path`` is built (a sibling, so the build may replace ``path``)."""
        return path.with_name(path.name + ".lock")

    # -- timing keys (``timings.json``) ------------------------------------------------------
    @staticmethod
    def timing_key(step: str, run: RunId | None = None, what: str | None = None) -> str:
        """The ``timings.json`` key of a step: ``<step>_<run name>_s`` for a model's step (its key
        in the name: two configs on one out_dir never mix their runs' times), ``<step>_<what>_s``
        for a named one (``priors_lime_s``), else ``<step>_s``."""
        middle = run.name if run is not None else what
        return f"{step}_{middle}_s" if middle else f"{step}_s"


def write_key(folder: Path, doc: dict[str, Any]) -> None:
    """Record the key document an artefact was built from (``<folder>/key.json``)."""
    atomic_write_json(folder / KEY_FILE, doc)


def stored_key(folder: Path) -> dict[str, Any] | None:
    """The key document recorded in ``folder`` (None when there is none)."""
    path = folder / KEY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def check_key(folder: Path, doc: dict[str, Any]) -> bool:
    """Whether ``folder`` holds an artefact built from ``doc``: True when its recorded key equals
    ``doc``, False when it records none; another recorded key raises :class:`KeyMismatchError`."""
    saved = stored_key(folder)
    if saved is None:
        return False
    if saved != json.loads(json.dumps(doc, default=str)):
        raise KeyMismatchError(f"{folder} holds an artefact of another key (see its {KEY_FILE}); remove the folder")
    return True
