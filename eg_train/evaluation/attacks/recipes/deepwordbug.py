"""DeepWordBug (Gao et al. 2018) as TextAttack's ``DeepWordBugGao2018`` builds it.

Transformation: the four character edits (neighbour swap, substitution, deletion, insertion), one
random position each; constraints: no stopword, no word twice, Levenshtein distance of the whole
text to the original <= 30; search: greedy over words ranked by the score with the word as
``[UNK]`` (its "replace-1" scoring).
"""

from __future__ import annotations

from eg_train.evaluation.attacks.model_attack import (
    LevenshteinEditDistance,
    ModelAttack,
    RepeatModification,
    StopwordModification,
)
from eg_train.evaluation.attacks.recipes.base import RECIPES, ModelAttackConfig, Resources
from eg_train.evaluation.attacks.search import GreedyWordImportance
from eg_train.evaluation.attacks.stopwords import ENGLISH
from eg_train.evaluation.attacks.transforms import CharacterEdits


@RECIPES.register("deepwordbug")
def build(config: ModelAttackConfig, resources: Resources) -> ModelAttack:
    return ModelAttack(
        name="deepwordbug",
        transformation=CharacterEdits(),
        index_constraints=[RepeatModification(), StopwordModification(ENGLISH)],
        constraints=[LevenshteinEditDistance(config.max_edit_distance)],
        search=GreedyWordImportance("unk"),
    )
