"""PWWS, probability weighted word saliency (Ren et al. 2019), as TextAttack's ``PWWSRen2019``.

Transformation: WordNet synonyms (single-word lemmas of every synset of the word); constraints:
no stopword, no word twice, and no negation or antonym (:mod:`..negation`; WordNet's own synsets
rarely hold antonyms, the static-embedding fallback does); search: greedy over words ranked by
``softmax(saliency) x best swap score``.

**Synonym source.** WordNet when its dict files are found (see :mod:`..wordnet`), otherwise —
``synonym_source: auto`` on a machine without them, as in CI — the static-embedding neighbours
of the pretrained ``all-MiniLM-L6-v2`` input table (cosine >= 0.5, the table the keyword
replacement attack uses). The source used is recorded with every result (``synonym_source``);
numbers compare with the literature only with ``wordnet``.
"""

from __future__ import annotations

import logging

from eg_train.evaluation.attacks.model_attack import (
    ModelAttack,
    NoNegationOrAntonym,
    RepeatModification,
    StopwordModification,
)
from eg_train.evaluation.attacks.recipes.base import RECIPES, ModelAttackConfig, Resources
from eg_train.evaluation.attacks.search import GreedyWordImportance
from eg_train.evaluation.attacks.stopwords import ENGLISH
from eg_train.evaluation.attacks.transforms import SynonymSwap

log = logging.getLogger(__name__)


def synonym_source(config: ModelAttackConfig, resources: Resources):
    """WordNet, or the static-embedding fallback (``synonym_source`` decides; see module doc)."""
    if config.synonym_source in ("auto", "wordnet"):
        wn = resources.wordnet
        if wn is not None:
            return wn
        if config.synonym_source == "wordnet":
            raise FileNotFoundError(
                "pwws: no WordNet dict files found (pass wordnet_dir, set EG_TRAIN_WORDNET or NLTK_DATA; "
                "see eg_train/evaluation/ATTACKS.md), or use synonym_source: embedding"
            )
        log.warning("pwws: WordNet not found; synonyms from static-embedding neighbours of %s", config.embedding_model)
    return resources.embedding_neighbours


@RECIPES.register("pwws")
def build(config: ModelAttackConfig, resources: Resources) -> ModelAttack:
    return ModelAttack(
        name="pwws",
        transformation=SynonymSwap(synonym_source(config, resources)),
        index_constraints=[RepeatModification(), StopwordModification(ENGLISH)],
        constraints=[NoNegationOrAntonym(resources.antonyms())],
        search=GreedyWordImportance("weighted-saliency"),
    )
