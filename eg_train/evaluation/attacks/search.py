"""Search of the model-aware attacks and the scheduler that batches their model queries.

**Searches are coroutines.** An attack on one example is a generator that *yields* requests
``(channel, texts)`` — texts for the victim model, or for the sentence encoder — and receives
their scores. :func:`run_jobs` advances many examples at once, pools the pending requests of all of
them per channel and answers each pool with one batched call. A step of one example may hold only
a handful of candidates; pooled over 64 examples the victim still sees batches of hundreds.

:class:`GreedyWordImportance` is TextAttack's ``GreedyWordSwapWIR``: rank the modifiable words by
importance, then walk down the ranking, at each word keep the best-scoring admissible swap if it
raises the goal score, and stop at the first success. Importance ("wir") is

- ``unk``: the score with the word replaced by ``[UNK]`` (DeepWordBug);
- ``delete``: the score with the word deleted (TextFooler);
- ``weighted-saliency``: ``softmax(unk scores) * (best swap score at the word)`` (PWWS; as in
  TextAttack the best swap's score itself, not its difference from the original's).

Ties are broken by word position (a stable sort), so a run is deterministic given its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, Iterable, Protocol

import numpy as np

from eg_train.evaluation.attacks.core import TextState
from eg_train.evaluation.attacks.victim import GoalResult, Request, UntargetedGoal


class Attack(Protocol):
    """What the search needs of an attack (:class:`~.model_attack.ModelAttack` provides it)."""

    similarity: dict[str, float]

    def modifiable(self, state: TextState, index: int) -> bool: ...

    def candidates(
        self, current: TextState, index: int, original: TextState, rng: np.random.Generator
    ) -> Generator[Request, np.ndarray, list[TextState]]: ...

UNK = "[UNK]"
WIR_METHODS = ("unk", "delete", "weighted-saliency")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@dataclass
class GreedyWordImportance:
    """Greedy word swaps in decreasing word importance (see module docstring)."""

    wir: str = "unk"

    def __post_init__(self) -> None:
        if self.wir not in WIR_METHODS:
            raise ValueError(f"unknown word-importance method {self.wir!r}; choose from {list(WIR_METHODS)}")

    def rank(
        self, attack: Attack, initial: GoalResult, goal: UntargetedGoal, rng: np.random.Generator
    ) -> Generator[Request, np.ndarray, list[int]]:
        """Modifiable word indices, most important first."""
        state = initial.state
        indices = [i for i in range(len(state.words)) if attack.modifiable(state, i)]
        if not indices:
            return []
        if self.wir == "delete":
            probes = [state.delete_word(i) for i in indices]
        else:
            probes = [state.replace_word(i, UNK) for i in indices]
        results = yield from goal.evaluate(probes)
        scores = np.full(len(indices), -np.inf)
        scores[: len(results)] = [r.score for r in results]
        if self.wir == "weighted-saliency" and len(results) == len(indices):
            # Best swap score per word: all words' candidates in one request (TextAttack asks word by word).
            cands = []
            for i in indices:
                cands.append((yield from attack.candidates(state, i, state, rng)))
            flat = [c for cs in cands for c in cs]
            swap = yield from goal.evaluate(flat)
            best = np.zeros(len(indices))
            pos = 0
            for k, cs in enumerate(cands):
                got = swap[pos : pos + len(cs)]
                pos += len(cs)
                best[k] = max((r.score for r in got), default=0.0)
            scores = _softmax(scores) * best
        order = np.argsort(-scores, kind="stable")
        return [indices[k] for k in order]

    def run(
        self, attack: Attack, initial: GoalResult, goal: UntargetedGoal, rng: np.random.Generator
    ) -> Generator[Request, np.ndarray, GoalResult]:
        """Greedy search from ``initial``; returns the final result (succeeded or the best reached)."""
        order = yield from self.rank(attack, initial, goal, rng)
        current = initial
        for i in order:
            if goal.exhausted:
                break
            cands = yield from attack.candidates(current.state, i, initial.state, rng)
            if not cands:
                continue
            results = yield from goal.evaluate(cands)
            if not results:
                break
            results.sort(key=lambda r: -r.score)  # stable: ties keep candidate order
            if results[0].score <= current.score:
                continue
            current = results[0]
            if current.succeeded:
                # Among the successful swaps, the one closest to the text (TextAttack's rule), if measured.
                wins = [r for r in results if r.succeeded]
                sims = [attack.similarity.get(r.state.text) for r in wins]
                if all(s is not None for s in sims):
                    current = wins[int(np.argmax(sims))]
                return current
        return current


Job = Generator[Request, np.ndarray, object]


def run_jobs(
    jobs: Iterable[Job],
    channels: dict[str, Callable[[list[str]], np.ndarray]],
    max_active: int = 64,
    progress: Callable[[int], None] | None = None,
) -> list:
    """Run coroutine ``jobs`` concurrently, answering their requests in pooled batches per channel.

    Returns each job's return value, in job order. ``progress(n)`` is called as jobs finish.
    """
    results: dict[int, object] = {}
    active: dict[int, tuple[Job, Request]] = {}
    pending = iter(enumerate(jobs))

    def step(i: int, job: Job, answer) -> None:
        try:
            req = job.send(answer)
        except StopIteration as stop:
            results[i] = stop.value
            active.pop(i, None)
            if progress:
                progress(1)
            return
        active[i] = (job, req)

    exhausted = False
    while True:
        while not exhausted and len(active) < max_active:
            try:
                i, job = next(pending)
            except StopIteration:
                exhausted = True
                break
            step(i, job, None)
        if not active:
            break
        by_channel: dict[str, list[int]] = {}
        for i, (_, (channel, _texts)) in active.items():
            by_channel.setdefault(channel, []).append(i)
        for channel, ids in by_channel.items():
            if channel not in channels:
                raise KeyError(f"a search asked for channel {channel!r}; available: {sorted(channels)}")
            texts = [t for i in ids for t in active[i][1][1]]
            scores = channels[channel](texts)
            pos = 0
            for i in ids:
                job, (_, req_texts) = active[i]
                answer = scores[pos : pos + len(req_texts)]
                pos += len(req_texts)
                step(i, job, answer)
    return [results[i] for i in range(len(results))]


def changed_words(original: TextState, final: TextState) -> list[int]:
    """Word positions whose text differs (model-aware attacks only replace, so lengths agree)."""
    if len(original.words) != len(final.words):
        raise ValueError("changed_words compares texts with the same number of words")
    return [i for i, (a, b) in enumerate(zip(original.words, final.words)) if a != b]

