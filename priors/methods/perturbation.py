"""Shared machinery of the perturbation priors (LIME, CAP): masks -> LLM scores -> ridge."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from priors.base import PriorBatch, PriorMethod, PriorResult
from priors.focus import FocusSelector, focus_masks
from priors.masks import example_rng, sample_masks
from priors.ridge import ridge_cholesky
from priors.scorer import LabelScorer


class PerturbationPrior(PriorMethod):
    """Sample ``n_samples`` masks per example, score all of them with one batched scorer call,
    turn log-probabilities into regression targets, and solve every example's ridge at once."""

    def __init__(
        self,
        scorer: LabelScorer,
        *,
        model_id: str,
        n_samples: int = 100,
        ridge_lambda: float = 1.0,
        seed: int = 0,
        keep_prob: float = 0.5,
        focus: FocusSelector | None = None,
    ) -> None:
        """``focus``: Focus-LIME selector; inputs longer than its ``min_words`` are attributed
        inside the focus it selects (Phase II), other words score 0."""
        self.scorer = scorer
        self.focus = focus
        self._model_id = model_id
        self.n_samples = n_samples
        self.ridge_lambda = ridge_lambda
        self.seed = seed
        self.keep_prob = keep_prob

    @abstractmethod
    def targets(self, log_probs: np.ndarray) -> np.ndarray:
        """Regression target per perturbation from ``log p`` (shape ``[n]``)."""

    def sample_weights(self, masks: np.ndarray) -> np.ndarray | None:
        """Per-perturbation weights (``None``: uniform)."""
        return None

    def config(self) -> dict[str, Any]:
        if not hasattr(self.scorer, "template"):  # a sequence-classifier scorer (priors.proxy)
            return {
                "model": self._model_id,
                "scorer": self.scorer.config(),
                "n_samples": self.n_samples,
                "ridge_lambda": self.ridge_lambda,
                "seed": self.seed,
                "keep_prob": self.keep_prob,
                **({"focus": self.focus.config()} if self.focus is not None else {}),
            }
        return {
            "model": self._model_id,
            "template": self.scorer.template.prefix + self.scorer.template.body + self.scorer.template.answer,
            "renormalise": self.scorer.renormalise,
            "labels": self.scorer.label_names,
            "n_samples": self.n_samples,
            "ridge_lambda": self.ridge_lambda,
            "seed": self.seed,
            "keep_prob": self.keep_prob,
            "max_text_tokens": self.scorer.max_text_tokens,
            # Only present with a focus stage, so that plain priors keep their cache keys.
            **({"focus": self.focus.config()} if self.focus is not None else {}),
        }

    def masks_for(self, batch: PriorBatch) -> list[np.ndarray]:
        return [
            sample_masks(len(w), self.n_samples, example_rng(self.seed, i), self.keep_prob)
            for i, w in zip(batch.ids, batch.words)
        ]

    def attribute(
        self, batch: PriorBatch, masks: list[np.ndarray], free: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Scores for the given masks; ``free[j]`` (bool per word) limits the regression to the
        perturbed words (Focus-LIME), the others score 0."""
        texts, labels = [], []
        for w, m, y in zip(batch.words, masks, batch.labels):
            texts.extend(w.keep(row) for row in m)
            labels.extend([y] * len(m))
        log_p = self.scorer.log_prob(texts, labels)
        B = len(batch)
        n = max(len(m) for m in masks)
        d = max(m.shape[1] for m in masks)
        if any(len(m) != n for m in masks):
            raise ValueError("all examples of a batch must use the same number of perturbations")
        M = torch.zeros(B, n, d, dtype=torch.float64)
        Z = torch.zeros(B, n, dtype=torch.float64)
        W = torch.ones(B, n, dtype=torch.float64)
        offset = 0
        for j, m in enumerate(masks):
            cols = np.arange(m.shape[1]) if free is None else np.flatnonzero(free[j])
            M[j, :, : len(cols)] = torch.from_numpy(m[:, cols].astype(np.float64))
            Z[j] = torch.from_numpy(self.targets(log_p[offset : offset + n]))
            w = self.sample_weights(m if free is None else m[:, cols])
            if w is not None:
                W[j] = torch.from_numpy(w)
            offset += n
        alpha, _ = ridge_cholesky(M, Z, self.ridge_lambda, W)
        out = []
        for j, m in enumerate(masks):
            scores = np.zeros(m.shape[1], dtype=np.float32)
            cols = np.arange(m.shape[1]) if free is None else np.flatnonzero(free[j])
            scores[cols] = alpha[j, : len(cols)].numpy()
            out.append(scores)
        return out

    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        if self.focus is None or not any(self.focus.applies(w) for w in batch.words):
            masks = self.masks_for(batch)
            scores = self.attribute(batch, masks)
            return [PriorResult(scores=s, queries=len(m)) for s, m in zip(scores, masks)]
        masks, free, proxy_queries, focus_words = [], [], [], []
        for i, w, y in zip(batch.ids, batch.words, batch.labels):
            rng = example_rng(self.seed, i)
            if self.focus.applies(w):
                sel = self.focus.select(w, y, i)
                masks.append(focus_masks(sel.mask, self.n_samples, rng, self.keep_prob))
                free.append(sel.mask)
                proxy_queries.append(sel.proxy_queries)
                focus_words.append(sel.focus_words)
            else:
                masks.append(sample_masks(len(w), self.n_samples, rng, self.keep_prob))
                free.append(np.ones(len(w), dtype=bool))
                proxy_queries.append(0)
                focus_words.append(-1)
        scores = self.attribute(batch, masks, free)
        return [
            PriorResult(scores=s, queries=len(m), proxy_queries=pq, focus_words=fw)
            for s, m, pq, fw in zip(scores, masks, proxy_queries, focus_words)
        ]


def neg_inv_log(log_p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """CAP target ``z = -1/log p`` from the log-probability itself (guard only log p -> 0)."""
    return -1.0 / np.minimum(log_p, -eps)


__all__ = ["PerturbationPrior", "neg_inv_log"]
