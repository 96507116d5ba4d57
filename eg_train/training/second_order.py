"""Which weights the alignment's second-order gradient reaches (``model.align_top_layers``).

The alignment loss is a function of the IG's input gradients, so its gradient w.r.t. a weight
runs through the double backward: per linear layer of each IG node, 4 matrix products on top of
the IG's forward and first-order gradient (docs/benchmarks.md#aligned-step-profile). Holding the
embeddings and the lower transformer blocks constant *in the IG's graph* leaves the IG itself
exact (the same values, the same attribution) and the CE gradient of every weight untouched;
only the alignment's gradient of those lower weights is dropped, and with it most of their
double backward: a lower block's gradient chain is still differentiated w.r.t. the gradient
flowing through it (1 product per linear layer), not w.r.t. its weights or its activations.

That is an approximation of the alignment gradient, declared and measured: ``scripts/bench_train.py``
reports its cost and the cosine of the truncated alignment gradient with the exact one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

from eg_train.foundation.errors import ConfigError


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks: the ``ModuleList`` with ``config.num_hidden_layers``
    entries (BERT's ``encoder.layer``, DistilBERT's ``transformer.layer``, LLaMA's ``layers``)."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and n:
            return module
    raise ConfigError(f"model.align_top_layers: found no list of {n} transformer blocks in {type(model).__name__}; "
                      "leave align_top_layers unset (null) for this model")


def lower_parameters(model: nn.Module, top_layers: int) -> list[nn.Parameter]:
    """The trainable parameters below the top ``top_layers`` blocks: those registered before the
    first block (the embeddings) and those of the lower blocks. The blocks' outputs feed the head
    (pooler, classifier), which is never among them."""
    blocks = transformer_blocks(model)
    if not 0 <= top_layers <= len(blocks):
        raise ConfigError(f"model.align_top_layers must be in [0, {len(blocks)}] for this model, got {top_layers}")
    in_blocks = {id(p) for p in blocks.parameters()}
    lower = {id(p) for block in blocks[: len(blocks) - top_layers] for p in block.parameters()}
    out, before_first_block = [], True
    for p in model.parameters():
        if id(p) in in_blocks:
            before_first_block = False
        if p.requires_grad and (id(p) in lower or (before_first_block and id(p) not in in_blocks)):
            out.append(p)
    return out


@contextmanager
def held_constant(params: list[nn.Parameter]) -> Iterator[None]:
    """Within the block, operations record no gradient edge to ``params`` (their ``requires_grad``
    is off, then restored): a graph built here treats them as constants."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
