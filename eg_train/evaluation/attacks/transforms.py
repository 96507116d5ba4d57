"""Word transformations of the model-aware attacks: what a word may be replaced by.

- :class:`CharacterEdits` — DeepWordBug (Gao et al. 2018) as TextAttack composes it: swap two
  neighbouring characters, substitute one, delete one, insert one; each operation at one random
  position (seeded per example), so a word gets up to four candidates.
- :class:`SynonymSwap` — a word source's neighbours (WordNet synonyms for PWWS, static-embedding
  neighbours for TextFooler), at most ``max_candidates``.

Each returns candidate *words*; :class:`~eg_train.evaluation.attacks.model_attack.ModelAttack`
turns them into texts and applies the constraints. A candidate equal to the word is dropped.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Protocol

import numpy as np

LETTERS = string.ascii_letters  # TextAttack draws from both cases ("Wexchange", "finG")
CHAR_OPS = ("swap", "substitute", "delete", "insert")


class WordTransformation(Protocol):
    def replacements(self, word: str, rng: np.random.Generator) -> list[str]: ...


def char_edit(word: str, op: str, rng: np.random.Generator) -> str | None:
    """One DeepWordBug edit of ``word`` at a random position (None when the word is too short)."""
    n = len(word)
    if n <= 1:
        return None
    if op == "swap":  # positions 0..n-2: swap i and i+1
        i = int(rng.integers(0, n - 1))
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "substitute":
        i = int(rng.integers(0, n))
        return word[:i] + LETTERS[int(rng.integers(0, len(LETTERS)))] + word[i + 1 :]
    if op == "delete":
        i = int(rng.integers(0, n))
        return word[:i] + word[i + 1 :]
    if op == "insert":
        i = int(rng.integers(0, n + 1))
        return word[:i] + LETTERS[int(rng.integers(0, len(LETTERS)))] + word[i:]
    raise ValueError(f"unknown character operation {op!r}; choose from {list(CHAR_OPS)}")


@dataclass
class CharacterEdits:
    """DeepWordBug's composite character transformation (one random edit per operation)."""

    ops: tuple[str, ...] = CHAR_OPS

    def replacements(self, word: str, rng: np.random.Generator) -> list[str]:
        out: dict[str, None] = {}
        for op in self.ops:
            new = char_edit(word, op, rng)
            if new is not None and new != word:
                out[new] = None
        return list(out)


class WordSource(Protocol):
    source: str

    def neighbours(self, word: str) -> list[tuple[str, float]]: ...


@dataclass
class SynonymSwap:
    """Replace a word by one of its ``source`` neighbours (looked up lower-cased)."""

    source: WordSource
    max_candidates: int | None = None

    def replacements(self, word: str, rng: np.random.Generator) -> list[str]:
        out = [w for w, _ in self.source.neighbours(word.lower()) if w != word.lower()]
        return out[: self.max_candidates] if self.max_candidates else out
