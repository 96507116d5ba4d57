"""Model-independent keyword attacks (goal, constraints, transformation, search; see ``core``)."""

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

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "AttackFileError",
    "Lexicon",
    "attack_metadata",
    "attack_split",
    "build_attacks",
    "build_lexicon",
    "fingerprint_split",
    "load_attacks",
    "save_attacks",
]
