"""The evaluation's model calls: class probabilities of token-id lists, and word-level IG.

Word encoding and word IG are the foundation's (:mod:`eg_train.foundation.encoding`,
:mod:`eg_train.foundation.attribution.word_ig`: captum ``LayerIntegratedGradients``, baseline
``[CLS] [PAD] ... [SEP]``); they are re-exported here for the evaluation modules. Everything runs
on the model's device (move the model to ``cuda`` first, see ``EvalConfig.device``); results come
back as CPU numpy arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from eg_train.foundation.attribution.word_ig import ig_baseline_token_id, word_integrated_gradients
from eg_train.foundation.device import module_device
from eg_train.foundation.encoding import EncodedText, encode_texts, pad_sequences

__all__ = ["EncodedText", "encode_texts", "ig_baseline_token_id", "predict_proba", "word_integrated_gradients"]


@torch.no_grad()
def predict_proba(
    model: nn.Module, ids: Sequence[Sequence[int]], pad_id: int | None, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities ``(n, num_labels)`` for lists of token ids (batched, eval mode).

    ``pad_id`` only fills masked positions, so a tokenizer without a pad token (None) pads with 0.
    """
    model.eval()
    dev = module_device(model)
    pad = 0 if pad_id is None else int(pad_id)
    # Batches of similar length waste little compute on padding; results are put back in order.
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: np.ndarray | None = None
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        chunk = [ids[i] for i in rows]
        input_ids = pad_sequences(chunk, pad)
        mask = pad_sequences([[1] * len(x) for x in chunk], 0)
        logits = model(input_ids=input_ids.to(dev), attention_mask=mask.to(dev)).logits
        probs = logits.float().softmax(-1).cpu().numpy()
        if out is None:
            out = np.zeros((len(ids), probs.shape[1]), dtype=np.float32)
        out[rows] = probs
    if out is None:
        raise ValueError("predict_proba needs at least one input")
    return out
