"""Sentence-encoder similarity: the semantic constraint of the TextFooler-style recipe.

TextFooler (Jin et al. 2020) keeps a swap only when the Universal Sentence Encoder embeddings of a
15-word window around the swapped word, before and after, are close (angular similarity >= 0.8408,
i.e. cosine >= 0.878). USE needs TensorFlow Hub; here the encoder is the embedded
``all-MiniLM-L6-v2`` used as a sentence-transformers model (mean pooling over tokens, then L2
normalisation), with the same window and the same threshold read as a cosine. Unlike TextAttack,
texts shorter than the window are not exempt: the window is then the whole text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from eg_train.evaluation.attacks.batching import TextMemo, length_sorted_batches
from eg_train.evaluation.attacks.core import TextState

TEXTFOOLER_ANGULAR = 0.840845057  # TextAttack's TextFooler threshold (angular similarity)
TEXTFOOLER_COSINE = math.cos(math.pi * (1 - TEXTFOOLER_ANGULAR))  # = 0.8776...


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings (cached), batched over many texts."""

    def __init__(self, model_name: str = "all-minilm-l6-v2", batch_size: int = 128, max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        from eg_train.foundation.models.resolve import resolve_model

        location = resolve_model(model_name).location
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        self.model = AutoModel.from_pretrained(location, dtype=torch.float32).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self._memo = TextMemo(self._encode, lambda: self.model.config.hidden_size, 1 << 17)

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for rows, batch in length_sorted_batches(self.tokenizer, texts, self.max_length, self.batch_size):
            hidden = self.model(**batch).last_hidden_state.float()  # bf16 under autocast: pool in float32
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._memo(texts)


def window_text(state: TextState, index: int, size: int) -> str:
    """The ``size`` words around ``index`` (fewer at the text's ends), joined by spaces."""
    n = len(state.words)
    if n <= size:
        return " ".join(state.words)
    start = min(max(0, index - size // 2), n - size)
    return " ".join(state.words[start : start + size])


@dataclass
class SentenceSimilarity:
    """Keep candidates whose window embedding has cosine >= ``min_cosine`` with the current text's."""

    min_cosine: float = TEXTFOOLER_COSINE
    window: int = 15

    def texts(self, current: TextState, cands: Sequence[TextState], index: int) -> list[str]:
        """The windows to encode: the current text's first, then each candidate's."""
        return [window_text(current, index, self.window)] + [window_text(c, index, self.window) for c in cands]

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine of each candidate window (rows 1..) with the current one (row 0); rows are unit norm."""
        return embeddings[1:] @ embeddings[0]
