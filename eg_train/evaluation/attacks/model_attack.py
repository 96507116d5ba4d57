"""A model-aware attack: goal, constraints, transformation, search (TextAttack's decomposition).

:class:`ModelAttack` composes the parts a recipe chooses (``recipes/``):

- goal: :class:`~.victim.UntargetedGoal` (flip the victim's prediction; per-example query budget);
- transformation: a :class:`~.transforms.WordTransformation` (characters or synonyms);
- constraints, in two kinds as in TextAttack: *which words* may change (:class:`StopwordModification`,
  :class:`RepeatModification`), and *which candidates* are admissible
  (:class:`LevenshteinEditDistance`, :class:`NoNegationOrAntonym`, and the sentence-encoder
  :class:`~.similarity.SentenceSimilarity`, whose encodings go through the scheduler like the
  victim's queries);
- search: :class:`~.search.GreedyWordImportance`.

:meth:`ModelAttack.attack` is the coroutine for one example (see :mod:`.search`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generator, Protocol

import numpy as np
from rapidfuzz.distance import Levenshtein

from eg_train.evaluation.attacks.core import TextState
from eg_train.evaluation.attacks.negation import flips_meaning
from eg_train.evaluation.attacks.search import GreedyWordImportance, changed_words
from eg_train.evaluation.attacks.similarity import SentenceSimilarity
from eg_train.evaluation.attacks.transforms import WordTransformation
from eg_train.evaluation.attacks.victim import GoalResult, Request, UntargetedGoal


# ---------------------------------------------------------------------------------------------
# constraints on which words may change
class IndexConstraint(Protocol):
    def allows_index(self, state: TextState, index: int) -> bool: ...


@dataclass
class StopwordModification:
    """Stopwords (lower-cased) are never modified."""

    stopwords: frozenset[str]

    def allows_index(self, state: TextState, index: int) -> bool:
        return state.words[index].lower() not in self.stopwords


class RepeatModification:
    """A word this attack already changed is not changed again."""

    def allows_index(self, state: TextState, index: int) -> bool:
        return state.flags[index] == ""


# ---------------------------------------------------------------------------------------------
# constraints on candidates
class CandidateConstraint(Protocol):
    def allows(self, candidate: TextState, index: int, original: TextState) -> bool: ...


@dataclass
class LevenshteinEditDistance:
    """DeepWordBug's budget: the whole candidate text is within ``max_edit_distance`` of the original."""

    max_edit_distance: int = 30

    def allows(self, candidate: TextState, index: int, original: TextState) -> bool:
        # Character edit distance, unit costs (TextAttack's); the cutoff lets rapidfuzz stop early.
        limit = self.max_edit_distance
        return Levenshtein.distance(original.text, candidate.text, score_cutoff=limit) <= limit


@dataclass
class NoNegationOrAntonym:
    """The new word neither negates the original word nor is its antonym (:mod:`.negation`)."""

    antonyms: Callable[[str], set[str]] | None = None

    def allows(self, candidate: TextState, index: int, original: TextState) -> bool:
        return not flips_meaning(original.words[index], candidate.words[index], self.antonyms)


# ---------------------------------------------------------------------------------------------
@dataclass
class AttackOutcome:
    """One example's attack: ``status`` skipped (already misclassified) / succeeded / failed."""

    status: str
    original: GoalResult
    final: GoalResult
    queries: int

    @property
    def perturbed(self) -> list[int]:
        return changed_words(self.original.state, self.final.state)


@dataclass
class ModelAttack:
    """A recipe's parts; :meth:`attack` runs it on one example."""

    name: str
    transformation: WordTransformation
    index_constraints: list[IndexConstraint]
    constraints: list[CandidateConstraint]
    search: GreedyWordImportance
    sentence_similarity: SentenceSimilarity | None = None
    similarity: dict[str, float] = field(default_factory=dict)  # candidate text -> encoder similarity

    def modifiable(self, state: TextState, index: int) -> bool:
        return all(c.allows_index(state, index) for c in self.index_constraints)

    def candidates(
        self, current: TextState, index: int, original: TextState, rng: np.random.Generator
    ) -> Generator[Request, np.ndarray, list[TextState]]:
        """Admissible texts with word ``index`` of ``current`` replaced."""
        if not self.modifiable(current, index):
            return []
        word = current.words[index]
        cands = [current.replace_word(index, w) for w in self.transformation.replacements(word, rng)]
        cands = [c for c in cands if c.words[index] != word and all(k.allows(c, index, original) for k in self.constraints)]
        if cands and self.sentence_similarity is not None:
            emb = yield ("encoder", self.sentence_similarity.texts(current, cands, index))
            sims = self.sentence_similarity.scores(np.asarray(emb))
            kept = []
            for c, s in zip(cands, sims):
                if s >= self.sentence_similarity.min_cosine:
                    self.similarity[c.text] = float(s)
                    kept.append(c)
            cands = kept
        return cands

    def attack(
        self, text: str, gold: int, budget: int | None, seed: int
    ) -> Generator[Request, np.ndarray, AttackOutcome]:
        """Attack one example (a coroutine for :func:`~.search.run_jobs`)."""
        rng = np.random.default_rng(seed)
        goal = UntargetedGoal(gold, budget)
        original = TextState.from_text(text)
        initial = (yield from goal.evaluate([original]))[0]
        if initial.succeeded:
            return AttackOutcome("skipped", initial, initial, goal.queries)
        final = yield from self.search.run(self, initial, goal, rng)
        return AttackOutcome("succeeded" if final.succeeded else "failed", initial, final, goal.queries)
