"""The one contract every prior method follows, and the registry that names them.

A method takes a :class:`PriorBatch` and returns one :class:`PriorResult` per example: a score
per word of ``split_words(text)``. A new method is one new module that subclasses
:class:`PriorMethod` and registers itself with :func:`register_prior`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

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


class PriorMethod(ABC):
    """Base class: subclasses set ``name`` and implement :meth:`compute`."""

    name: str = ""

    @abstractmethod
    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        """Attribute every example of ``batch`` (one score per word)."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Everything that changes the scores (model id, prompt, n, λ, seed…), JSON-serialisable."""

    @property
    def model_id(self) -> str:
        return str(self.config().get("model", ""))

    def config_hash(self) -> str:
        blob = json.dumps({"method": self.name, **self.config()}, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:12]


PRIOR_REGISTRY: dict[str, type[PriorMethod]] = {}


def register_prior(name: str) -> Callable[[type[PriorMethod]], type[PriorMethod]]:
    """Class decorator: make a method available as ``build_prior(name, ...)``."""

    def wrap(cls: type[PriorMethod]) -> type[PriorMethod]:
        if name in PRIOR_REGISTRY:
            raise ValueError(f"prior method {name!r} registered twice")
        cls.name = name
        PRIOR_REGISTRY[name] = cls
        return cls

    return wrap


def build_prior(name: str, **kwargs: Any) -> PriorMethod:
    """Instantiate a registered prior method."""
    import priors.methods  # noqa: F401  (registers the built-in methods)

    if name not in PRIOR_REGISTRY:
        raise KeyError(f"unknown prior method {name!r}; registered: {sorted(PRIOR_REGISTRY)}")
    return PRIOR_REGISTRY[name](**kwargs)
