"""Proof by counterfactual: does inserting a candidate feature make the model predict its class?

For a candidate (feature ``f``, class ``c``) and a held-out split (never the test split):

- **insertion**: ``f`` goes, at its typical position (``first``: word 0, ``last``: the end, ``any``: a
  seeded word boundary per text), into every held-out text of another class that the model does
  not already put in ``c``. The held-out texts are first *neutralised*: each loses the tested features
  of its own class (a held-out split carries the shortcut too, and a text its own shortcut already
  decides would hide what an inserted feature does). ``flip_rate``: the share now predicted ``c``; ``delta_log_p``: the mean
  change of ``log p(c)``.
- **control**: ``n_controls`` random features of the same length (words) and the same frequency band
  in the training texts (document frequency in the same power of 2, widened until some exist), tied to
  no class (no association interval above 0), inserted at the *same* positions of the same texts;
  ``flip_rate_control`` is their mean flip rate.
- **the test**: a paired bootstrap over the held-out texts
  (:func:`eg_train.evaluation.statistics.paired_bootstrap`, 95 % percentile interval, texts resampled
  with replacement, each text's feature flip (0/1) paired with its control flip (mean over the
  controls)) of ``flip_rate − flip_rate_control``: ``flip_ci95``. **Confirmed** when its lower end is
  above 0 and the prior does not single the feature out (``Candidate.prior_singles_out``: the LLM
  calls it evidence, so it is no shortcut).
- **removal**: ``f`` removed from the (original) held-out texts of ``c`` that contain it; ``removal_accuracy_drop``
  is the accuracy on them before minus after (``removal_n`` texts; None when there are none).

All modified texts of all candidates are scored by the model in one batched call.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from eg_train.evaluation.audit.candidates import Candidate, FeatureTable, log_odds
from eg_train.evaluation.statistics import paired_bootstrap
from eg_train.foundation.words import split_words
from eg_train.foundation.data.shortcut import insert_word, insertion_index, word_boundaries

_BUILDER_POSITION = {"first": "start", "last": "end"}  # the audit's position tags in the builder's terms

Predict = Callable[[Sequence[str]], np.ndarray]  # texts -> class probabilities [n, K]


def boundaries(text: str) -> list[int]:
    """Word indices before which a new word can go without touching a word (the shortcut builder's rule)."""
    return word_boundaries(text)


def insert_phrase(text: str, phrase: str, k: int) -> str:
    """``text`` with ``phrase`` (one or more words) inserted so that it starts at word ``k``."""
    return insert_word(text, phrase, k)


def remove_feature(text: str, feature: Sequence[str]) -> str:
    """``text`` without every (case-insensitive) occurrence of the word sequence ``feature``."""
    w = split_words(text)
    keep = [1] * len(w)
    for k in feature_starts(text, feature):
        keep[k : k + len(feature)] = [0] * len(feature)
    return w.keep(keep)


def feature_starts(text: str, feature: Sequence[str]) -> list[int]:
    """Word indices at which the (lower-cased) word sequence ``feature`` starts in ``text``."""
    low = [x.lower() for x in split_words(text).words]
    n = len(feature)
    return [k for k in range(len(low) - n + 1) if tuple(low[k : k + n]) == tuple(feature)]


def contains_feature(text: str, feature: Sequence[str]) -> bool:
    return bool(feature_starts(text, feature))


def insertion_position(text: str, position: str, rng: np.random.Generator) -> int:
    """Where a feature goes: word 0 (``first``), the end (``last``), or a random boundary (``any``)."""
    return insertion_index(text, _BUILDER_POSITION.get(position, "random"), rng)


def _tied_to_any(table: FeatureTable, feature: tuple[str, ...]) -> bool:
    """Whether the feature's association interval with some class lies above 0."""
    labels = np.asarray(table.labels)
    sizes = np.bincount(labels, minlength=table.n_classes)
    rows = list(table.occurrences[feature])
    per = np.bincount(labels[rows], minlength=table.n_classes)
    n, total = len(labels), len(rows)
    return any(log_odds(int(per[c]), int(sizes[c] - per[c]), total - int(per[c]), int(n - sizes[c] - (total - per[c])))[1] > 0
               for c in np.flatnonzero(per))


def frequency_band(doc_freq: int) -> int:
    """The control's frequency band: ``floor(log2(document frequency))``."""
    return int(np.floor(np.log2(max(1, doc_freq))))


def control_features(
    table: FeatureTable, cand: Candidate, n_controls: int, rng: np.random.Generator,
    exclude: set[tuple[str, ...]] = frozenset(),
) -> list[tuple[str, ...]]:
    """``n_controls`` random features of ``cand``'s length and frequency band (document frequency in the
    same power of 2, widened until some exist), tied to no class."""
    band = frequency_band(cand.count_total)
    same_len = sorted(f for f in table.occurrences if len(f) == len(cand.words) and f != cand.words and f not in exclude)
    pool: list[tuple[str, ...]] = []
    for width in range(0, 13):
        pool = [f for f in same_len if abs(frequency_band(table.doc_freq(f)) - band) <= width and not _tied_to_any(table, f)]
        if len(pool) >= n_controls:
            break
    if not pool:
        return []
    idx = rng.choice(len(pool), size=min(n_controls, len(pool)), replace=False)
    return [pool[i] for i in sorted(idx.tolist())]


def prove(
    candidates: Sequence[Candidate],
    table: FeatureTable,
    heldout_texts: Sequence[str],
    heldout_labels: Sequence[int],
    predict: Predict,
    *,
    n_controls: int = 3,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[Candidate]:
    """Fill every candidate's ``proof`` (module docstring); returns the candidates.

    The insertion position of a text depends only on the position tag (one seeded draw per text and
    tag), so candidates with the same length, frequency band and tag share their controls: each control
    goes once into every held-out text and its predictions serve every class.
    """
    originals = list(heldout_texts)
    labels = np.asarray(heldout_labels, dtype=np.int64)
    # Neutralised texts: each without the tested features of its own class (a text the shortcut already
    # decides would hide what an inserted feature does; an emptied text stays as it was).
    texts = []
    for t, y in zip(originals, labels):
        new = t
        for cand in candidates:
            if cand.label == y and contains_feature(new, cand.words):
                new = remove_feature(new, cand.words) or new
        texts.append(new)
    base = predict(texts)
    base_pred = base.argmax(-1)
    orig_pred = predict(originals).argmax(-1) if texts != originals else base_pred
    queue: list[str] = []  # every modified text, scored at once

    def enqueue(batch: list[str]) -> slice:
        start = len(queue)
        queue.extend(batch)
        return slice(start, len(queue))

    at = {tag: [insertion_position(t, tag, np.random.default_rng([seed, k, i])) for i, t in enumerate(texts)]
          for k, tag in enumerate(("first", "last", "any"))}
    tested = {c.words for c in candidates}
    controls: dict[tuple, tuple[list[tuple[str, ...]], list[slice]]] = {}
    plans = []
    for cand in candidates:
        key = (len(cand.words), frequency_band(cand.count_total), cand.position)
        if key not in controls:
            feats = control_features(table, cand, n_controls, np.random.default_rng([seed, *key[:2], len(controls)]),
                                     exclude=tested)
            pos = at[cand.position]
            controls[key] = (feats, [enqueue([insert_phrase(t, " ".join(g), k) for t, k in zip(texts, pos)])
                                     for g in feats])
        rows = [i for i in range(len(texts)) if labels[i] != cand.label and base_pred[i] != cand.label]
        ins = enqueue([insert_phrase(texts[i], cand.feature, at[cand.position][i]) for i in rows])
        own = [i for i in range(len(texts)) if labels[i] == cand.label and contains_feature(originals[i], cand.words)]
        rem = enqueue([remove_feature(originals[i], cand.words) for i in own])
        feats, slices = controls[key]
        plans.append((cand, rows, ins, feats, slices, own, rem))
    probs = predict(queue) if queue else np.zeros((0, base.shape[1]))
    eps = 1e-12
    for cand, rows, ins, feats, slices, own, rem in plans:
        c = cand.label
        ctrl = [np.arange(sl.start, sl.stop)[rows] for sl in slices]  # the same texts as the insertion
        proof: dict = {"heldout_n": len(rows), "controls": [" ".join(g) for g in feats]}
        if rows:
            p_ins = probs[ins]
            flips = (p_ins.argmax(-1) == c).astype(float)
            d_logp = np.log(p_ins[:, c] + eps) - np.log(base[rows, c] + eps)
            if ctrl:
                ctrl_flips = np.mean([(probs[s].argmax(-1) == c) for s in ctrl], axis=0).astype(float)
                ctrl_dlogp = np.mean([np.log(probs[s][:, c] + eps) - np.log(base[rows, c] + eps) for s in ctrl], axis=0)
            else:
                ctrl_flips, ctrl_dlogp = np.zeros_like(flips), np.zeros_like(d_logp)
            ci = paired_bootstrap(flips, ctrl_flips, n_boot=n_boot, seed=seed)
            proof.update(flip_rate=float(flips.mean()), flip_rate_control=float(ctrl_flips.mean()),
                         flip_ci95=[ci.low, ci.high], delta_log_p=float(d_logp.mean()),
                         delta_log_p_control=float(ctrl_dlogp.mean()),
                         confirmed=bool(ci.low > 0) and not cand.prior_singles_out)
        else:
            proof.update(flip_rate=None, flip_rate_control=None, flip_ci95=None, delta_log_p=None,
                         delta_log_p_control=None, confirmed=False)
        if own:
            before = float((orig_pred[own] == c).mean())
            after = float((probs[rem].argmax(-1) == c).mean())
            proof.update(removal_n=len(own), removal_accuracy_before=before, removal_accuracy_drop=before - after)
        else:
            proof.update(removal_n=0, removal_accuracy_before=None, removal_accuracy_drop=None)
        cand.proof = proof
    return list(candidates)


__all__ = ["boundaries", "contains_feature", "control_features", "feature_starts", "insert_phrase", "insertion_position", "prove", "remove_feature"]
