"""Attribution: differentiable IG for the training step, and captum word-level IG (priors, evaluation)."""

from eg_train.foundation.attribution.integrated_gradients import (
    IGConfig,
    baseline_input_ids,
    integrated_gradients,
    masked_normalise,
    path_profile,
    word_attributions,
)
from eg_train.foundation.attribution.quadrature import METHODS, quadrature, warped_gauss_legendre
from eg_train.foundation.attribution.word_ig import (
    BaselineTokenError,
    ig_baseline_token_id,
    word_integrated_gradients,
    word_scores_from_tokens,
)

__all__ = [
    "BaselineTokenError",
    "IGConfig",
    "METHODS",
    "baseline_input_ids",
    "ig_baseline_token_id",
    "integrated_gradients",
    "masked_normalise",
    "path_profile",
    "quadrature",
    "warped_gauss_legendre",
    "word_attributions",
    "word_integrated_gradients",
    "word_scores_from_tokens",
]
