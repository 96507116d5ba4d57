"""Comprehensiveness and sufficiency (ERASER, DeYoung et al. 2020) with AOPC over removal bins.

For an example with target class ``y`` (default: the model's own prediction, as in ERASER) and
its words ranked by the model's own word-level IG attribution to ``y`` (descending, ties by
position), for each bin ``b`` (fraction of words) ``k_b = max(1, ceil(b * d))`` top words:

    comp_b = p(y | x) - p(y | x without the top-k_b words)
    suff_b = p(y | x) - p(y | only the top-k_b words)

and ``AOPC = mean_b``. ``d`` counts the words that own tokens after truncation. Removing a word
drops its token ids from ``input_ids``; special tokens and punctuation-only tokens are always
kept (the priors' ``x ⊙ m`` keeps punctuation too, docs/design.md#words). Working on ids avoids any
decode → re-tokenise drift. Higher comprehensiveness and lower sufficiency are better.

ERASER's paper writes AOPC with ``1/(|B|+1)`` and a ``k = 0`` term that is 0 for
comprehensiveness; this module averages over the |B| bins (docs/design.md#faithfulness).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from eg_train.evaluation.attribution import predict_proba
from eg_train.foundation.attribution.word_ig import ig_baseline_token_id, word_integrated_gradients
from eg_train.foundation.encoding import EncodedText, encode_texts

log = logging.getLogger(__name__)

DEFAULT_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)


@dataclass
class FaithfulnessResult:
    """Mean AOPC scores plus per-bin means and per-example values (all fractions in [-1, 1])."""

    comprehensiveness: float
    sufficiency: float
    per_bin: dict[str, dict[str, float]]
    bins: tuple[float, ...]
    targets: list[int]
    per_example_comprehensiveness: list[float] = field(repr=False)
    per_example_sufficiency: list[float] = field(repr=False)
    attributions: list[np.ndarray] = field(repr=False)

    def summary(self) -> dict:
        """JSON-able summary (no per-example arrays)."""
        return {
            "n": len(self.targets),
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "bins": list(self.bins),
            "per_bin": self.per_bin,
        }


def top_k_words(scores: np.ndarray, candidates: Sequence[int], k: int) -> list[int]:
    """The ``k`` candidate words with the highest score (stable: ties go to the earlier word)."""
    cand = list(candidates)
    order = sorted(range(len(cand)), key=lambda i: (-float(scores[cand[i]]), cand[i]))
    return sorted(cand[i] for i in order[:k])


def remove_words(enc: EncodedText, drop: set[int]) -> list[int]:
    """Token ids of ``enc`` without the tokens of the words in ``drop`` (specials/punctuation kept)."""
    return [t for t, w in zip(enc.input_ids, enc.word_ids) if w < 0 or w not in drop]


def bin_sizes(n_words: int, bins: Sequence[float]) -> list[int]:
    """``k_b = max(1, ceil(b * d))`` capped at ``d`` (0 when the text has no word)."""
    if n_words == 0:
        return [0 for _ in bins]
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, whose ceil would be 4.
    return [min(n_words, max(1, math.ceil(round(b * n_words, 9)))) for b in bins]


def faithfulness(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    labels: Sequence[int] | None = None,
    target: str = "predicted",
    bins: Sequence[float] = DEFAULT_BINS,
    attributions: Sequence[np.ndarray] | None = None,
    n_steps: int = 50,
    batch_size: int = 16,
    max_length: int = 128,
    ig_output: str = "logits",
    baseline_token_id: int | None = None,
) -> FaithfulnessResult:
    """Comprehensiveness / sufficiency AOPC of the model's own IG ranking (see module docstring).

    ``target`` is ``"predicted"`` (ERASER) or ``"gold"`` (then ``labels`` is required).
    ``attributions`` (one score per word of ``split_words(text)``) replaces the IG ranking.
    ``baseline_token_id`` overrides the IG baseline token (default: the tokenizer's pad token;
    a tokenizer without one is an error, see :func:`ig_baseline_token_id`). Everything runs on the
    model's device (move the model to ``cuda`` first); results are CPU arrays.
    """
    if not texts:
        raise ValueError("faithfulness needs at least one text")
    if any(not 0 < b <= 1 for b in bins):
        raise ValueError(f"bins must be fractions in (0, 1], got {list(bins)}")
    if target not in ("predicted", "gold"):
        raise ValueError(f"target must be 'predicted' or 'gold', got {target!r}")
    if target == "gold" and (labels is None or len(labels) != len(texts)):
        raise ValueError("target='gold' needs one label per text")
    pad_id = tokenizer.pad_token_id
    # Checked before any model call: a tokenizer without a pad token has no IG baseline token.
    baseline_id = ig_baseline_token_id(tokenizer, baseline_token_id) if attributions is None else None
    encoded = encode_texts(tokenizer, texts, max_length)
    full = predict_proba(model, [e.input_ids for e in encoded], pad_id, batch_size * 4)
    targets = full.argmax(-1).tolist() if target == "predicted" else [int(y) for y in labels]
    if attributions is None:
        attributions = []
        for s in tqdm(range(0, len(encoded), batch_size), desc="IG attributions", leave=False):
            attributions.extend(
                word_integrated_gradients(
                    model, encoded[s : s + batch_size], targets[s : s + batch_size], baseline_id,
                    n_steps=n_steps, batch_size=batch_size, output=ig_output,
                )
            )
    elif len(attributions) != len(texts):
        raise ValueError(f"{len(attributions)} attribution vectors for {len(texts)} texts")

    variants: list[list[int]] = []
    owners: list[int] = []
    for i, enc in enumerate(encoded):
        scores = np.asarray(attributions[i], dtype=np.float64)
        if scores.shape != (enc.n_words,):
            raise ValueError(f"text {i}: attribution has shape {scores.shape}, the text has {enc.n_words} words")
        cand = enc.words_with_tokens()
        for k in bin_sizes(len(cand), bins):
            top = set(top_k_words(scores, cand, k))
            variants.append(remove_words(enc, top))  # comprehensiveness: x without top-k
            variants.append(remove_words(enc, set(cand) - top))  # sufficiency: top-k only
            owners.append(i)
    probs = predict_proba(model, variants, pad_id, batch_size * 4)

    nb = len(bins)
    p_full = full[np.arange(len(encoded)), targets]
    p_var = probs[np.arange(len(variants)), np.repeat(targets, 2 * nb)].reshape(len(encoded), nb, 2)
    comp = p_full[:, None] - p_var[:, :, 0]
    suff = p_full[:, None] - p_var[:, :, 1]
    per_bin = {
        f"{b:g}": {"comprehensiveness": float(comp[:, j].mean()), "sufficiency": float(suff[:, j].mean())}
        for j, b in enumerate(bins)
    }
    return FaithfulnessResult(
        comprehensiveness=float(comp.mean()),
        sufficiency=float(suff.mean()),
        per_bin=per_bin,
        bins=tuple(bins),
        targets=list(targets),
        per_example_comprehensiveness=comp.mean(1).tolist(),
        per_example_sufficiency=suff.mean(1).tolist(),
        attributions=[np.asarray(a, dtype=np.float32) for a in attributions],
    )
