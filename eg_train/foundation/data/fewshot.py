"""Seeded, stratified few-shot sampling, and the one spec of a training sample shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eg_train.foundation.data.source import DataError, DataSpec, LabelledSplit, load_split


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


@dataclass
class SampleSpec:
    """The training examples of an experiment: a split of a dataset, optionally ``k_shot`` per class.

    The prior stage and the training stage both build their examples from one ``SampleSpec``
    (:meth:`load`), so the cached priors cover exactly the examples that are trained on.

    Attributes:
        data: where the dataset comes from.
        split: the split the examples are drawn from.
    """

    data: DataSpec = field(default_factory=lambda: DataSpec(preset="banking77"))
    k_shot: int | None = None
    seed: int = 0
    split: str = "train"

    def load_full(self) -> LabelledSplit:
        """The whole split (before sampling)."""
        return load_split(self.data, self.split)

    def sample(self, full: LabelledSplit) -> LabelledSplit:
        """The training examples drawn from ``full`` (the split itself when ``k_shot`` is None)."""
        return sample_k_per_class(full, self.k_shot, self.seed) if self.k_shot else full

    def load(self) -> LabelledSplit:
        """The training examples."""
        return self.sample(self.load_full())


def carve_per_class(split: LabelledSplit, n: int, seed: int, exclude: set[str] = frozenset()) -> tuple[LabelledSplit, LabelledSplit]:
    """Split off up to ``n`` examples per class (seeded) not in ``exclude``: returns (carved, rest)."""
    ids = list(split.dataset["id"])
    labels = np.asarray(split.dataset["label"])
    rng = np.random.default_rng(seed)
    carved: list[int] = []
    for c in range(len(split.label_names)):
        idx = [i for i in np.flatnonzero(labels == c) if ids[i] not in exclude]
        if idx:
            carved.extend(rng.choice(idx, size=min(n, len(idx)), replace=False).tolist())
    carved.sort()
    rest = sorted(set(range(len(split))) - set(carved))
    mk = lambda rows: LabelledSplit(split.dataset.select(rows), split.label_names, split.source, split.skipped)  # noqa: E731
    return mk(carved), mk(rest)
