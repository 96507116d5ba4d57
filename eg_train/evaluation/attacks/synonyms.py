"""Near-synonyms from a fixed static word-embedding table (the role counter-fitted GloVe plays in
TextAttack's ``WordSwapEmbedding``).

The table is the input (word-piece) embedding matrix of a pretrained encoder, by default the
embedded ``all-minilm-l6-v2`` *as shipped*: a fixed resource, identical for every model under
evaluation (the attacked checkpoints' own fine-tuned weights are never used). Only words that are
a single vocabulary piece are eligible (averaged sub-word pieces are not meaningful), and the
candidate set is the attack lexicon's vocabulary. Nearest neighbours in this space are mostly
inflections (``arrive`` → ``arrived``) and close synonyms (``money`` → ``funds``, ``cash``), but
also some related non-synonyms (``top`` → ``bottom``): the attack adds
:class:`~eg_train.evaluation.attacks.core.IntentCompatibility` to filter those.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)


class EmbeddingNeighbours:
    """``neighbours(word)``: words of ``vocab`` with cosine >= ``min_similarity``, most similar first."""

    source = "static-embedding"

    def __init__(self, vectors: dict[str, np.ndarray], min_similarity: float = 0.5, top: int = 10) -> None:
        self.words = sorted(vectors)
        self.index = {w: i for i, w in enumerate(self.words)}
        mat = np.stack([vectors[w] for w in self.words]).astype(np.float32) if self.words else np.zeros((0, 1), np.float32)
        mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
        self.mat = mat  # rows are computed on demand: a 20k-word table has no room for a V x V matrix
        self.min_similarity = min_similarity
        self.top = top
        self._rows: dict[int, list[tuple[str, float]]] = {}

    @classmethod
    def from_pretrained(
        cls, model_name: str, vocab: Sequence[str], min_similarity: float = 0.5, top: int = 10
    ) -> "EmbeddingNeighbours":
        """Read the input-embedding table of ``model_name`` (alias or directory) for ``vocab``."""
        from transformers import AutoModel, AutoTokenizer

        from eg_train.foundation.models.resolve import resolve_model

        location = resolve_model(model_name).location
        tok = AutoTokenizer.from_pretrained(location)
        model = AutoModel.from_pretrained(location, dtype=torch.float32)
        table = model.get_input_embeddings().weight.detach().cpu().numpy()
        unk = tok.unk_token_id
        vectors = {}
        pieces = tok(list(vocab), add_special_tokens=False)["input_ids"] if len(vocab) else []
        for w, ids in zip(vocab, pieces):
            if len(ids) == 1 and ids[0] != unk:
                vectors[w] = table[ids[0]]
        log.info("synonym table from %s: %d of %d lexicon words are single pieces", model_name, len(vectors), len(vocab))
        return cls(vectors, min_similarity, top)

    @classmethod
    def from_vocabulary(
        cls, model_name: str, min_similarity: float = 0.5, top: int = 50, min_length: int = 2
    ) -> "EmbeddingNeighbours":
        """The table over every whole-word, alphabetic piece of ``model_name``'s vocabulary (the
        candidate space of a TextFooler-style swap, not limited to a training lexicon)."""
        from transformers import AutoTokenizer

        from eg_train.foundation.models.resolve import resolve_model

        tok = AutoTokenizer.from_pretrained(resolve_model(model_name).location)
        vocab = [w for w in tok.get_vocab() if w.isalpha() and w.isascii() and len(w) >= min_length]
        return cls.from_pretrained(model_name, vocab, min_similarity, top)

    def neighbours(self, word: str) -> list[tuple[str, float]]:
        i = self.index.get(word)
        if i is None:
            return []
        if i not in self._rows:
            row = self.mat @ self.mat[i]
            order = np.argsort(-row, kind="stable")
            out = []
            for j in order:
                if j == i:
                    continue
                if row[j] < self.min_similarity or len(out) >= self.top:
                    break
                out.append((self.words[j], float(row[j])))
            self._rows[i] = out
        return list(self._rows[i])
