"""Labelled demonstrations in the class-aware prompt, drawn so no example is its own demonstration.

A demonstration set is part of the text-independent prompt prefix, so it must be shared by many
examples for its KV cache to be reused, yet the example being attributed must never be among its
own demonstrations (that would hand the LLM the answer, and the prior would measure copying).
Design: ``n_sets`` fixed sets. Every example of the pool falls in one *fold* (dealt round-robin
within its class, in a seeded order of ids); set ``s`` draws its demonstrations only from examples
outside fold ``s``, and an example is scored under the set of its own fold. So an example is never
in the set it is scored with, each prefix is shared by about ``1/n_sets`` of the examples, and the
choice depends on the pool's ids and labels only (the same in every shard and in any order).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence


def _key(*parts: object) -> int:
    return int.from_bytes(hashlib.sha1(":".join(map(str, parts)).encode("utf-8")).digest()[:8], "little")


def demo_fold(example_id: str, n_sets: int, seed: int = 0) -> int:
    """The fold of an example outside the pool (any set is free of it)."""
    return _key("fold", seed, example_id) % n_sets


@dataclass(frozen=True)
class Demonstration:
    id: str
    text: str
    label: int


@dataclass(frozen=True)
class DemonstrationPlan:
    """``sets[s]``: the demonstrations of set ``s``; ``folds[id]``: the set an example is scored under."""

    sets: list[list[Demonstration]]
    folds: dict[str, int]

    def fold(self, example_id: str) -> int:
        return self.folds.get(example_id, demo_fold(example_id, len(self.sets)))


def demonstration_sets(
    ids: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    per_class: int,
    n_sets: int = 2,
    seed: int = 0,
) -> DemonstrationPlan:
    """``n_sets`` sets of up to ``per_class`` demonstrations per label; set ``s`` holds only
    examples outside fold ``s``. Folds are dealt round-robin within each class (in a seeded
    order keyed by id), so every class has members outside every fold when it has at least
    two examples. Within a set, classes are interleaved in a seeded order (not grouped by label).
    Everything depends on ids, texts and labels only, not on the order of the pool."""
    if n_sets < 2:
        raise ValueError(f"demonstration_sets needs n_sets >= 2 (with one set an example would be its own demonstration), got {n_sets}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if len(set(ids)) != len(ids):
        raise ValueError("demonstration pool has duplicate example ids")
    by_label: dict[int, list[int]] = {}
    for j, y in enumerate(labels):
        by_label.setdefault(int(y), []).append(j)
    folds: dict[str, int] = {}
    for y, members in by_label.items():
        members.sort(key=lambda j: _key("fold", seed, ids[j]))
        offset = _key("offset", seed, y) % n_sets  # small classes do not all start at fold 0
        for rank, j in enumerate(members):
            folds[ids[j]] = (rank + offset) % n_sets
    sets = []
    for s in range(n_sets):
        chosen = []
        for members in by_label.values():
            outside = sorted((j for j in members if folds[ids[j]] != s), key=lambda j: _key("pick", seed, s, ids[j]))
            chosen.extend(outside[:per_class])
        chosen.sort(key=lambda j: _key("order", seed, s, ids[j]))
        sets.append([Demonstration(ids[j], texts[j], int(labels[j])) for j in chosen])
    return DemonstrationPlan(sets, folds)


class DemonstrationRouting:
    """One scorer per demonstration set; :meth:`scorer_for` picks an example's (see module doc).

    Args:
        plan: the demonstration sets and folds (from :func:`demonstration_sets`).
        make_scorer: builds the scorer of one set (its prompt holds that set's demonstrations).
        per_class, seed: how the sets were drawn (part of the configuration).
    """

    def __init__(self, plan: DemonstrationPlan, make_scorer: Callable[[list[Demonstration]], Any], *, per_class: int, seed: int) -> None:
        self.plan = plan
        self.sets = plan.sets
        self.scorers = [make_scorer(s) for s in plan.sets]
        self.per_class = per_class
        self.seed = seed

    def fold(self, example_id: str) -> int:
        return self.plan.fold(example_id)

    def scorer_for(self, example_id: str):
        return self.scorers[self.fold(example_id)]

    def config(self) -> dict[str, Any]:
        prefixes = "\x00".join(sc.template.prefix for sc in self.scorers)
        return {
            "per_class": self.per_class,
            "sets": len(self.sets),
            "seed": self.seed,
            # The demonstrations themselves (texts, labels, order), not only how they were drawn.
            "prefixes_sha1": hashlib.sha1(prefixes.encode("utf-8")).hexdigest()[:16],
        }
