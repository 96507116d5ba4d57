"""LIME prior: frozen LLM, plain prompt, target p, cosine kernel, weighted ridge (docs/design.md#lime-prior)."""

from __future__ import annotations

from typing import Any

import numpy as np

from priors.base import register_prior
from priors.masks import cosine_kernel
from priors.methods.perturbation import PerturbationPrior
from priors.prompts import PromptTemplate, plain_template


@register_prior("lime")
class LimePrior(PerturbationPrior):
    """``p_i = p(y | Text: x⊙m_i / Label:)`` regressed on the masks with LIME's kernel (``p`` is
    the contrastive probability when the scorer has a contrast)."""

    def __init__(self, scorer, *, kernel_width: float = 0.25, **kwargs: Any) -> None:
        super().__init__(scorer, **kwargs)
        self.kernel_width = kernel_width

    @classmethod
    def prompt(cls, label_names: list[str], instruction: str, demonstrations=()) -> PromptTemplate:
        return plain_template()

    @classmethod
    def options_from_config(cls, cfg: Any) -> dict[str, Any]:
        return {"kernel_width": cfg.kernel_width}

    def targets(self, log_probs: np.ndarray) -> np.ndarray:
        return np.exp(log_probs)

    def sample_weights(self, masks: np.ndarray) -> np.ndarray:
        return cosine_kernel(masks, self.kernel_width)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "kernel_width": self.kernel_width}
