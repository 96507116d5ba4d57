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
  no class (no association interval above 0), absent from the training texts of ``c`` and overlapping no
  tested feature, inserted at
  the *same* positions of the same texts;
  ``flip_rate_control`` is their mean flip rate.
- **the test**: a paired bootstrap over the held-out texts
  (:func:`eg_train.evaluation.statistics.paired_bootstrap`, 95 % percentile interval, texts resampled
  with replacement, each text's feature flip (0/1) paired with its control flip (mean over the
  controls)) of ``flip_rate − flip_rate_control``: ``flip_ci95``. **Confirmed** when its lower end is
  above 0, the prior does not single the feature out (``Candidate.prior_singles_out``: the LLM's
  attribution calls it evidence) and, with an LLM given, the LLM counterfactual does not call it class
  evidence (``llm_evidence``, :mod:`.llm_check`: the LLM itself moves towards ``c`` when ``f`` is added).
- **removal**: ``f`` removed from the (original) held-out texts of ``c`` that contain it; ``removal_accuracy_drop``
  is the accuracy on them before minus after (``removal_n`` texts; None when there are none).

All modified texts of all candidates are scored by the model in one batched call.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from eg_train.evaluation.audit.candidates import Candidate, FeatureTable, _overlaps, log_odds
from eg_train.evaluation.audit.llm_check import LLMLogProb, PairBatch, apply_word_margin, llm_rows, llm_verdict
from eg_train.evaluation.statistics import paired_bootstrap
from eg_train.foundation.words import split_words
from eg_train.foundation.data.shortcut import insert_word, insertion_index, word_boundaries

_BUILDER_POSITION = {"first": "start", "last": "end"}  # the audit's position tags in the builder's terms

LLM_SCOPES = ("flipping", "tested")  # which tested candidates get the LLM counterfactual
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
    same power of 2, widened until some exist), overlapping no feature of ``exclude`` (the tested ones: a
    control must not carry another class's shortcut, ``zqab where``), tied to no class and absent from every training text of
    ``cand``'s class: a control measures what inserting a word *unrelated to the class* does, and at a few
    shots per class no association interval excludes 0, so "tied to no class" alone lets the class's own
    keywords in (``charged`` as the control of a feature of ``extra_charge_on_statement``)."""
    band = frequency_band(cand.count_total)
    labels = table.labels
    same_len = sorted(f for f in table.occurrences if len(f) == len(cand.words) and f != cand.words
                      and not any(_overlaps(f, g) for g in exclude)
                      and all(labels[i] != cand.label for i in table.occurrences[f]))
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
    llm: LLMLogProb | None = None,
    llm_max_texts: int | None = 8,
    llm_scope: str = "flipping",
) -> list[Candidate]:
    """Fill every candidate's ``proof`` (module docstring); returns the candidates.

    ``llm``: the frozen LLM's ``log p(class | CAP prompt(text))`` (:mod:`.llm_check`); with it, the
    candidates of ``llm_scope`` (``tested``: all; ``flipping``: those whose flip interval lies above 0,
    the only ones whose verdict it can change) get the LLM counterfactual on up to ``llm_max_texts`` of
    their insertion texts, and one whose ``llm_evidence`` is true is not confirmed.

    The insertion position of a text depends only on the position tag (one seeded draw per text and
    tag), so candidates of a class with the same length, frequency band and tag share their controls:
    each control goes once into every held-out text.
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
        key = (len(cand.words), frequency_band(cand.count_total), cand.position, cand.label)
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
    flipping = []
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
            if ci.low > 0 and not cand.prior_singles_out:
                flipping.append(cand)
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
    if llm is not None:
        if llm_scope not in LLM_SCOPES:
            raise ValueError(f"llm_scope must be one of {LLM_SCOPES}, got {llm_scope!r}")
        chosen = {id(c) for c in (candidates if llm_scope == "tested" else flipping)}
        _llm_check([p for p in plans if id(p[0]) in chosen], texts, at, llm, llm_max_texts, n_boot, seed)
    for cand in candidates:
        cand.proof.setdefault("llm_tested", False)
    return list(candidates)


def _llm_check(plans: list, texts: list[str], at: dict[str, list[int]], llm: LLMLogProb,
               max_texts: int | None, n_boot: int, seed: int) -> None:
    """The LLM counterfactual (:mod:`.llm_check`) of every planned candidate: the neutralised held-out
    texts, with the feature and with each of its controls at the same positions, scored for the
    candidate's class in one batched call."""
    order = np.random.default_rng([seed, 11]).permutation(len(texts)).tolist()
    batch, jobs = PairBatch(), []
    for cand, rows, _ins, feats, _slices, _own, _rem in plans:
        use = llm_rows(rows, order, max_texts)
        pos = at[cand.position]
        ctrl = [batch.add([insert_phrase(texts[i], " ".join(g), pos[i]) for i in use], cand.label) for g in feats]
        jobs.append((cand, batch.add([texts[i] for i in use], cand.label),
                     batch.add([insert_phrase(texts[i], cand.feature, pos[i]) for i in use], cand.label), ctrl))
    lp = batch.score(llm)
    verdicts = []
    for cand, b, f, ctrl in jobs:
        control = np.stack([lp[g] for g in ctrl]) if ctrl else np.zeros((0, len(b)))
        verdicts.append(llm_verdict(lp[b], lp[f], control, n_boot=n_boot, seed=seed))
    apply_word_margin(verdicts)
    for (cand, *_), verdict in zip(jobs, verdicts):
        cand.proof.update(llm_tested=True, **verdict)
        cand.proof["confirmed"] = bool(cand.proof.get("confirmed")) and not verdict["llm_evidence"]


__all__ = ["boundaries", "contains_feature", "control_features", "feature_starts", "insert_phrase", "insertion_position", "prove", "remove_feature"]
