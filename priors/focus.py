"""Focus stage for long inputs (docs/design.md#focus-lime; Focus-LIME, arXiv 2602.04607).

Phase I (scout): the surviving text is split into units (paragraphs while at least two survive,
then sentences); LIME over units on a cheap *proxy* scorer ranks them; the top units are kept
(at most ``keep_fraction`` of the surviving words per round, never less than ``word_budget``;
with ``min_drop``, only the shortest run of top units whose removal takes most of the proxy's
evidence away), until the survivors fit ``word_budget`` words (and, with ``min_drop``, a round
drops no unit) or ``max_rounds`` is reached. The survivors are the focus mask over words.

Phase II (scrutinise): the target scorer perturbs only the words inside the focus (Bernoulli
``keep_prob``); words outside are always kept and score 0 (see
:meth:`priors.methods.perturbation.PerturbationPrior.attribute` with ``free``).

The paper fixes no schedule, budget or sample count; the defaults below are this project's
choice and ``scripts/bench_long.py`` measures them.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from eg_train.foundation.words import Words
from priors.masks import cosine_kernel, example_rng
from priors.proxy import scorer_config
from priors.ridge import ridge_cholesky

log = logging.getLogger(__name__)

_PARAGRAPH_END = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# ``min_drop`` applies only when removing the capped units at least halves the proxy's p(y):
# below that the proxy sees no evidence to localise, and a short run would be chosen by noise.
_MIN_EVIDENCE_GAP = math.log(2.0)


@dataclass(frozen=True)
class FocusConfig:
    """Schedule of the focus stage (all of it goes into the prior's config hash).

    Args:
        min_words: inputs with more words than this go through the focus stage.
        word_budget: Phase I stops once the surviving text has at most this many words.
        max_rounds: Phase I round limit (the focus may then stay above the budget).
        keep_fraction: per round keep the top units up to this fraction of the surviving words.
        min_kept_units: a round works on paragraphs only while its word cap holds at least this
            many paragraphs of average size; otherwise on sentences. A cap that fits one
            paragraph would keep a single unit and lose evidence repeated in other paragraphs.
        min_drop: keep only the shortest run of top-ranked units whose removal from the
            survivors lowers the proxy's log p(y) by at least this share of what removing all
            the capped units does (0: fill the cap). Evidence repeated in several units is kept
            whole, since removing one copy lowers nothing. With it, rounds go on below
            ``word_budget`` until one drops no unit: the cap alone fills the focus with whatever
            the proxy ranks next, which dilutes Phase II. Costs one proxy query per candidate run.
        proxy_samples: LIME perturbations per Phase I round (fewer when all unit subsets can be
            enumerated exactly).
        keep_prob: probability that a unit is kept in a Phase I perturbation.
        kernel_width: LIME cosine-kernel width over unit masks.
        ridge_lambda: ridge strength of the Phase I regression.
        proxy_target: regression target of Phase I: ``"log_prob"`` (scale-free across proxies;
            a small LM gives p ≈ 1e-6) or ``"prob"`` (LIME's own choice).
        seed: Phase I mask seed (combined with the example id).
    """

    min_words: int = 256
    word_budget: int = 64
    max_rounds: int = 6
    keep_fraction: float = 0.25
    min_kept_units: int = 2
    min_drop: float = 0.0
    proxy_samples: int = 64
    keep_prob: float = 0.5
    kernel_width: float = 0.25
    ridge_lambda: float = 1.0
    proxy_target: str = "log_prob"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.word_budget < 1:
            raise ValueError(f"focus word_budget must be >= 1 (got {self.word_budget})")
        if self.max_rounds < 1:
            raise ValueError(f"focus max_rounds must be >= 1 (got {self.max_rounds})")
        if not 0.0 < self.keep_fraction < 1.0:
            raise ValueError(f"focus keep_fraction must be in (0, 1) (got {self.keep_fraction})")
        if self.min_kept_units < 1:
            raise ValueError(f"focus min_kept_units must be >= 1 (got {self.min_kept_units})")
        if not 0.0 <= self.min_drop <= 1.0:
            raise ValueError(f"focus min_drop must be in [0, 1] (got {self.min_drop})")
        if self.proxy_samples < 4:
            raise ValueError(f"focus proxy_samples must be >= 4 (got {self.proxy_samples})")
        if self.proxy_target not in ("log_prob", "prob"):
            raise ValueError(f"focus proxy_target must be 'log_prob' or 'prob' (got {self.proxy_target!r})")


@dataclass
class FocusSelection:
    """Phase I result for one example: the focus mask over words and what it cost."""

    mask: np.ndarray  # bool [d]: words Phase II perturbs
    proxy_queries: int
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def focus_words(self) -> int:
        return int(self.mask.sum())


def unit_ids(words: Words) -> tuple[np.ndarray, np.ndarray]:
    """Paragraph and sentence index of every word (blank line / terminal punctuation or newline)."""

    def assign(pattern: re.Pattern[str]) -> np.ndarray:
        ends = [m.end() for m in pattern.finditer(words.text)]
        return np.array([bisect.bisect_right(ends, s) for s, _ in words.spans], dtype=np.int64)

    return assign(_PARAGRAPH_END), assign(_SENTENCE_END)


def units_text(words: Words, unit: np.ndarray, keep: np.ndarray) -> str:
    """Text made of the kept units only, each with its own punctuation and trailing separator.

    ``unit[j]`` is the unit of word ``j``; ``keep`` lists the unit ids to keep. Removing whole
    units this way leaves no stray punctuation behind (``Words.keep`` would).
    """
    keep_set = set(int(u) for u in keep)
    firsts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])  # first word of each unit run
    pieces = []
    for r, j in enumerate(firsts):
        if int(unit[j]) not in keep_set:
            continue
        end = words.spans[firsts[r + 1]][0] if r + 1 < len(firsts) else len(words.text)
        pieces.append(words.text[words.spans[j][0] : end])
    return "".join(pieces).strip()


def _unit_masks(n_units: int, n: int, rng: np.random.Generator, keep_prob: float) -> np.ndarray:
    """All-ones row first; every subset when they fit in ``n`` rows, else Bernoulli rows."""
    if 2**n_units <= n:
        rows = [np.ones(n_units, dtype=np.uint8)]
        rows += [np.array(b, dtype=np.uint8) for b in itertools.product((1, 0), repeat=n_units) if not all(b)]
        return np.stack(rows)
    masks = (rng.random((n, n_units)) < keep_prob).astype(np.uint8)
    masks[0] = 1
    return masks


class FocusSelector:
    """Phase I of Focus-LIME over a proxy scorer (anything with ``log_prob`` and ``queries``).

    Args:
        proxy: a cheap scorer (:class:`priors.proxy.ClassifierScorer` or a ``LabelScorer``).
        config: the schedule.
        proxy_id: the proxy's name in :meth:`config` (prior cache key).
    """

    def __init__(self, proxy, config: FocusConfig | None = None, *, proxy_id: str | None = None) -> None:
        self.proxy = proxy
        self.cfg = config or FocusConfig()
        self.proxy_id = proxy_id

    def config(self) -> dict[str, Any]:
        return {**asdict(self.cfg), "proxy": scorer_config(self.proxy, self.proxy_id)}

    def applies(self, words: Words) -> bool:
        return len(words) > self.cfg.min_words

    def select(self, words: Words, label: int, example_id: str) -> FocusSelection:
        """Phase I for one example: focus mask over ``words`` and the proxy queries spent."""
        cfg = self.cfg
        d = len(words)
        if d == 0:
            raise ValueError(f"example {example_id!r}: cannot focus a text with no words")
        para, sent = unit_ids(words)
        active = np.ones(d, dtype=bool)
        rng = example_rng(cfg.seed, f"focus:{example_id}")
        start_queries = self.proxy.queries
        rounds: list[dict[str, Any]] = []
        level = "paragraph"
        settled = cfg.min_drop == 0  # with min_drop, refine below the budget until a round drops nothing
        for _ in range(cfg.max_rounds):
            n_active = int(active.sum())
            if n_active <= cfg.word_budget and settled:
                break
            cap = max(cfg.word_budget, cfg.keep_fraction * n_active)
            if level == "paragraph":  # coarse to fine only: once on sentences, stay there
                para_sizes = np.unique(para[active], return_counts=True)[1]
                if len(para_sizes) < 2 or cap < cfg.min_kept_units * para_sizes.mean():
                    level = "sentence"
            unit = para if level == "paragraph" else sent
            ids, sizes = np.unique(unit[active], return_counts=True)
            if len(ids) < 2:
                break  # one sentence over budget: nothing left to split
            # Units outside the survivors get id -1 so that they never re-enter a text.
            local = np.where(active, np.searchsorted(ids, unit), -1)
            masks = _unit_masks(len(ids), cfg.proxy_samples, rng, cfg.keep_prob)
            texts = [units_text(words, local, np.flatnonzero(m)) for m in masks]
            log_p = self.proxy.log_prob(texts, [label] * len(texts))
            target = log_p if cfg.proxy_target == "log_prob" else np.exp(log_p)
            weights = cosine_kernel(masks, cfg.kernel_width)
            alpha, _ = ridge_cholesky(
                torch.from_numpy(masks[None].astype(np.float64)),
                torch.from_numpy(target[None]),
                cfg.ridge_lambda,
                torch.from_numpy(weights[None]),
            )
            order = np.argsort(-alpha[0].numpy(), kind="stable")
            n_cap = max(1, int(np.searchsorted(np.cumsum(sizes[order]), cap, side="right")))
            n_keep = self._shortest_comprehensive_run(words, local, order, n_cap, float(log_p[0]), label)
            kept = order[:n_keep]
            settled = cfg.min_drop == 0 or n_keep == len(ids)
            active &= np.isin(local, kept)
            rounds.append({"level": level, "units": len(ids), "samples": len(masks), "kept_units": n_keep,
                           "words": int(sizes[kept].sum())})
        return FocusSelection(mask=active, proxy_queries=self.proxy.queries - start_queries, rounds=rounds)

    def _shortest_comprehensive_run(
        self, words: Words, local: np.ndarray, order: np.ndarray, n_cap: int, log_p_all: float, label: int
    ) -> int:
        """How many of the top units (``order``) to keep: the fewest whose removal takes
        ``min_drop`` of the log p(y) drop that removing all ``n_cap`` capped units takes."""
        if self.cfg.min_drop == 0 or n_cap < 2:
            return n_cap
        rest = [units_text(words, local, order[j:]) for j in range(1, n_cap + 1)]
        log_p_rest = self.proxy.log_prob(rest, [label] * len(rest))
        full = log_p_all - log_p_rest[-1]
        if full < _MIN_EVIDENCE_GAP:
            return n_cap
        return int(np.flatnonzero(log_p_all - log_p_rest >= self.cfg.min_drop * full)[0]) + 1


def focus_masks(focus: np.ndarray, n: int, rng: np.random.Generator, keep_prob: float = 0.5) -> np.ndarray:
    """Phase II masks over all words: focus words Bernoulli(``keep_prob``), others always 1;
    row 0 all ones (the unperturbed input)."""
    focus = np.asarray(focus, dtype=bool)
    if not focus.any():
        raise ValueError("empty focus mask: nothing to perturb")
    if n < 2:
        raise ValueError(f"need at least 2 perturbations (got n={n})")
    masks = np.ones((n, len(focus)), dtype=np.uint8)
    masks[1:, focus] = (rng.random((n - 1, int(focus.sum()))) < keep_prob).astype(np.uint8)
    return masks
