"""Attacks: model-free keyword attacks (``build``, ``core``) and model-aware recipes (``recipes``,
``run_model``), each decomposed into goal, constraints, transformation and search."""

from eg_train.evaluation.attacks.build import (
    ATTACKS,
    AttackConfig,
    AttackFileError,
    attack_metadata,
    attack_split,
    build_attacks,
    fingerprint_split,
    load_attacks,
    save_attacks,
)
from eg_train.evaluation.attacks.lexicon import Lexicon, build_lexicon
from eg_train.evaluation.attacks.recipes import RECIPES, ModelAttackConfig
from eg_train.evaluation.attacks.run_model import ModelAttackResults, RecipeResult, run_model_attacks

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "AttackFileError",
    "Lexicon",
    "ModelAttackConfig",
    "ModelAttackResults",
    "RECIPES",
    "RecipeResult",
    "attack_metadata",
    "attack_split",
    "build_attacks",
    "build_lexicon",
    "fingerprint_split",
    "load_attacks",
    "run_model_attacks",
    "save_attacks",
]
