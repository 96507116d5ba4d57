"""Shared machinery of the perturbation priors (LIME, CAP): masks -> LLM scores -> ridge.

Every example is scored and solved on its own (one scorer call and one ridge solve per
example, in a fixed chunking), so its prior never depends on which examples share a batch or
a shard: a sharded run equals a single run bit for bit.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any

import numpy as np
import torch

from eg_train.foundation.words import Words
from priors.base import BuildContext, PriorBatch, PriorMethod, PriorResult
from priors.demonstrations import DemonstrationRouting, demonstration_sets
from priors.focus import FocusSelector, focus_masks
from priors.masks import example_rng, sample_masks
from priors.prompts import PromptTemplate
from priors.ridge import ridge_cholesky
from priors.scorer import CONTENT_FREE_TEXTS, LabelScorer

log = logging.getLogger(__name__)


def leading_words(words: Words, n: int) -> Words:
    """The first ``n`` words of ``words`` (the text cut after the n-th word)."""
    end = words.spans[n - 1][1]
    return Words(text=words.text[:end], words=words.words[:n], spans=words.spans[:n])


class PerturbationPrior(PriorMethod):
    """Sample ``n_samples`` masks per example, score them with the LLM, turn log-probabilities
    into regression targets, and solve the example's ridge.

    Args:
        scorer: a :class:`~priors.scorer.LabelScorer` (or a ``priors.proxy`` scorer).
        focus: Focus-LIME selector; inputs longer than its ``min_words`` are attributed inside the
            focus it selects (Phase II), other words score 0.
        routing: demonstration sets; each example is scored by the scorer of its own set.

    Inputs longer than the LLM's text budget (``max_text_tokens``) and not handled by a focus
    stage are attributed over the words that fit the budget; the rest score 0 and are counted in
    ``PriorResult.truncated_words`` (and logged).
    """

    uses_demonstrations = False  # whether the method's prompt takes demonstrations

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
        routing: DemonstrationRouting | None = None,
    ) -> None:
        self.scorer = scorer
        self.focus = focus
        self.routing = routing
        self._model_id = model_id
        self.n_samples = n_samples
        self.ridge_lambda = ridge_lambda
        self.seed = seed
        self.keep_prob = keep_prob

    # ------------------------------------------------------------------------ construction
    @classmethod
    def prompt(cls, label_names: list[str], instruction: str, demonstrations=()) -> PromptTemplate:
        """The method's prompt template."""
        raise NotImplementedError

    @classmethod
    def options_from_config(cls, cfg: Any) -> dict[str, Any]:
        """Method-specific constructor options."""
        return {}

    @classmethod
    def from_config(cls, cfg: Any, ctx: BuildContext) -> PerturbationPrior:
        model, tok = ctx.get("llm")
        names = ctx.label_names

        def make(template: PromptTemplate) -> LabelScorer:
            return LabelScorer(
                model, tok, template, names,
                contrast=cfg.contrast, contrast_m=cfg.contrast_m, calibrate=cfg.calibrate,
                renormalise=cfg.renormalise, batch_size=cfg.scorer_batch_size,
                batch_tokens=cfg.scorer_batch_tokens, max_text_tokens=cfg.max_text_tokens,
            )

        routing = None
        if cls.uses_demonstrations and cfg.demonstrations_per_class > 0:
            ds = ctx.get("examples").dataset
            plan = demonstration_sets(
                ds["id"], ds["text"], ds["label"], per_class=cfg.demonstrations_per_class,
                n_sets=cfg.demonstration_sets, seed=cfg.demonstration_seed,
            )
            routing = DemonstrationRouting(
                plan,
                lambda demos: make(cls.prompt(names, cfg.instruction, [(d.text, names[d.label]) for d in demos])),
                per_class=cfg.demonstrations_per_class, seed=cfg.demonstration_seed,
            )
        return cls(
            make(cls.prompt(names, cfg.instruction)),
            model_id=cfg.llm, n_samples=cfg.n_samples, ridge_lambda=cfg.ridge_lambda, seed=cfg.seed,
            focus=ctx.get("focus"), routing=routing, **cls.options_from_config(cfg),
        )

    # ------------------------------------------------------------------------------ hooks
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
        sc = self.scorer
        contrast, calibrate = getattr(sc, "contrast", "none"), getattr(sc, "calibrate", False)
        return {
            "model": self._model_id,
            "template": sc.template.prefix + sc.template.body + sc.template.answer,
            "renormalise": sc.renormalise,
            "labels": sc.label_names,
            "n_samples": self.n_samples,
            "ridge_lambda": self.ridge_lambda,
            "seed": self.seed,
            "keep_prob": self.keep_prob,
            "max_text_tokens": sc.max_text_tokens,
            # Options below appear only when they change the scores from the published CAP /
            # LIME scoring, so priors computed before they existed keep their cache keys; any
            # other value changes the hash, so priors of different scorings never mix.
            **({"focus": self.focus.config()} if self.focus is not None else {}),
            **({"contrast": contrast, "contrast_m": sc.contrast_m} if contrast == "top_m" else {}),
            **({"calibrate": list(CONTENT_FREE_TEXTS)} if calibrate else {}),
            **({"demonstrations": self.routing.config()} if self.routing is not None else {}),
            # bf16 and fp32 priors never share a cache entry (fp32 keeps the keys of earlier priors).
            **({"dtype": str(dtype).removeprefix("torch.")} if (dtype := getattr(sc, "dtype", torch.float32)) != torch.float32 else {}),
        }

    # ---------------------------------------------------------------------------- scoring
    def scorer_for(self, example_id: str):
        return self.routing.scorer_for(example_id) if self.routing is not None else self.scorer

    def attribute_one(
        self, example_id: str, words: Words, label: int, masks: np.ndarray, free: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of one example for the given masks; ``free`` (bool per word) limits the
        regression to the perturbed words (Focus-LIME), the others score 0."""
        scorer = self.scorer_for(example_id)
        texts = [words.keep(row) for row in masks]
        candidates = getattr(scorer, "candidates_for", lambda *_: None)(words.keep(np.ones(len(words))), label)
        extra = {"candidates": [candidates] * len(texts)} if candidates is not None else {}
        log_p = scorer.log_prob(texts, [label] * len(texts), **extra)
        cols = np.arange(masks.shape[1]) if free is None else np.flatnonzero(free)
        m = masks[:, cols]
        w = self.sample_weights(m)
        alpha, _ = ridge_cholesky(
            torch.from_numpy(m.astype(np.float64))[None],
            torch.from_numpy(np.asarray(self.targets(log_p), dtype=np.float64))[None],
            self.ridge_lambda,
            None if w is None else torch.from_numpy(np.asarray(w, dtype=np.float64))[None],
        )
        scores = np.zeros(masks.shape[1], dtype=np.float32)
        scores[cols] = alpha[0].numpy()
        return scores

    def attribute(
        self, batch: PriorBatch, masks: list[np.ndarray], free: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """:meth:`attribute_one` for every example of ``batch``."""
        return [
            self.attribute_one(i, w, y, m, None if free is None else free[j])
            for j, (i, w, y, m) in enumerate(zip(batch.ids, batch.words, batch.labels, masks))
        ]

    def masks_for(self, batch: PriorBatch) -> list[np.ndarray]:
        return [
            sample_masks(len(w), self.n_samples, example_rng(self.seed, i), self.keep_prob)
            for i, w in zip(batch.ids, batch.words)
        ]

    def _compute_one(self, example_id: str, words: Words, label: int) -> PriorResult:
        rng = example_rng(self.seed, example_id)
        if self.focus is not None and self.focus.applies(words):
            sel = self.focus.select(words, label, example_id)
            masks = focus_masks(sel.mask, self.n_samples, rng, self.keep_prob)
            scores = self.attribute_one(example_id, words, label, masks, sel.mask)
            return PriorResult(scores, queries=len(masks), proxy_queries=sel.proxy_queries, focus_words=sel.focus_words)
        budget = getattr(self.scorer_for(example_id), "words_within_budget", len)
        kept = max(1, budget(words))
        if kept < len(words):
            log.warning(
                "%s prior, example %r: %d words, the LLM's text budget (max_text_tokens=%d) holds the first %d; "
                "only those are perturbed and attributed, the other %d score 0 (set focus_proxy to attribute "
                "long inputs inside a focus instead)",
                self.name, example_id, len(words), self.scorer.max_text_tokens, kept, len(words) - kept,
            )
        inside = leading_words(words, kept) if kept < len(words) else words
        masks = sample_masks(kept, self.n_samples, rng, self.keep_prob)
        scores = np.zeros(len(words), dtype=np.float32)
        scores[:kept] = self.attribute_one(example_id, inside, label, masks)
        return PriorResult(scores, queries=len(masks), truncated_words=len(words) - kept)

    def compute(self, batch: PriorBatch) -> list[PriorResult]:
        return [self._compute_one(i, w, y) for i, w, y in zip(batch.ids, batch.words, batch.labels)]


def neg_inv_log(log_p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """CAP target ``z = -1/log p`` from the log-probability itself (guard only log p -> 0)."""
    return -1.0 / np.minimum(log_p, -eps)


__all__ = ["PerturbationPrior", "leading_words", "neg_inv_log"]
