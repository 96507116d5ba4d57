"""Label continuations as a prefix tree, for scoring many labels on one body's KV cache.

Scoring labels ``y_1..y_K`` after a body costs, naively, ``K`` rows. Sharing the body is the
first saving (its keys/values are computed once); sharing the label tokens is the second:
labels with a common token prefix (``card arrival`` / ``card linking``…) share those tokens.
The tree's *nodes* are the distinct label prefixes that predict a further token; node ``i``
holds the last token of its prefix at offset ``depth[i]`` after the body and attends to its
ancestors only, so all continuations of a body run as one row with a tree-shaped mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class LabelTree:
    """The label set's continuations (see module docstring).

    ``labels``: label ids in output order; ``first``: each label's first token (predicted by the
    body's last position); ``tokens`` / ``depth``: each node's input token and its offset after
    the body; ``ancestors[i, j]``: node ``j`` is node ``i`` or one of its ancestors;
    ``slot`` / ``node`` / ``target``: label ``slot`` gets ``log p(target | node)`` added, one
    entry per label token after the first.
    """

    labels: tuple[int, ...]
    first: np.ndarray
    tokens: np.ndarray
    depth: np.ndarray
    ancestors: np.ndarray
    slot: np.ndarray
    node: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)


def build_label_tree(label_ids: Sequence[Sequence[int]], labels: Sequence[int]) -> LabelTree:
    """The tree of the continuations ``label_ids[k]`` for ``k`` in ``labels``."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    depth: list[int] = []
    slot, node, target = [], [], []
    for s, k in enumerate(labels):
        seq = tuple(label_ids[k])
        for t in range(1, len(seq)):  # node for the prefix seq[:t] predicts seq[t]
            prefix = seq[:t]
            if prefix not in index:
                index[prefix] = len(tokens)
                tokens.append(seq[t - 1])
                depth.append(t - 1)
            slot.append(s)
            node.append(index[prefix])
            target.append(seq[t])
    prefixes = list(index)
    n = len(prefixes)
    ancestors = np.zeros((n, n), dtype=bool)
    for i, p in enumerate(prefixes):
        for t in range(1, len(p) + 1):
            ancestors[i, index[p[:t]]] = True
    return LabelTree(
        labels=tuple(labels),
        first=np.array([label_ids[k][0] for k in labels], dtype=np.int64),
        tokens=np.array(tokens, dtype=np.int64),
        depth=np.array(depth, dtype=np.int64),
        ancestors=ancestors,
        slot=np.array(slot, dtype=np.int64),
        node=np.array(node, dtype=np.int64),
        target=np.array(target, dtype=np.int64),
    )
