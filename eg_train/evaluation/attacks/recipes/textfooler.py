"""A TextFooler-style recipe (Jin et al. 2020; TextAttack's ``TextFoolerJin2019``).

Transformation: up to 50 nearest neighbours (cosine >= 0.5) in a static word-embedding table —
the pretrained ``all-MiniLM-L6-v2`` input embeddings over its whole-word vocabulary, in the role of
counter-fitted GloVe (which TextAttack downloads); constraints: no stopword, no word twice, no
negation or antonym (counter-fitting pushed antonyms apart; this table does not), and
sentence-encoder similarity of a 15-word window >= cos 0.878 (TextFooler's angular 0.8408) with
the embedded MiniLM as the encoder (:mod:`..similarity`); search: greedy over words ranked by the
score with the word deleted. TextFooler's part-of-speech constraint is left out (no offline tagger).
"""

from __future__ import annotations

from eg_train.evaluation.attacks.lexicon import STOPWORDS
from eg_train.evaluation.attacks.model_attack import (
    ModelAttack,
    NoNegationOrAntonym,
    RepeatModification,
    StopwordModification,
)
from eg_train.evaluation.attacks.recipes.base import RECIPES, ModelAttackConfig, Resources
from eg_train.evaluation.attacks.search import GreedyWordImportance
from eg_train.evaluation.attacks.similarity import SentenceSimilarity
from eg_train.evaluation.attacks.stopwords import ENGLISH
from eg_train.evaluation.attacks.transforms import SynonymSwap


@RECIPES.register("textfooler")
def build(config: ModelAttackConfig, resources: Resources) -> ModelAttack:
    return ModelAttack(
        name="textfooler",
        transformation=SynonymSwap(resources.embedding_neighbours, config.max_candidates),
        # TextFooler's own stopword list is longer than NLTK's: both lists here.
        index_constraints=[RepeatModification(), StopwordModification(ENGLISH | STOPWORDS)],
        constraints=[NoNegationOrAntonym(resources.antonyms())],
        search=GreedyWordImportance("delete"),
        sentence_similarity=SentenceSimilarity(config.min_sentence_similarity, config.similarity_window),
    )
