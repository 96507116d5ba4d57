"""The one contract every prior method follows, and the registry that names them.

A method takes a :class:`PriorBatch` and returns one :class:`PriorResult` per example: a score
per word of ``split_words(text)``. A new method is one new module that subclasses
:class:`PriorMethod`, registers itself with :func:`register_prior` and builds itself from the
configuration in :meth:`PriorMethod.from_config` (``priors.methods.build_from_config``). This
module imports no method: the registry is filled by importing ``priors.methods``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from eg_train.foundation.registry import Registry
from eg_train.foundation.words import Words, split_words


@dataclass
class PriorBatch:
    """Examples to attribute: ids, texts, gold label ids, and their word segmentation."""

    ids: list[str]
    texts: list[str]
    labels: list[int]
    words: list[Words] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.words:
            self.words = [split_words(t) for t in self.texts]
        if not (len(self.ids) == len(self.texts) == len(self.labels) == len(self.words)):
            raise ValueError("PriorBatch fields must have the same length")

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PriorResult:
    """Scores for one example, with the model queries it cost (``proxy_queries`` for Focus-LIME)."""

    scores: np.ndarray
    queries: int
    proxy_queries: int = 0
    focus_words: int = -1  # words inside the focus mask; -1 when no focus stage ran
    truncated_words: int = 0  # words past the LLM's text budget (scored 0, not attributed)


class PriorMethod(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`compute`."""

    name: str = ""

    @abstractmethod
    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        """Attribute every example of ``batch`` (one score per word)."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the scores (model id, prompt, n, λ, seed…), JSON-serialisable."""

    @classmethod
    def from_config(cls, cfg: Any, ctx: BuildContext) -> PriorMethod:
        """Build the method from the stage configuration (override for methods with options)."""
        return cls()

    @property
    def model_id(self) -> str:
        return str(self.config().get("model", ""))

    def config_hash(self) -> str:
        blob = json.dumps({"method": self.name, **self.config()}, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]


PRIOR_REGISTRY: Registry[type[PriorMethod]] = Registry("prior method")


def register_prior(name: str) -> Callable[[type[PriorMethod]], type[PriorMethod]]:
    """Class decorator: make a method available by name (``priors.methods.build_prior``)."""

    def wrap(cls: type[PriorMethod]) -> type[PriorMethod]:
        PRIOR_REGISTRY.register(name)(cls)
        cls.name = name
        return cls

    return wrap


@dataclass
class BuildContext:
    """What :meth:`PriorMethod.from_config` builds a method from.

    ``cfg`` is the :class:`priors.config.PriorsConfig` (typed loosely: this module must not
    import the configuration, which imports the methods). ``factories`` make the resources
    methods share (``llm``: ``(model, tokenizer)``, ``focus``: the Focus-LIME selector or None,
    ``examples``: the split being attributed); :meth:`get` makes each at most once, so the LLM
    is loaded once for LIME and CAP."""

    cfg: Any
    label_names: list[str]
    factories: dict[str, Callable[[], Any]] = field(default_factory=dict)
    _made: dict[str, Any] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> Any:
        if name not in self._made:
            if name not in self.factories:
                raise KeyError(f"no {name!r} in the build context; available: {sorted(self.factories)}")
            self._made[name] = self.factories[name]()
        return self._made[name]
