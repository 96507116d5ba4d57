"""CAP prior: class-aware prompt, target ``z = T(log p)``, ridge by Cholesky (docs/design.md#cap-prior).

``T`` is chosen by ``transform`` (see ``priors/SCORING.md``): ``neg_inv_log`` (the paper's
``z = -1/log p``), ``inv_one_minus_log`` (``z = 1/(1 - log p)``: equal to the paper's for small p,
bounded by 1 as ``log p -> 0``, the default with a contrast) or ``log_p``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from eg_train.foundation.registry import Registry
from priors.base import register_prior
from priors.methods.perturbation import PerturbationPrior, neg_inv_log
from priors.prompts import PromptTemplate, class_aware_template


def inv_one_minus_log(log_p: np.ndarray) -> np.ndarray:
    """``z = 1/(1 - log p)`` in (0, 1]: ``-1/log p`` shifted by one nat, so finite at ``p = 1``."""
    return 1.0 / (1.0 - np.minimum(log_p, 0.0))


CAP_TRANSFORMS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("cap_transform")
CAP_TRANSFORMS.register("neg_inv_log")(neg_inv_log)
CAP_TRANSFORMS.register("inv_one_minus_log")(inv_one_minus_log)
CAP_TRANSFORMS.register("log_p")(lambda log_p: np.asarray(log_p, dtype=np.float64))


def resolve_transform(name: str, contrast: str) -> str:
    """``auto``: the paper's ``neg_inv_log`` for raw ``log p``, ``inv_one_minus_log`` with a
    contrast (a renormalised ``log p`` reaches 0 for a competent LLM, where ``-1/log p`` explodes)."""
    if name == "auto":
        return "neg_inv_log" if contrast == "none" else "inv_one_minus_log"
    CAP_TRANSFORMS.check([name], also=["auto"])
    return name


@register_prior("cap")
class CapPrior(PerturbationPrior):
    """``z_i = T(log p(y | Instructions / Given Labels / [demonstrations] / Text: x⊙m_i / Label:))``.

    ``z`` is computed from the log-probability, never from a clipped probability: a small LLM
    gives the gold label p ≈ 1e-10…1e-6, and clipping would make every target the same.
    """

    uses_demonstrations = True

    def __init__(self, scorer, *, transform: str = "neg_inv_log", **kwargs: Any) -> None:
        super().__init__(scorer, **kwargs)
        self.transform = resolve_transform(transform, getattr(scorer, "contrast", "none"))

    @classmethod
    def prompt(cls, label_names: list[str], instruction: str, demonstrations=()) -> PromptTemplate:
        return class_aware_template(label_names, instruction, demonstrations)

    @classmethod
    def options_from_config(cls, cfg: Any) -> dict[str, Any]:
        return {"transform": cfg.cap_transform}

    def targets(self, log_probs: np.ndarray) -> np.ndarray:
        return CAP_TRANSFORMS[self.transform](log_probs)

    def config(self) -> dict[str, Any]:
        # The paper's transform keeps the keys of priors computed before the option existed.
        return {**super().config(), **({"transform": self.transform} if self.transform != "neg_inv_log" else {})}
