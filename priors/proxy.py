"""Sequence-classifier scorer: the :class:`~priors.scorer.LabelScorer` interface over an
``AutoModelForSequenceClassification`` (docs/design.md#focus-lime: the cheap proxy).

``log_prob(texts, labels)`` returns ``log p(label | text)``; ``queries`` counts the texts scored.
A causal-LM proxy needs no class of its own: it is a ``LabelScorer`` (e.g. plain template).

Long texts exceed an encoder's position limit (512 for BERT), so a text can be read in chunks
(sentences, or token windows); chunk logits are pooled per class (log-sum-exp: one confident
chunk decides, as in multiple-instance learning; or mean). Chunk logits are memoised by chunk
text: perturbations that remove whole units, or leave most sentences untouched, reuse the
untouched chunks. ``chunks_encoded`` / ``tokens_encoded`` count the work actually done.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

CHUNKINGS = ("none", "sentence", "window")
POOLINGS = ("logsumexp", "mean", "max")
# A sentence ends at terminal punctuation followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_HAS_WORD = re.compile(r"\w")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (terminal punctuation or newline); pieces without a word are dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if _HAS_WORD.search(s)]


class ClassifierScorer:
    """Batched ``log p(label | text)`` from a sequence classifier, optionally chunked.

    Args:
        model: an ``AutoModelForSequenceClassification`` (put in eval mode, not trained here).
        tokenizer: its (fast) tokenizer.
        model_id: name recorded in :meth:`config` (prior cache key).
        chunking: ``"none"`` (truncate at ``max_length``), ``"sentence"`` (one chunk per
            sentence, each truncated), ``"window"`` (consecutive windows of ``max_length`` tokens).
        pooling: how chunks combine: ``"logsumexp"`` / ``"mean"`` of the logits per class before
            the softmax, or ``"max"`` over chunks of each chunk's ``log p(label)``.
        max_length: tokens per encoder input (special tokens included).
        batch_size: chunks per forward pass.
        cache_size: memoised chunks (LRU); 0 disables the memo.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        model_id: str = "",
        chunking: str = "none",
        pooling: str = "logsumexp",
        max_length: int = 128,
        batch_size: int = 64,
        cache_size: int = 200_000,
    ) -> None:
        if chunking not in CHUNKINGS:
            raise ValueError(f"chunking must be one of {CHUNKINGS} (got {chunking!r})")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS} (got {pooling!r})")
        if max_length < 4:
            raise ValueError(f"max_length must be >= 4 tokens (got {max_length})")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.chunking = chunking
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.num_labels = int(model.config.num_labels)
        self.label_names = [model.config.id2label[i] for i in range(self.num_labels)]
        self.queries = 0  # texts scored (the budget unit, as for LabelScorer)
        self.truncated = 0
        self.chunks_encoded = 0  # encoder inputs actually run (memo misses)
        self.tokens_encoded = 0
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._n_special = tokenizer.num_special_tokens_to_add(pair=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def config(self) -> dict[str, Any]:
        """Everything that changes the scores (recorded in the prior cache's config)."""
        return {
            "model": self.model_id,
            "kind": "sequence-classifier",
            "labels": self.label_names,
            "chunking": self.chunking,
            "pooling": self.pooling,
            "max_length": self.max_length,
        }

    def clear_memo(self) -> None:
        self._memo.clear()

    def _chunks(self, text: str) -> list[str]:
        if self.chunking == "sentence":
            return split_sentences(text) or [text.strip()]
        if self.chunking == "window":
            body = self.max_length - self._n_special
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            offs = enc["offset_mapping"]
            if not offs:
                return [text.strip()]
            # Cut at token boundaries, carried back to character offsets so chunks stay text.
            return [text[offs[s][0] : offs[min(s + body, len(offs)) - 1][1]] for s in range(0, len(offs), body)]
        return [text]

    @torch.inference_mode()
    def _run(self, chunks: list[str]) -> dict[str, np.ndarray]:
        """Encoder logits of distinct chunks (sorted by length: less padding per batch)."""
        todo = sorted(set(chunks), key=len)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            enc = self.tokenizer(part, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            lengths = enc["attention_mask"].sum(dim=1)
            self.truncated += int((lengths >= self.max_length).sum())
            self.tokens_encoded += int(lengths.sum())
            self.chunks_encoded += len(part)
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float().cpu().numpy()
            out.update(zip(part, logits))
        return out

    def _chunk_logits(self, chunks: list[str]) -> dict[str, np.ndarray]:
        """Logits of every chunk, through the LRU memo when it is enabled."""
        if self.cache_size <= 0:
            return self._run(chunks)
        self._memo.update(self._run([c for c in chunks if c not in self._memo]))
        found = {}
        for c in chunks:
            self._memo.move_to_end(c)
            found[c] = self._memo[c]
        while len(self._memo) > self.cache_size:
            self._memo.popitem(last=False)
        return found

    def log_prob(self, texts: Sequence[str], labels: Sequence[int]) -> np.ndarray:
        """``log p(label_i | text_i)`` (chunk logits pooled per class, then log-softmax)."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        bad = [y for y in labels if not 0 <= int(y) < self.num_labels]
        if bad:
            raise ValueError(f"label id {bad[0]} outside the classifier's {self.num_labels} labels")
        self.queries += len(texts)
        per_text = [self._chunks(t) for t in texts]
        # One encoder pass over every new chunk of the whole call (batches fill up better).
        logits = self._chunk_logits([c for cs in per_text for c in cs])
        out = np.empty(len(texts), dtype=np.float64)
        for i, (cs, y) in enumerate(zip(per_text, labels)):
            z = np.stack([logits[c] for c in cs]).astype(np.float64)
            if self.pooling == "max":
                out[i] = float(np.max(z[:, int(y)] - np.logaddexp.reduce(z, axis=1)))
                continue
            pooled = np.logaddexp.reduce(z, axis=0) if self.pooling == "logsumexp" else z.mean(axis=0)
            out[i] = pooled[int(y)] - np.logaddexp.reduce(pooled)
        return out


def scorer_config(scorer, model_id: str | None = None) -> dict[str, Any]:
    """A JSON-able description of any scorer (``ClassifierScorer`` or ``LabelScorer``).

    ``model_id`` overrides the recorded model name (a causal LM's ``name_or_path`` may be a
    machine-specific cache directory, which would make cache keys differ between machines).
    """
    if hasattr(scorer, "config"):
        cfg = dict(scorer.config())
        if model_id is not None:
            cfg["model"] = model_id
        return cfg
    template = getattr(scorer, "template", None)
    return {
        "kind": "causal-lm",
        "model": model_id or type(scorer).__name__,
        "template": None if template is None else template.prefix + template.body + template.answer,
        "labels": list(getattr(scorer, "label_names", [])),
        "renormalise": getattr(scorer, "renormalise", None),
        "max_text_tokens": getattr(scorer, "max_text_tokens", None),
    }
