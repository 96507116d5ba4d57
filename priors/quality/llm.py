"""The LLM side of prior quality: which scorer scored an example, its label scores, its queries.

A perturbation prior scores each example with one :class:`~priors.scorer.LabelScorer`; with
demonstrations in the prompt that is the scorer of the example's demonstration set
(``method.scorer_for(example_id)``), so competence and deletion queries are routed the same way.
Label scores are memoised per (prompt, text): configurations that share a prompt and differ in
the contrast (none / full / top-m) have the same argmax and share one pass; a calibrated scorer
subtracts its content-free bias from the same raw scores.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from priors.quality.competence import label_logprob_matrix


def scorer_of(method, example_id: str):
    """The scorer ``method`` scores ``example_id`` with (None: the method has no LLM scorer)."""
    route = getattr(method, "scorer_for", None)
    scorer = route(example_id) if route is not None else getattr(method, "scorer", None)
    if scorer is None or not hasattr(scorer, "log_prob") or not hasattr(scorer, "label_names"):
        return None
    return scorer


def _prompt_key(scorer) -> tuple:
    tpl = getattr(scorer, "template", None)
    prompt = (tpl.prefix, tpl.body, tpl.answer) if tpl is not None else repr(scorer)
    return (id(scorer.model) if hasattr(scorer, "model") else None, prompt, tuple(scorer.label_names),
            getattr(scorer, "max_text_tokens", None))


class LabelScoreMemo:
    """Raw ``[K]`` label log-probabilities per (prompt, text), computed once across methods."""

    def __init__(self) -> None:
        self._rows: dict[tuple, np.ndarray] = {}

    def matrix(self, scorers: Sequence, texts: Sequence[str]) -> np.ndarray:
        """``[n, K]`` label scores of ``texts[i]`` under ``scorers[i]`` (calibrated when it is)."""
        todo: dict[int, list[int]] = defaultdict(list)  # scorer -> rows to compute
        by_id = {}
        for i, (sc, t) in enumerate(zip(scorers, texts)):
            if (_prompt_key(sc), t) not in self._rows:
                todo[id(sc)].append(i)
                by_id[id(sc)] = sc
        for sid, rows in todo.items():
            sc = by_id[sid]
            uniq = list(dict.fromkeys(texts[i] for i in rows))
            if hasattr(sc, "label_logprobs"):
                lp = sc.label_logprobs(uniq, calibrate=False)
                lp = lp.detach().cpu().numpy() if hasattr(lp, "detach") else np.asarray(lp)
            else:
                lp = label_logprob_matrix(sc, uniq)
            for t, row in zip(uniq, np.asarray(lp, dtype=np.float64)):
                self._rows[(_prompt_key(sc), t)] = row
        out = np.stack([self._rows[(_prompt_key(sc), t)] for sc, t in zip(scorers, texts)]) if texts else np.zeros((0, 0))
        for i, sc in enumerate(scorers):
            if getattr(sc, "calibrate", False):
                out[i] = out[i] - sc.content_free_bias()
        return out


def deletion_score_fn(scorers: Sequence, texts: Sequence[str], labels: Sequence[int]):
    """``score_fn(queries, labels, examples)`` for :func:`~priors.quality.faithfulness.deletion_aopc`:
    each query goes to its example's scorer; a ``top_m`` contrast keeps the label set of the
    example's unmasked text, as the prior itself does."""
    sets = [
        sc.candidates_for(t, y) if hasattr(sc, "candidates_for") else None
        for sc, t, y in zip(scorers, texts, labels)
    ]

    def score(queries: list[str], ys: list[int], examples: list[int]) -> np.ndarray:
        out = np.empty(len(queries), dtype=np.float64)
        groups: dict[int, list[int]] = defaultdict(list)
        for q, e in enumerate(examples):
            groups[id(scorers[e])].append(q)
        for rows in groups.values():
            sc = scorers[examples[rows[0]]]
            cands = [sets[examples[q]] for q in rows]
            extra = {"candidates": cands} if all(c is not None for c in cands) else {}
            out[rows] = sc.log_prob([queries[q] for q in rows], [ys[q] for q in rows], **extra)
        return out

    return score


__all__ = ["LabelScoreMemo", "deletion_score_fn", "scorer_of"]
