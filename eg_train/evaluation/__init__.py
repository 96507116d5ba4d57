"""Evaluation: accuracy, faithfulness (comprehensiveness / sufficiency), keyword attacks, reports."""

from eg_train.evaluation.attacks import ModelAttackConfig, run_model_attacks
from eg_train.evaluation.evaluate import CheckpointLabelError, EvalConfig, evaluate_checkpoint, evaluate_transfer
from eg_train.evaluation.faithfulness import FaithfulnessResult, faithfulness
from eg_train.evaluation.metrics import accuracy, classification_metrics, confused_pairs, macro_f1

__all__ = [
    "CheckpointLabelError",
    "EvalConfig",
    "ModelAttackConfig",
    "FaithfulnessResult",
    "accuracy",
    "classification_metrics",
    "confused_pairs",
    "evaluate_checkpoint",
    "evaluate_transfer",
    "faithfulness",
    "macro_f1",
    "run_model_attacks",
]
