"""Word-level Integrated Gradients of a sequence classifier, computed with captum (the reference).

The one offline word IG of the project: the IG prior (:mod:`priors.methods.ig`), the evaluation's
faithfulness ranking and the report's heatmaps all call :func:`word_integrated_gradients`.

- Tokens are attributed w.r.t. the input (word) embeddings with captum's
  ``LayerIntegratedGradients``, to the target label's logit (or probability).
- The baseline is ``[CLS] [PAD] ... [SEP]`` (docs/design.md#ig-prior): special tokens are kept, every other token
  is replaced by the *baseline token*, the tokenizer's PAD (:func:`ig_baseline_token_id`).
- Token attributions are summed over the hidden size, then over the sub-word tokens of each word
  (:mod:`eg_train.foundation.encoding`); special and punctuation-only tokens carry none.
- Examples are sorted by length and batched; padding equals the baseline, so it gets exactly 0.
- Inputs go to the model's device and results come back to the CPU: move the model to run on
  ``cuda``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from eg_train.foundation.device import at_least_float32, autocast, module_device, resolve_precision
from eg_train.foundation.encoding import EncodedText, pad_encoded

OUTPUTS = ("logits", "probs")


class BaselineTokenError(ValueError):
    """The tokenizer has no pad token, so the IG baseline token must be named explicitly."""


def ig_baseline_token_id(tokenizer, override: int | None = None) -> int:
    """The token id that fills the IG baseline ``[CLS] [PAD] ... [SEP]``: the tokenizer's pad token.

    A tokenizer without a pad token (GPT-2, Llama) is an error rather than a silent id 0, which is
    a real token there (``!`` in GPT-2). Pass ``override`` (e.g. ``tokenizer.unk_token_id`` or
    ``tokenizer.eos_token_id``) to choose the baseline token explicitly, or set
    ``tokenizer.pad_token`` before building the attribution.
    """
    if override is not None:
        if not 0 <= int(override) < len(tokenizer):
            raise BaselineTokenError(f"IG baseline token id {override} is outside the vocabulary (size {len(tokenizer)})")
        return int(override)
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        raise BaselineTokenError(
            f"{getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)}: the tokenizer has no pad token, and the "
            "IG baseline [CLS] [PAD] ... [SEP] needs one (id 0 would be a real token). Set tokenizer.pad_token "
            "(e.g. to its unk or eos token) or pass the baseline token id explicitly (baseline_token_id)"
        )
    return int(pad)


def word_integrated_gradients(
    model: nn.Module,
    encoded: Sequence[EncodedText],
    targets: Sequence[int],
    baseline_token_id: int,
    *,
    n_steps: int = 50,
    method: str = "gausslegendre",
    batch_size: int = 16,
    internal_batch_size: int | None = None,
    output: str = "logits",
    return_delta: bool = False,
    precision: str = "fp32",
):
    """IG per word (a list of float32 arrays, ``n_words`` scores each) of ``model`` to ``targets``.

    Args:
        encoded: tokenised texts (:func:`eg_train.foundation.encoding.encode_texts`).
        baseline_token_id: the token replacing every non-special token in the baseline
            (:func:`ig_baseline_token_id`); it also pads the batches.
        n_steps, method: captum's quadrature (``gausslegendre``, ``riemann_trapezoid``, ...).
        batch_size: examples per captum call (sorted by length, so padding is small).
        internal_batch_size: interpolated rows per forward; None runs all steps of a batch at once.
        output: the attributed scalar, the target ``logits`` or ``probs``.
        return_delta: also return captum's per-example convergence delta (completeness error).
        precision: ``bf16`` runs the model's forward under bf16 autocast (its matrix products;
            the attributed logits, the gradients and the sums stay float32); ``fp32`` as before.
    """
    from captum.attr import LayerIntegratedGradients

    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if baseline_token_id is None:
        raise BaselineTokenError(
            "baseline_token_id is None (a tokenizer without a pad token?); pass ig_baseline_token_id(tokenizer, ...)"
        )
    if len(targets) != len(encoded):
        raise ValueError(f"{len(targets)} targets for {len(encoded)} encoded texts")
    model.eval()
    dev = module_device(model)

    # No token_type_ids: single texts have all-zero types (the models' default), and some
    # classifiers (DistilBERT) take no such argument.
    bf16 = resolve_precision(precision, dev) == "bf16"

    def forward(input_ids, attention_mask):
        if bf16:
            with autocast("bf16", dev):
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            logits = at_least_float32(logits)
        else:  # float() also for a caller's own autocast (the evaluation's precision)
            logits = at_least_float32(model(input_ids=input_ids, attention_mask=attention_mask).logits)
        return logits.softmax(-1) if output == "probs" else logits

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    results: list[np.ndarray | None] = [None] * len(encoded)
    deltas: list[float] = [0.0] * len(encoded)
    # Batches of similar length: every path step of a padded token costs a forward and a backward.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    for s in range(0, len(order), max(1, batch_size)):
        rows = order[s : s + max(1, batch_size)]
        chunk = [encoded[i] for i in rows]
        batch = pad_encoded(chunk, baseline_token_id)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        # Special tokens (and padding, flagged special by pad_encoded) stay; all else is the baseline token.
        keep = batch["special_tokens_mask"].bool()
        baseline = torch.where(keep, ids, torch.full_like(ids, baseline_token_id))
        attributed = lig.attribute(
            inputs=ids.to(dev),
            baselines=baseline.to(dev),
            target=torch.as_tensor([int(targets[i]) for i in rows], dtype=torch.long, device=dev),
            additional_forward_args=(mask.to(dev),),
            n_steps=n_steps,
            method=method,
            internal_batch_size=internal_batch_size or len(rows) * n_steps,
            return_convergence_delta=return_delta,
        )
        attr, delta = attributed if return_delta else (attributed, None)
        token_attr = attr.detach().sum(-1).double().cpu().numpy()
        for i, (row, e) in enumerate(zip(rows, chunk)):
            results[row] = word_scores_from_tokens(token_attr[i, : len(e.word_ids)], e.word_ids, e.n_words)
        if delta is not None:
            for row, d in zip(rows, delta.detach().cpu().reshape(-1).tolist()):
                deltas[row] = d
    return (results, deltas) if return_delta else results


def word_scores_from_tokens(token_scores: np.ndarray, word_ids: Sequence[int], n_words: int) -> np.ndarray:
    """Sum token scores per word (float64 sums, float32 result); tokens mapped to -1 are dropped."""
    wid = np.asarray(word_ids, dtype=np.int64)
    scores = np.asarray(token_scores, dtype=np.float64)[: len(wid)]
    valid = wid >= 0
    return np.bincount(wid[valid], weights=scores[valid], minlength=n_words).astype(np.float32)


__all__ = ["BaselineTokenError", "OUTPUTS", "ig_baseline_token_id", "word_integrated_gradients", "word_scores_from_tokens"]
