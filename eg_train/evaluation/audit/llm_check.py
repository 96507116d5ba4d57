"""LLM counterfactual: does the frozen LLM itself move towards a feature's class when the feature is added?

The proof (:mod:`.proof`) asks whether the *model* flips when a feature is inserted; a class keyword
("pending", "exchange rate") flips it too, and rightly so. What separates a shortcut from evidence is
whether the task, as the LLM reads it, calls the feature relevant. The attribution share of the prior
(``prior_singles_out``) answers that only indirectly; this module measures it: the same held-out texts,
the same insertions and the same matched controls, scored by the LLM's class-aware (CAP) prompt
(instruction + label space, :func:`priors.prompts.class_aware_template`) with the priors' own scorer
(:class:`priors.scorer.LabelScorer`, one batched call over every (text, class) pair, shared prompt prefix).

Per candidate (feature ``f``, class ``c``), on up to ``max_texts`` of its insertion texts ``i`` (a seeded
order of the held-out split, the first ones among the texts the proof inserts into):

- ``d_i = log p_LLM(c | x_i + f) − log p_LLM(c | x_i)``; ``llm_delta_log_p`` is their mean ``D``;
- ``e_ij = log p_LLM(c | x_i + g_j) − log p_LLM(c | x_i)`` for each of the candidate's ``m`` matched
  controls ``g_j`` (random words of the same length and frequency band, at the same positions);
  ``e_i`` their mean over ``j``, ``llm_delta_log_p_control`` the mean ``Ē`` over texts;
- ``llm_ci95``: the paired bootstrap 95 % percentile interval of ``mean(d − e)`` (texts resampled);
- ``llm_word_margin``: how far a *random word's* change ranges around ``Ē``: ``t_{q,df} · s_w ·
  sqrt(1 + 1/m)``, ``s_w`` the standard deviation of the control words' mean changes ``E_j = mean_i
  e_ij`` around their candidate's ``Ē``, pooled over every LLM-tested candidate of the audit (``df`` =
  ``Σ (m − 1)``), ``q = 1 − 0.025 / K`` over the ``K`` LLM-tested candidates (``llm_word_level``,
  Bonferroni: the chance that *any* random-word shortcut of the audit is cleared as evidence stays
  ≤ 2.5 %): the upper end of the prediction interval of one more random word. The paired interval alone
  treats the control words as fixed; every word shifts the LLM a little its own way, and a planted
  random word (``chimney``) is just such a word;
- ``llm_evidence``: ``D > 0`` (the LLM moves *towards* ``c`` when ``f`` is added), the lower end of
  ``llm_ci95`` above 0 (more than the controls on these texts) and ``D − Ē > llm_word_margin`` (more
  than a random word of the same band would): ``f`` is class evidence, so not a shortcut. A function
  word placed at random typically lowers ``log p_LLM(c)`` more than a nonce string does, so "more than
  the control" alone would call a feature that *lowers* ``p(c)`` evidence.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from eg_train.evaluation.statistics import paired_bootstrap

LLMLogProb = Callable[[Sequence[str], Sequence[int]], np.ndarray]  # (texts, classes) -> log p_LLM(class | text)
LLM_CONTRASTS = ("none", "full")  # top_m needs per-text candidate sets: not a counterfactual's quantity


class PairBatch:
    """(text, class) pairs to score, each distinct pair once, all in one call."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, int], int] = {}
        self.texts: list[str] = []
        self.labels: list[int] = []
        self.scores: np.ndarray | None = None

    def add(self, texts: Sequence[str], label: int) -> np.ndarray:
        """Queue ``(t, label)`` for every ``t``; returns their row indices."""
        rows = []
        for t in texts:
            key = (t, int(label))
            if key not in self._index:
                self._index[key] = len(self.texts)
                self.texts.append(t)
                self.labels.append(int(label))
            rows.append(self._index[key])
        return np.asarray(rows, dtype=np.int64)

    def score(self, log_prob: LLMLogProb) -> np.ndarray:
        """Score every queued pair with one call of ``log_prob``."""
        self.scores = np.asarray(log_prob(self.texts, self.labels), dtype=np.float64) if self.texts else np.zeros(0)
        return self.scores

    def __len__(self) -> int:
        return len(self.texts)


def llm_rows(rows: Sequence[int], order: Sequence[int], max_texts: int | None) -> list[int]:
    """The first ``max_texts`` of ``rows`` in the seeded ``order`` of the held-out texts (sorted)."""
    chosen = set(rows)
    picked = [i for i in order if i in chosen]
    return sorted(picked if max_texts is None else picked[:max_texts])


def llm_verdict(base: np.ndarray, feature: np.ndarray, control: np.ndarray, *, n_boot: int, seed: int) -> dict:
    """The LLM fields of one candidate from per-text ``log p_LLM(c)``: ``base`` ``[n]`` (original),
    ``feature`` ``[n]`` (feature inserted), ``control`` ``[m, n]`` (each control word inserted; ``[n]``: one).
    ``llm_evidence`` here is the paired half of the test; :func:`apply_word_margin` adds the random-word half."""
    control = np.atleast_2d(control)
    d, e = feature - base, (control - base).mean(axis=0)
    if d.size == 0 or control.shape[0] == 0:
        return {"llm_n": int(d.size), "llm_delta_log_p": float(d.mean()) if d.size else None,
                "llm_delta_log_p_control": None, "llm_ci95": None, "llm_evidence": False, "_words": np.zeros(0)}
    ci = paired_bootstrap(d, e, n_boot=n_boot, seed=seed)
    return {"llm_n": int(d.size), "llm_delta_log_p": float(d.mean()), "llm_delta_log_p_control": float(e.mean()),
            "llm_ci95": [ci.low, ci.high], "llm_evidence": bool(ci.low > 0 and d.mean() > 0),
            "_words": (control - base).mean(axis=1)}  # E_j: each control word's mean change


def word_margin(word_means: Sequence[np.ndarray], level: float = 0.975) -> tuple[float | None, int]:
    """``(t_{level,df} · s_w, df)``: the pooled spread of the control words' mean changes around their
    candidate's mean (one array ``E_j`` per candidate); ``(None, 0)`` without two words for some candidate."""
    from scipy.stats import t

    ss = sum(float(((w - w.mean()) ** 2).sum()) for w in word_means if len(w) > 1)
    df = sum(len(w) - 1 for w in word_means if len(w) > 1)
    if df < 1:
        return None, 0
    return float(t.ppf(level, df)) * float(np.sqrt(ss / df)), df


def apply_word_margin(verdicts: list[dict]) -> None:
    """Complete each verdict of :func:`llm_verdict` with ``llm_word_margin`` and the random-word half of
    ``llm_evidence`` (pooled over ``verdicts``, the audit's LLM-tested candidates). The prediction level is
    Bonferroni-corrected over the ``K`` candidates (one-sided ``1 − 0.025 / K``): "evidence" clears a
    candidate, and with ``K`` tests at 2.5 % each some random-word shortcut would be cleared by chance."""
    level = 1 - 0.025 / max(1, len(verdicts))
    spread, df = word_margin([v["_words"] for v in verdicts], level)
    for v in verdicts:
        words = v.pop("_words")
        m = len(words)
        margin = None if spread is None or m == 0 else spread * float(np.sqrt(1 + 1 / m))
        v["llm_word_margin"], v["llm_word_df"], v["llm_word_level"] = margin, df, level
        if v["llm_evidence"]:
            v["llm_evidence"] = margin is not None and v["llm_delta_log_p"] - v["llm_delta_log_p_control"] > margin


class TimedLogProb:
    """An :data:`LLMLogProb` that counts its pairs and seconds (the audit reports the LLM's cost)."""

    def __init__(self, fn: LLMLogProb) -> None:
        self.fn, self.pairs, self.seconds = fn, 0, 0.0

    def __call__(self, texts: Sequence[str], labels: Sequence[int]) -> np.ndarray:
        t = time.perf_counter()
        out = self.fn(texts, labels)
        self.seconds += time.perf_counter() - t
        self.pairs += len(texts)
        return out


def cap_log_prob(llm: str | tuple, label_names: Sequence[str], instruction: str | None = None, contrast: str = "none",
                 device: str = "cpu") -> LLMLogProb:
    """``log p_LLM(class | CAP prompt(text))`` of the frozen LLM ``llm`` (an embedded alias, a folder or a hub
    id, or a loaded ``(model, tokenizer)`` pair): the priors' :class:`~priors.scorer.LabelScorer` on the
    class-aware template."""
    from eg_train.foundation.errors import ConfigError
    from eg_train.foundation.models.resolve import load_causal_lm
    from priors.prompts import DEFAULT_INSTRUCTION, class_aware_template
    from priors.scorer import LabelScorer

    if contrast not in LLM_CONTRASTS:
        raise ConfigError(f"audit llm_contrast must be one of {LLM_CONTRASTS}, got {contrast!r}")
    if isinstance(llm, str):
        try:
            model, tok = load_causal_lm(llm)
        except (OSError, ValueError) as err:
            raise ConfigError(f"audit llm {llm!r} cannot be loaded ({str(err).splitlines()[0]}); name another LLM "
                              "(--params.llm) or pass --params.llm null to skip the LLM counterfactual") from None
    else:
        model, tok = llm
    model.to(device)
    template = class_aware_template(list(label_names), instruction or DEFAULT_INSTRUCTION)
    return LabelScorer(model, tok, template, list(label_names), contrast=contrast).log_prob


__all__ = ["LLMLogProb", "LLM_CONTRASTS", "PairBatch", "TimedLogProb", "apply_word_margin", "cap_log_prob", "llm_rows",
           "llm_verdict", "word_margin"]
