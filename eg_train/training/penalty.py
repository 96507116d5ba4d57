"""A targeted word penalty (right for the right reasons, Ross et al. 2017): ``lambda * mean_rows
sum_{w in penalty_words} a_w^2``.

``a_w`` is word ``w``'s *input-gradient x input* attribution of the log-probabilities summed over
the classes (RRR's choice: the penalty then asks the model to be insensitive to the word whatever
class it would argue for, not only for the gold one), i.e. ``sum_{t in w} <d(sum_k log p_k)/de_t,
e_t>`` over the word's tokens ``t`` with ``e_t`` their word embeddings. One forward and one
(double) backward per step on the rows that have penalty words; averaged over those rows.

Input-gradient x input rather than IG mass: it is RRR's published form, costs one path point
instead of ``ig.steps``, and its gradient is exact (no quadrature). The words come from the data
(``penalty_words`` of a data file, :data:`eg_train.foundation.data.source.PENALTY_COLUMN`): the
gold artefact positions of a shortcut dataset (the *oracle*, an upper bound no user has), or the
features a shortcut audit confirmed (a targeted penalty a user can build).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from eg_train.foundation.attribution import word_attributions


def input_x_gradient(model, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                     create_graph: bool = True) -> Tensor:
    """Token attributions ``<grad_e sum_k log p_k, e>`` of a sequence classifier, ``[b, t]``.

    With ``create_graph`` the result is differentiable in the model's weights (to train on it).
    Rows are independent, so one backward of the batch sum gives every row's gradient.
    """
    emb = model.get_input_embeddings()(input_ids)
    if not emb.requires_grad:  # frozen embeddings (LoRA): the path starts at its own leaf
        emb = emb.detach().requires_grad_(True)
    logits = model(inputs_embeds=emb, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
    total = F.log_softmax(logits.float(), dim=-1).sum()
    (grad,) = torch.autograd.grad(total, emb, create_graph=create_graph)
    return (grad * emb).sum(-1)


def word_penalty(word_attr: Tensor, penalty_mask: Tensor) -> Tensor:
    """``mean_rows sum_w mask_w * a_w^2`` over the rows with at least one penalised word (0 if none)."""
    mask = penalty_mask.to(word_attr.dtype)
    rows = penalty_mask.any(-1)
    if not bool(rows.any()):
        return word_attr.new_zeros(())
    per_row = (word_attr.pow(2) * mask).sum(-1)
    return per_row[rows].mean()


def penalty_loss(model, batch: dict[str, Tensor], create_graph: bool = True) -> tuple[Tensor, int]:
    """The word penalty of ``batch`` (its ``penalty_mask``, ``[b, w]``) and how many rows it covers."""
    mask = batch["penalty_mask"] & batch["word_mask"]  # a truncated word has no token to penalise
    rows = torch.nonzero(mask.any(-1)).flatten()
    if len(rows) == 0:
        return batch["input_ids"].new_zeros((), dtype=torch.float32), 0
    types = batch.get("token_type_ids")
    token_attr = input_x_gradient(model, batch["input_ids"][rows], batch["attention_mask"][rows],
                                  None if types is None else types[rows], create_graph=create_graph)
    words = word_attributions(token_attr, batch["word_ids"][rows], mask.shape[1])
    return word_penalty(words, mask[rows]), len(rows)


__all__ = ["input_x_gradient", "penalty_loss", "word_penalty"]
