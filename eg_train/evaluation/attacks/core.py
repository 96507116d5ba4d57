"""The four parts of an attack, after TextAttack (Morris et al. 2020): goal, constraints,
transformation, search. Everything here is model-independent: the goal is a surrogate computed
from training-data statistics (:mod:`.lexicon`), never a query to the model under evaluation, so
one attacked dataset serves every model.

- **Goal** (:class:`LogOddsGoal`): push the text towards a confusable class ``c`` of its gold class
  ``y``: the score is the sum over the text's distinct words of the pairwise log-odds z-score
  ``z_{c vs y}(w)``; an edit is useful when it raises that score.
- **Transformations**: :class:`KeywordInsertion` inserts a keyword of ``c`` (vs ``y``) at a seeded
  random word boundary; :class:`KeywordSwap` replaces a word by a near-synonym (static embedding
  cosine), preferring the synonym with the largest goal gain (often a keyword of ``c``).
- **Constraints**: see the classes below; they are what keeps the gold intent.
- **Search** (:class:`GreedySearch`): up to ``max_edits`` greedy steps, each taking the admissible
  candidate with the largest positive goal gain; ties are broken by a seeded shuffle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Sequence

import numpy as np

from eg_train.evaluation.attacks.lexicon import Lexicon, content_word, normalise_word
from eg_train.evaluation.attacks.negation import flips_meaning
from eg_train.foundation.words import split_words


@dataclass(frozen=True)
class Edit:
    op: str  # "insert" | "replace"
    position: int  # word index in the text after the edit
    old: str | None
    new: str

    def as_dict(self) -> dict:
        return {"op": self.op, "position": self.position, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class TextState:
    """A text as alternating gaps and words (``gaps[i]`` precedes ``words[i]``; one more gap at the end).

    ``flags[i]`` marks words this attack touched (``""`` original, ``"+"`` inserted, ``"~"`` replaced).
    """

    gaps: tuple[str, ...]
    words: tuple[str, ...]
    flags: tuple[str, ...]
    edits: tuple[Edit, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> "TextState":
        w = split_words(text)
        gaps, cursor = [], 0
        for start, end in w.spans:
            gaps.append(text[cursor:start])
            cursor = end
        gaps.append(text[cursor:])
        return cls(tuple(gaps), w.words, tuple("" for _ in w.words))

    @property
    def text(self) -> str:
        return "".join(g + w for g, w in zip(self.gaps, self.words)) + self.gaps[-1]

    def insert(self, position: int, word: str) -> "TextState":
        """Insert ``word`` before word ``position`` (``len(words)``: after the last word)."""
        n = len(self.words)
        if not 0 <= position <= n:
            raise IndexError(f"insert position {position} outside [0, {n}]")
        at = position + 1 if position < n else n
        gaps = self.gaps[:at] + (" ",) + self.gaps[at:]
        return replace(
            self,
            gaps=gaps,
            words=self.words[:position] + (word,) + self.words[position:],
            flags=self.flags[:position] + ("+",) + self.flags[position:],
            edits=self.edits + (Edit("insert", position, None, word),),
        )

    def delete_word(self, index: int) -> "TextState":
        """Remove word ``index`` and one of the gaps around it (used to rank word importance)."""
        n = len(self.words)
        if not 0 <= index < n:
            raise IndexError(f"delete index {index} outside [0, {n})")
        left, right = self.gaps[index], self.gaps[index + 1]
        # Keep the punctuation of both gaps but not two runs of spaces.
        merged = left + right.lstrip() if left.strip() == "" or right.strip() == "" else left + right
        return replace(
            self,
            gaps=self.gaps[:index] + (merged,) + self.gaps[index + 2 :],
            words=self.words[:index] + self.words[index + 1 :],
            flags=self.flags[:index] + self.flags[index + 1 :],
            edits=self.edits + (Edit("delete", index, self.words[index], ""),),
        )

    def replace_word(self, index: int, word: str) -> "TextState":
        old = self.words[index]
        if old[:1].isupper():  # keep sentence-initial capitals readable
            word = word[:1].upper() + word[1:]
        return replace(
            self,
            words=self.words[:index] + (word,) + self.words[index + 1 :],
            flags=self.flags[:index] + ("~",) + self.flags[index + 1 :],
            edits=self.edits + (Edit("replace", index, old, word),),
        )


@dataclass(frozen=True)
class Candidate:
    """One proposed edit: ``op`` insert/replace, ``index`` (boundary or word index), ``word``."""

    op: str
    index: int
    word: str

    def apply(self, state: TextState) -> TextState:
        return state.insert(self.index, self.word) if self.op == "insert" else state.replace_word(self.index, self.word)


@dataclass
class AttackContext:
    """Per-example facts the parts share: gold class ``gold``, confusable target class ``target``."""

    lexicon: Lexicon
    gold: int
    target: int
    rng: np.random.Generator

    def __post_init__(self) -> None:
        self.z_target = self.lexicon.log_odds_z(self.target, self.gold)  # evidence for c over y
        self.z_gold = self.lexicon.log_odds_z(self.gold)  # one-vs-rest evidence for y

    def z_of(self, table: np.ndarray, word: str) -> float:
        i = self.lexicon.index.get(normalise_word(word))
        return 0.0 if i is None else float(table[i])


# ---------------------------------------------------------------------------------------------
# goal
class LogOddsGoal:
    """Surrogate goal: sum of ``z_{target vs gold}`` over the distinct words of the text."""

    def score(self, state: TextState, ctx: AttackContext) -> float:
        return sum(ctx.z_of(ctx.z_target, w) for w in {normalise_word(w) for w in state.words})


# ---------------------------------------------------------------------------------------------
# constraints
class Constraint(Protocol):
    def allows(self, state: TextState, cand: Candidate, ctx: AttackContext) -> bool: ...


class RepeatModification:
    """A word inserted or replaced by this attack is never replaced again."""

    def allows(self, state, cand, ctx) -> bool:
        return cand.op != "replace" or state.flags[cand.index] == ""


class StopwordModification:
    """Stopwords are never replaced, and only content words are inserted or swapped in."""

    def allows(self, state, cand, ctx) -> bool:
        if not content_word(normalise_word(cand.word)):
            return False
        return cand.op != "replace" or content_word(normalise_word(state.words[cand.index]))


class NoDuplicateWord:
    """The new word is not already in the text (a repeat adds no evidence and reads oddly)."""

    def allows(self, state, cand, ctx) -> bool:
        return normalise_word(cand.word) not in {normalise_word(w) for w in state.words}


class NoNegationSwap:
    """A replacement never negates the word or swaps it for an antonym (``incorrect`` -> ``correct``):
    that would flip the request's meaning, not disguise it (:func:`.negation.flips_meaning`)."""

    def allows(self, state, cand, ctx) -> bool:
        return cand.op != "replace" or not flips_meaning(state.words[cand.index], cand.word)


@dataclass
class IntentCompatibility:
    """The new word occurs in at least ``min_docs`` TRAINING texts of the gold class: people asking
    for the gold intent do use it, so its presence alone does not turn the request into another."""

    min_docs: int = 2

    def allows(self, state, cand, ctx) -> bool:
        return ctx.lexicon.docs_with(cand.word, ctx.gold) >= self.min_docs


@dataclass
class AvoidDefiningWords:
    """The new word is not one of the ``top`` one-vs-rest keywords of the target class: those
    words define the other intent (``stolen`` for ``lost_or_stolen_card``) and would change it."""

    top: int = 3

    def __post_init__(self) -> None:
        self._cache: dict[int, set[str]] = {}

    def allows(self, state, cand, ctx) -> bool:
        if self.top <= 0:
            return True
        if ctx.target not in self._cache:
            self._cache[ctx.target] = {w for w, _ in ctx.lexicon.keywords(ctx.target, top=self.top, min_z=0.0)}
        return normalise_word(cand.word) not in self._cache[ctx.target]


@dataclass
class PreserveGoldEvidence:
    """The ``top`` words of the text with the highest one-vs-rest z for the gold class are never
    replaced: the words that carry the intent stay."""

    top: int = 1

    def allows(self, state, cand, ctx) -> bool:
        if cand.op != "replace" or self.top <= 0:
            return True
        ranked = sorted(
            (i for i, f in enumerate(state.flags) if f == ""),
            key=lambda i: (-ctx.z_of(ctx.z_gold, state.words[i]), i),
        )
        return cand.index not in ranked[: self.top]


@dataclass
class MaxModificationRate:
    """At most ``rate`` of the original words may be edited (at least one edit is allowed)."""

    rate: float = 0.3

    def allows(self, state, cand, ctx) -> bool:
        n_orig = sum(1 for f in state.flags if f != "+")
        return len(state.edits) + 1 <= max(1, int(self.rate * n_orig))


# ---------------------------------------------------------------------------------------------
# transformations
class Transformation(Protocol):
    def candidates(self, state: TextState, ctx: AttackContext) -> list[Candidate]: ...


@dataclass
class KeywordInsertion:
    """Insert one of the ``pool_size`` strongest keywords of the target class against the gold
    class (``z >= min_z``) at a seeded random word boundary."""

    pool_size: int = 20
    min_z: float = 1.96

    def candidates(self, state, ctx) -> list[Candidate]:
        if not state.words:
            return []
        pool = ctx.lexicon.keywords(ctx.target, ctx.gold, top=self.pool_size, min_z=self.min_z)
        return [Candidate("insert", int(ctx.rng.integers(0, len(state.words) + 1)), w) for w, _ in pool]


class Synonyms(Protocol):
    def neighbours(self, word: str) -> list[tuple[str, float]]: ...


@dataclass
class KeywordSwap:
    """Replace an original word by a near-synonym from ``synonyms`` (cosine >= its threshold)."""

    synonyms: Synonyms

    def candidates(self, state, ctx) -> list[Candidate]:
        out = []
        for i, w in enumerate(state.words):
            if state.flags[i]:
                continue
            for syn, _ in self.synonyms.neighbours(normalise_word(w)):
                out.append(Candidate("replace", i, syn))
        return out


# ---------------------------------------------------------------------------------------------
# search
@dataclass
class GreedySearch:
    """Greedy: each step applies the admissible candidate with the largest positive goal gain."""

    max_edits: int = 2

    def run(
        self,
        state: TextState,
        ctx: AttackContext,
        goal: LogOddsGoal,
        transformation: Transformation,
        constraints: Sequence[Constraint],
    ) -> tuple[TextState, float]:
        start = current = goal.score(state, ctx)
        for _ in range(self.max_edits):
            cands = [c for c in transformation.candidates(state, ctx) if all(k.allows(state, c, ctx) for k in constraints)]
            if not cands:
                break
            order = ctx.rng.permutation(len(cands))  # seeded tie-breaking
            scored = [(goal.score(cands[i].apply(state), ctx) - current, r, cands[i]) for r, i in enumerate(order)]
            gain, _, best = max(scored, key=lambda s: (s[0], -s[1]))
            if gain <= 0:
                break
            state = best.apply(state)
            current += gain
        return state, current - start
