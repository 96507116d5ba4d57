"""Model resolution: embedded offline models, local folders, or hub ids."""

from eg_train.foundation.models.resolve import (
    EMBEDDED_MODELS,
    ResolvedModel,
    load_causal_lm,
    load_sequence_classifier,
    resolve_model,
)

__all__ = [
    "EMBEDDED_MODELS",
    "ResolvedModel",
    "load_causal_lm",
    "load_sequence_classifier",
    "resolve_model",
]
