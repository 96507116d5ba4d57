"""Word-level Integrated Gradients of a sequence classifier, computed with captum (the reference).

Tokens are attributed w.r.t. the input (word) embeddings with ``LayerIntegratedGradients``; the
baseline is ``[CLS] [PAD] ... [SEP]`` (special tokens kept, SPEC §2), attributions are summed over
the hidden size and then over the sub-word tokens of each word
(:func:`eg_train.foundation.words.word_ids_from_offsets`). Special and punctuation-only tokens carry none.
Examples are padded and batched; padding equals the baseline so it gets exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from eg_train.foundation.words import split_words, word_ids_from_offsets


@dataclass(frozen=True)
class EncodedText:
    """One tokenised text: token ids, each token's word index (-1: none) and special-token flags."""

    input_ids: tuple[int, ...]
    word_ids: tuple[int, ...]
    special: tuple[bool, ...]
    n_words: int  # words of ``split_words(text)``, including any cut off by truncation

    def words_with_tokens(self) -> list[int]:
        """Indices of the words that own at least one token (truncated words own none)."""
        return sorted({w for w in self.word_ids if w >= 0})


def encode_texts(tokenizer, texts: Sequence[str], max_length: int = 128) -> list[EncodedText]:
    """Tokenise with offsets and map every token to its word (needs a fast tokenizer)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("word attributions need a fast tokenizer (offset mapping); got a slow one")
    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    out = []
    for i, text in enumerate(texts):
        spans = split_words(text).spans
        word_ids = word_ids_from_offsets(enc["offset_mapping"][i], spans)
        special = [bool(s) for s in enc["special_tokens_mask"][i]]
        word_ids = [-1 if s else w for w, s in zip(word_ids, special)]
        out.append(EncodedText(tuple(enc["input_ids"][i]), tuple(word_ids), tuple(special), len(spans)))
    return out


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists: ``(input_ids, attention_mask)``."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids, mask


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_proba(
    model: nn.Module, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities ``(n, num_labels)`` for lists of token ids (batched, eval mode)."""
    model.eval()
    dev = _device(model)
    # Batches of similar length waste little compute on padding; results are put back in order.
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: np.ndarray | None = None
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        input_ids, mask = pad_batch([ids[i] for i in rows], pad_id)
        probs = model(input_ids=input_ids.to(dev), attention_mask=mask.to(dev)).logits.float().softmax(-1).cpu().numpy()
        if out is None:
            out = np.zeros((len(ids), probs.shape[1]), dtype=np.float32)
        out[rows] = probs
    if out is None:
        raise ValueError("predict_proba needs at least one input")
    return out


def word_integrated_gradients(
    model: nn.Module,
    encoded: Sequence[EncodedText],
    targets: Sequence[int],
    pad_id: int,
    n_steps: int = 50,
    batch_size: int = 16,
    output: str = "logits",
    return_delta: bool = False,
):
    """IG per word (list of float32 arrays, one score per word of the text) to ``targets``.

    ``output`` chooses the attributed scalar: the target ``logits`` or ``probs``. With
    ``return_delta`` also return captum's per-example convergence delta (completeness error).
    """
    from captum.attr import LayerIntegratedGradients

    if output not in ("logits", "probs"):
        raise ValueError(f"output must be 'logits' or 'probs', got {output!r}")
    model.eval()
    dev = _device(model)

    def forward(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.softmax(-1) if output == "probs" else logits

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    results: list[np.ndarray | None] = [None] * len(encoded)
    deltas: list[float] = [0.0] * len(encoded)
    # Batches of similar length: every path step of a padded token costs a forward and a backward.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        chunk = [encoded[i] for i in rows]
        input_ids, mask = pad_batch([e.input_ids for e in chunk], pad_id)
        special = torch.zeros_like(input_ids, dtype=torch.bool)
        for i, e in enumerate(chunk):
            special[i, : len(e.special)] = torch.as_tensor(e.special)
        # Baseline [CLS] [PAD] ... [SEP]: special tokens and padding stay, everything else is PAD.
        baseline = torch.where(special | (mask == 0), input_ids, torch.full_like(input_ids, pad_id))
        target = torch.as_tensor([targets[i] for i in rows], dtype=torch.long)
        attr, delta = lig.attribute(
            inputs=input_ids.to(dev),
            baselines=baseline.to(dev),
            target=target.to(dev),
            additional_forward_args=(mask.to(dev),),
            n_steps=n_steps,
            internal_batch_size=max(1, batch_size) * n_steps,
            return_convergence_delta=True,
        )
        token_attr = attr.sum(-1).detach().float().cpu().numpy()
        for i, (row, e) in enumerate(zip(rows, chunk)):
            scores = np.zeros(e.n_words, dtype=np.float32)
            for t, w in enumerate(e.word_ids):
                if w >= 0:
                    scores[w] += token_attr[i, t]
            results[row] = scores
        for row, d in zip(rows, delta.detach().cpu().reshape(-1).tolist()):
            deltas[row] = d
    return (results, deltas) if return_delta else results
