"""Label relatedness: do the label names themselves call a feature class evidence?

The LLM counterfactual (:mod:`.llm_check`) asks the frozen LLM whether adding a feature moves it
towards the class. A small LLM cannot separate a weak intent keyword from a random word (gemma3-270m
moves ``atm`` towards ``pending_cash_withdrawal`` by +0.41 nats, the random word ``chimney`` by
+0.23; docs/audit.md), so on clean data the audit confirmed real keywords as shortcuts. The label
names are a second source of task knowledge every user has (the CAP prompt reads them too); a
sentence encoder says which of the training data's n-grams are close to a label's name.

For a candidate (feature ``f`` of ``n`` words, class ``c``), with ``E`` the sentence encoder
(mean-pooled, L2-normalised; ``all-minilm-l6-v2`` by default) and ``L_c`` the label name as words
(``card_arrival`` → "card arrival"):

- ``label_similarity`` ``s = cos(E(f), E(L_c))``;
- the null: every distinct ``n``-word feature of the training texts (``max_null`` of them at most,
  seeded), each with its cosine to the same label: what a feature of the data *not chosen for being
  related to the label* scores;
- ``label_p = (1 + #{g : cos(E(g), E(L_c)) >= s}) / (1 + |null|)``, the one-sided rank p-value;
- ``label_evidence`` = ``label_p <= alpha``: the feature is among the ``alpha`` share of the data's
  features closest to the label's name, so the task's own words call it evidence and it is not
  confirmed as a shortcut.

A shortcut that is unrelated to its class's name (a planted noun, a signature, a filler word) is
cleared with probability about ``alpha``; a label set whose names carry no words (``0``, ``1``, ...)
gets no verdict (``label_evidence`` false for every candidate).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from eg_train.evaluation.audit.candidates import Candidate, FeatureTable

_SPLIT = re.compile(r"[_\-./]+|(?<=[a-z])(?=[A-Z])")


def label_words(name: str) -> str:
    """A label name as words: ``card_arrival`` → ``card arrival``, ``CardArrival`` → ``card arrival``."""
    return " ".join(p for p in _SPLIT.split(str(name)) if p).lower()


def has_words(names: Sequence[str]) -> bool:
    """Whether the label names carry words at all (``0``/``1``/``LABEL_3`` carry no task knowledge)."""
    return any(re.search(r"[a-zA-Z]{2,}", label_words(n)) and not re.fullmatch(r"label \d+", label_words(n))
               for n in names)


def null_features(table: FeatureTable, n: int, max_null: int, seed: int) -> list[str]:
    """Every distinct ``n``-word feature of the training texts (a seeded ``max_null`` of them, sorted)."""
    feats = sorted(" ".join(f) for f in table.occurrences if len(f) == n)
    if len(feats) > max_null:
        rng = np.random.default_rng([seed, 11, n])
        feats = sorted(rng.choice(feats, size=max_null, replace=False).tolist())
    return feats


def label_check(
    candidates: Sequence[Candidate],
    table: FeatureTable,
    label_names: Sequence[str],
    embed,
    *,
    alpha: float = 0.05,
    max_null: int = 2000,
    seed: int = 0,
) -> None:
    """Add ``label_similarity``, ``label_p``, ``label_null_n`` and ``label_evidence`` to every
    candidate's ``proof``, and clear ``confirmed`` where ``label_evidence`` (module docstring;
    ``cleared_by_label`` marks a candidate the check cleared).

    ``embed(texts) -> [len(texts), d]`` unit-norm rows (:class:`~eg_train.evaluation.attacks.similarity.SentenceEncoder.embed`).
    """
    if not candidates:
        return
    if not has_words(label_names):
        for cand in candidates:
            cand.proof.update(label_similarity=None, label_p=None, label_null_n=0, label_evidence=False,
                              cleared_by_label=False)
        return
    labels = np.asarray(embed([label_words(n) for n in label_names]), dtype=np.float64)
    lengths = sorted({len(c.words) for c in candidates})
    nulls = {n: null_features(table, n, max_null, seed) for n in lengths}
    null_sims = {n: np.asarray(embed(f), dtype=np.float64) @ labels.T if f else np.zeros((0, len(labels)))
                 for n, f in nulls.items()}
    feats = np.asarray(embed([c.feature for c in candidates]), dtype=np.float64)
    for cand, vec in zip(candidates, feats):
        n = len(cand.words)
        own = [k for k, f in enumerate(nulls[n]) if f == cand.feature]  # the feature is no null of itself
        sims = np.delete(null_sims[n][:, cand.label], own)
        s = float(vec @ labels[cand.label])
        p = (1 + int((sims >= s).sum())) / (1 + sims.size)
        evidence = bool(sims.size > 0 and p <= alpha)
        cleared = evidence and bool(cand.proof.get("confirmed"))
        cand.proof.update(label_similarity=round(s, 6), label_p=round(p, 6), label_null_n=int(sims.size),
                          label_evidence=evidence, cleared_by_label=cleared)
        if cleared:
            cand.proof["confirmed"] = False


__all__ = ["has_words", "label_check", "label_words", "null_features"]
