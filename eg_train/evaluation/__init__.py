"""Evaluation: accuracy, faithfulness (comprehensiveness / sufficiency), keyword attacks, reports."""

from eg_train.evaluation.evaluate import CheckpointLabelError, EvalConfig, evaluate_checkpoint
from eg_train.evaluation.faithfulness import FaithfulnessResult, faithfulness
from eg_train.evaluation.metrics import accuracy, classification_metrics, confused_pairs, macro_f1

__all__ = [
    "CheckpointLabelError",
    "EvalConfig",
    "FaithfulnessResult",
    "accuracy",
    "classification_metrics",
    "confused_pairs",
    "evaluate_checkpoint",
    "faithfulness",
    "macro_f1",
]
