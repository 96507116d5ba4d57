"""Attribution methods used inside the training step (differentiable)."""

from eg_train.foundation.attribution.integrated_gradients import (
    IGConfig,
    baseline_input_ids,
    integrated_gradients,
    masked_normalise,
    path_profile,
    word_attributions,
)
from eg_train.foundation.attribution.quadrature import METHODS, quadrature, warped_gauss_legendre

__all__ = [
    "IGConfig",
    "METHODS",
    "baseline_input_ids",
    "integrated_gradients",
    "masked_normalise",
    "path_profile",
    "quadrature",
    "warped_gauss_legendre",
    "word_attributions",
]
