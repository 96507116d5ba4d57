"""Labelled demonstrations in the class-aware prompt, drawn so no example is its own demonstration.

A demonstration set is part of the text-independent prompt prefix, so it must be shared by many
examples for its KV cache to be reused, yet the example being attributed must never be among its
own demonstrations (that would hand the LLM the answer, and the prior would measure copying).
Design: ``n_sets`` fixed sets. Every example id falls in one *fold* ``f(id) = sha1(seed, id) mod
n_sets``; set ``s`` draws its demonstrations only from examples outside fold ``s``, and an example
is scored under the set of its own fold. So an example is never in the set it is scored with, the
prefix is shared by about ``1/n_sets`` of the examples, and the choice depends on ids only (the
same in every shard and in any order of the split).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence


def _key(*parts: object) -> int:
    return int.from_bytes(hashlib.sha1(":".join(map(str, parts)).encode("utf-8")).digest()[:8], "little")


def demo_fold(example_id: str, n_sets: int, seed: int = 0) -> int:
    """The fold (and demonstration set) of an example."""
    return _key("fold", seed, example_id) % n_sets


@dataclass(frozen=True)
class Demonstration:
    id: str
    text: str
    label: int


def demonstration_sets(
    ids: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    per_class: int,
    n_sets: int = 2,
    seed: int = 0,
) -> list[list[Demonstration]]:
    """``n_sets`` lists of demonstrations, up to ``per_class`` per label each; set ``s`` holds
    only examples outside fold ``s``. Within a set, classes are interleaved in a seeded order
    (not grouped by label, so no label sits next to ``Text:`` by construction)."""
    if n_sets < 2:
        raise ValueError(f"demonstration_sets needs n_sets >= 2 (with one set an example would be its own demonstration), got {n_sets}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if len(set(ids)) != len(ids):
        raise ValueError("demonstration pool has duplicate example ids")
    sets = []
    for s in range(n_sets):
        by_label: dict[int, list[int]] = {}
        for j, i in enumerate(ids):
            if demo_fold(i, n_sets, seed) != s:
                by_label.setdefault(int(labels[j]), []).append(j)
        chosen = []
        for members in by_label.values():
            members.sort(key=lambda j: _key("pick", seed, s, ids[j]))
            chosen.extend(members[:per_class])
        chosen.sort(key=lambda j: _key("order", seed, s, ids[j]))
        sets.append([Demonstration(ids[j], texts[j], int(labels[j])) for j in chosen])
    return sets


class DemonstrationRouting:
    """One scorer per demonstration set; :meth:`scorer_for` picks an example's (see module doc).

    Args:
        sets: the demonstration sets (from :func:`demonstration_sets`).
        make_scorer: builds the scorer of one set (its prompt holds that set's demonstrations).
        per_class, seed: how the sets were drawn (part of the configuration).
    """

    def __init__(self, sets: list[list[Demonstration]], make_scorer: Callable[[list[Demonstration]], Any], *, per_class: int, seed: int) -> None:
        self.sets = sets
        self.scorers = [make_scorer(s) for s in sets]
        self.per_class = per_class
        self.seed = seed

    def fold(self, example_id: str) -> int:
        return demo_fold(example_id, len(self.sets), self.seed)

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
