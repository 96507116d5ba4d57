"""IG prior: captum Integrated Gradients of a CE-trained SLM (docs/design.md#ig-prior).

Attribution w.r.t. the word embeddings, baseline ``[CLS] [PAD]… [SEP]`` (special tokens kept),
target the gold label, summed over the hidden dimension and then over each word's sub-words: the
foundation's :func:`~eg_train.foundation.attribution.word_ig.word_integrated_gradients`, the same
word IG the evaluation ranks words with.
"""

from __future__ import annotations

from typing import Any

from eg_train.foundation.attribution.word_ig import (
    ig_baseline_token_id,
    word_integrated_gradients,
    word_scores_from_tokens,
)
from eg_train.foundation.device import resolve_device
from eg_train.foundation.encoding import encode_texts, require_fast_tokenizer
from priors.base import BuildContext, PriorBatch, PriorMethod, PriorResult, register_prior

__all__ = ["IGPrior", "word_scores_from_tokens"]


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
    """Integrated Gradients of a fine-tuned sequence classifier, computed with captum.

    Args:
        model, tokenizer: the CE-trained classifier and its (fast) tokenizer.
        model_id: the checkpoint's name or folder (part of the cache key, with its weights' stats).
        n_steps, method: captum's quadrature.
        internal_batch_size: interpolated rows per forward (bounds memory).
        max_length: tokens per text (longer texts are truncated; their cut words score 0).
        batch_size: examples per captum call (sorted by length within a prior batch).
        device: where the model runs (``cpu``, ``cuda``, ``cuda:1``); None keeps the model where it is.
        baseline_token_id: the baseline token; default the tokenizer's pad token (a tokenizer
            without one is an error: id 0 would be a real token).
    """

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
        batch_size: int = 16,
        device: str | None = None,
        baseline_token_id: int | None = None,
        precision: str = "fp32",
    ) -> None:
        require_fast_tokenizer(tokenizer)
        # Fail at construction, before any example is attributed or any cache part written.
        self.baseline_token_id = ig_baseline_token_id(tokenizer, baseline_token_id)
        self.model = (model if device is None else model.to(resolve_device(device))).eval()
        self.tokenizer = tokenizer
        self._model_id = model_id
        self.n_steps = n_steps
        self.method = method
        self.internal_batch_size = internal_batch_size
        self.max_length = max_length
        self.batch_size = batch_size
        from eg_train.foundation.device import module_device, resolve_precision

        self.precision = resolve_precision(precision, module_device(self.model))

    @classmethod
    def from_config(cls, cfg: Any, ctx: BuildContext) -> IGPrior:
        """From ``PriorsConfig``: ``slm_checkpoint``, ``ig_steps``, ``device``."""
        from eg_train.foundation.models import load_sequence_classifier

        if not cfg.slm_checkpoint:
            raise ValueError(
                "the ig prior needs slm_checkpoint: a classifier fine-tuned with plain cross-entropy "
                "(e.g. the model/ folder of an `eg-train fit` run with prior: none)"
            )
        model, tok = load_sequence_classifier(cfg.slm_checkpoint, ctx.label_names)
        return cls(model, tok, model_id=cfg.slm_checkpoint, n_steps=cfg.ig_steps, device=cfg.device,
                   precision=getattr(cfg, "dtype", "fp32"))

    def config(self) -> dict[str, Any]:
        # Not the device: scores agree across devices up to float rounding.
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return {
            "model": self._model_id,
            # Retraining into the same folder must not reuse IG priors of the previous weights.
            "weights": _weights_fingerprint(self._model_id),
            "n_steps": self.n_steps,
            "method": self.method,
            "max_length": self.max_length,
            "baseline": "cls-pad-sep" if self.baseline_token_id == pad else f"cls-token{self.baseline_token_id}-sep",
            # bf16 and fp32 priors never share a cache entry (fp32 keeps the earlier keys).
            **({"dtype": "bfloat16"} if self.precision == "bf16" else {}),
        }

    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        encoded = encode_texts(self.tokenizer, batch.texts, self.max_length)
        for e, words in zip(encoded, batch.words):
            if e.n_words != len(words):
                raise ValueError(f"IG prior: a text has {e.n_words} words after encoding, {len(words)} in the batch")
        scores = word_integrated_gradients(
            self.model,
            encoded,
            batch.labels,
            self.baseline_token_id,
            n_steps=self.n_steps,
            method=self.method,
            batch_size=self.batch_size,
            internal_batch_size=self.internal_batch_size,
            precision=self.precision,
        )
        return [PriorResult(s, queries=self.n_steps) for s in scores]
