"""The victim model and the goal function of the model-aware attacks.

:class:`VictimModel` scores many texts at once: the scheduler of :mod:`.search` hands it the
requests of dozens of examples together, it tokenises them, sorts them by length (little padding)
and runs batched forwards; a text already scored is answered from a cache. It never runs one
forward per perturbation.

:class:`UntargetedGoal` is TextAttack's ``UntargetedClassification`` for one example: score
``1 - p(gold)``, success when the predicted class is not the gold one. It counts queries the way
TextAttack does (every text sent to the model is one query, cached or not, the original included)
and enforces a per-example query budget: a request that would exceed it is cut to what is left,
and once it is spent the search stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, Sequence

import numpy as np
import torch

from eg_train.evaluation.attacks.batching import TextMemo, length_sorted_batches
from eg_train.evaluation.attacks.core import TextState

# A request a search yields to the scheduler: (channel, texts); it is answered with one array row per text.
Request = tuple[str, list[str]]


class VictimModel:
    """Batched, cached class probabilities of a sequence classifier for raw texts."""

    def __init__(self, model, tokenizer, max_length: int = 128, batch_size: int = 128, cache_size: int = 1 << 18) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._memo = TextMemo(self._forward, lambda: self.num_labels, cache_size)
        self.forward_passes = 0  # batched forwards run (not queries)
        self.texts_scored = 0  # texts actually run through the model (cache misses)

    @classmethod
    def from_checkpoint(cls, checkpoint: str, device: str = "cpu", **kwargs) -> "VictimModel":
        from eg_train.foundation.models.resolve import load_sequence_classifier

        model, tok = load_sequence_classifier(str(checkpoint))
        return cls(model.to(device), tok, **kwargs)

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    @torch.no_grad()
    def _forward(self, texts: list[str]) -> np.ndarray:
        dev = next(self.model.parameters()).device
        out = np.zeros((len(texts), self.num_labels), dtype=np.float32)
        for rows, batch in length_sorted_batches(self.tokenizer, texts, self.max_length, self.batch_size):
            logits = self.model(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev)).logits
            out[rows] = logits.float().softmax(-1).cpu().numpy()
            self.forward_passes += 1
        self.texts_scored += len(texts)
        return out

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), num_labels)`` probabilities; repeated and cached texts are not re-run."""
        return self._memo(texts)


@dataclass
class GoalResult:
    """One scored text: its state, class probabilities, goal score and whether the goal is met."""

    state: TextState
    probs: np.ndarray
    score: float
    succeeded: bool

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())


class UntargetedGoal:
    """Flip the prediction away from ``gold``; ``budget`` queries at most (None: unlimited)."""

    def __init__(self, gold: int, budget: int | None = None) -> None:
        self.gold = int(gold)
        self.budget = budget
        self.queries = 0

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.queries >= self.budget

    def result(self, state: TextState, probs: np.ndarray) -> GoalResult:
        return GoalResult(state, probs, float(1.0 - probs[self.gold]), int(probs.argmax()) != self.gold)

    def evaluate(self, states: Sequence[TextState]) -> Generator[Request, np.ndarray, list[GoalResult]]:
        """Score ``states`` (cut to the remaining budget) through the scheduler's victim channel."""
        if self.budget is not None:
            states = list(states)[: max(0, self.budget - self.queries)]
        if not states:
            return []
        self.queries += len(states)
        probs = yield ("victim", [s.text for s in states])
        return [self.result(s, p) for s, p in zip(states, probs)]
