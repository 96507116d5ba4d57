"""Model-aware attack recipes, built from config through a registry (one small module each).

    deepwordbug   character edits, [UNK] word importance, edit distance <= 30 (Gao et al. 2018)
    pwws          WordNet synonyms, saliency x best-swap word order (Ren et al. 2019)
    textfooler    embedding neighbours, deletion importance, sentence-encoder similarity (Jin et al. 2020)

``build_recipe(name, config, resources)`` returns a :class:`~..model_attack.ModelAttack`. A new
recipe is a module with a ``@RECIPES.register("name")`` builder, imported below.
"""

from __future__ import annotations

from eg_train.evaluation.attacks.model_attack import ModelAttack
from eg_train.evaluation.attacks.recipes.base import RECIPES, ModelAttackConfig, Resources

# Registration happens on import; each module adds one recipe.
from eg_train.evaluation.attacks.recipes import deepwordbug, pwws, textfooler  # noqa: E402,F401


def build_recipe(name: str, config: ModelAttackConfig, resources: Resources | None = None) -> ModelAttack:
    """Construct recipe ``name`` from ``config`` (an unknown name lists the registered ones)."""
    return RECIPES.build(name, config, resources or Resources(config))


__all__ = ["RECIPES", "ModelAttackConfig", "Resources", "build_recipe"]
