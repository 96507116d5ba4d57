"""CAP prior: class-aware prompt, ``z = -1/log p``, ridge by Cholesky (SPEC §2)."""

from __future__ import annotations

import numpy as np

from priors.base import register_prior
from priors.methods.perturbation import PerturbationPrior, neg_inv_log


@register_prior("cap")
class CapPrior(PerturbationPrior):
    """``z_i = -1/log p(y | Instructions / Given Labels / Text: x⊙m_i / Label:)``.

    ``z`` is computed from the log-probability, never from a clipped probability: a small LLM
    gives the gold label p ≈ 1e-10…1e-6, and clipping would make every target the same.
    """

    def targets(self, log_probs: np.ndarray) -> np.ndarray:
        return neg_inv_log(log_probs)
