"""IG prior: captum Integrated Gradients of a CE-trained SLM (SPEC §2 "IG prior").

Attribution w.r.t. the word embeddings, baseline ``[CLS] [PAD]… [SEP]`` (special tokens kept),
target the gold label, summed over the hidden dimension and then over each word's sub-words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from eg_train.foundation.words import word_ids_from_offsets
from priors.base import PriorBatch, PriorResult, PriorMethod, register_prior


def word_scores_from_tokens(token_scores: np.ndarray, word_ids: list[int], n_words: int) -> np.ndarray:
    """Sum token scores per word; tokens mapped to -1 (special, punctuation) are dropped."""
    out = np.zeros(n_words, dtype=np.float64)
    for s, w in zip(token_scores, word_ids):
        if w >= 0:
            out[w] += s
    return out.astype(np.float32)


def _weights_fingerprint(location: str) -> str:
    import hashlib
    from pathlib import Path

    files = sorted(Path(location).glob("*.safetensors")) + sorted(Path(location).glob("*.bin"))
    if not files:
        return "n/a"
    stats = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha1("|".join(stats).encode()).hexdigest()[:12]


@register_prior("ig")
class IGPrior(PriorMethod):
    """Integrated Gradients of a fine-tuned sequence classifier, computed with captum."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        model_id: str,
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int = 256,
        max_length: int = 256,
    ) -> None:
        from captum.attr import LayerIntegratedGradients

        self.model = model.eval()
        self.tokenizer = tokenizer
        self._model_id = model_id
        self.n_steps = n_steps
        self.method = method
        self.internal_batch_size = internal_batch_size
        self.max_length = max_length
        self._lig = LayerIntegratedGradients(self._forward, model.get_input_embeddings())

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def config(self) -> dict[str, Any]:
        return {
            "model": self._model_id,
            # Retraining into the same folder must not reuse IG priors of the previous weights.
            "weights": _weights_fingerprint(self._model_id),
            "n_steps": self.n_steps,
            "method": self.method,
            "max_length": self.max_length,
            "baseline": "cls-pad-sep",
        }

    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        enc = self.tokenizer(
            batch.texts,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        ids, mask = enc["input_ids"], enc["attention_mask"]
        pad = self.tokenizer.pad_token_id
        baseline = torch.where(enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, pad))
        attr = self._lig.attribute(
            inputs=ids,
            baselines=baseline,
            target=torch.tensor(batch.labels),
            additional_forward_args=(mask,),
            n_steps=self.n_steps,
            method=self.method,
            internal_batch_size=self.internal_batch_size,
        )
        token_scores = attr.sum(dim=-1).detach().numpy()
        out = []
        for j, words in enumerate(batch.words):
            offsets = [tuple(o) for o in enc["offset_mapping"][j].tolist()]
            wid = word_ids_from_offsets(offsets, words.spans)
            wid = [w if mask[j, t] else -1 for t, w in enumerate(wid)]
            out.append(PriorResult(word_scores_from_tokens(token_scores[j], wid, len(words)), queries=self.n_steps))
        return out
