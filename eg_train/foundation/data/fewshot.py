"""Seeded, stratified few-shot sampling."""

from __future__ import annotations

import numpy as np

from eg_train.foundation.data.source import DataError, LabelledSplit


def sample_k_per_class(split: LabelledSplit, k: int, seed: int = 0) -> LabelledSplit:
    """Keep ``k`` examples of every class, chosen with ``seed``; order follows the source."""
    labels = np.asarray(split.dataset["label"])
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in range(len(split.label_names)):
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            raise DataError(
                f"{split.source}: class {split.label_names[c]!r} has {len(idx)} examples, fewer than k={k}"
            )
        keep.extend(rng.choice(idx, size=k, replace=False).tolist())
    keep.sort()
    return LabelledSplit(split.dataset.select(keep), split.label_names, split.source, split.skipped)
