"""Shortcut metrics: does a model (or a prior) follow a class-correlated artefact?

On a shortcut dataset (:mod:`eg_train.foundation.data.shortcut`):

- **clean / counter-shortcut / aligned accuracy**: accuracy on the test texts as they are, with
  another class's artefact inserted, and with their own class's artefact inserted;
- **shortcut reliance**: the share of counter-shortcut texts whose prediction is the *artefact's*
  class (chance: 1 / number of classes), i.e. how often the artefact beats the intent;
- **worst-group accuracy**: over the aligned and counter-shortcut tests together, the texts fall
  into groups *class x (artefact agrees with the class / disagrees)* (2 per class); the lowest
  accuracy of a non-empty group (Sagawa et al. 2020). A model that follows the artefact fails a
  "disagrees" group; one that ignores it scores about its clean accuracy in every group;
- **no-shortcut confusion rate** (:func:`confusion_rate`): how often a model trained *without* any
  artefact (the CE model of the ``none`` case on the same data) predicts the artefact's class on
  the counter-shortcut texts, i.e. the reliance a model has by the artefact's words alone (a
  ``frequent`` word may carry real evidence for some class); a CE model's **reliance over
  confusion** (:func:`reliance_over_confusion`) says how much of its reliance the shortcut training
  added (1: none);
- **artefact share** of an attribution: the share of a text's attribution mass that sits on the
  artefact's words (``|score|`` summed over the artefact positions / summed over all words), with
  the share a uniform attribution would give (``len(positions) / n_words``) as the reference. For
  a model: captum word IG (:mod:`eg_train.foundation.attribution.word_ig`) towards the predicted
  class, on a seeded subset of counter-shortcut texts. For a prior: the cached scores of the
  shortcut training texts that carry an artefact, both raw (``|score|``) and min-max normalised
  per text (what the alignment loss actually pulls the model's attribution towards); ``top1`` is
  the share of texts whose highest-scored word is the artefact.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping, Sequence

import datasets
import numpy as np

from eg_train.evaluation.attribution import encode_texts, predict_proba, word_integrated_gradients
from eg_train.foundation.data.shortcut import shortcut_metadata
from eg_train.foundation.data.source import LabelledSplit

log = logging.getLogger(__name__)

SHARE_NORMALISATIONS = ("abs", "minmax")


def shortcut_reliance(predictions: Sequence[int], artefact_classes: Sequence[int]) -> float:
    """Share of counter-shortcut predictions that are the artefact's class."""
    p, a = np.asarray(predictions, dtype=np.int64), np.asarray(artefact_classes, dtype=np.int64)
    if p.shape != a.shape or p.size == 0:
        raise ValueError(f"need as many predictions as artefact classes (got {p.size} and {a.size}, > 0)")
    return float((p == a).mean())


def group_accuracies(predictions: Sequence[int], labels: Sequence[int], artefact_classes: Sequence[int]) -> dict:
    """Accuracy of every group *class x artefact agrees / disagrees*, keyed ``"<class>:agrees"`` /
    ``"<class>:disagrees"`` (class ids), over the texts that carry an artefact (class >= 0)."""
    p, y, a = (np.asarray(x, dtype=np.int64) for x in (predictions, labels, artefact_classes))
    if not p.shape == y.shape == a.shape:
        raise ValueError(f"need as many predictions, labels and artefact classes (got {p.size}, {y.size}, {a.size})")
    out: dict[str, dict] = {}
    carrying = a >= 0
    for c in np.unique(y[carrying]):
        for name, rows in (("agrees", carrying & (y == c) & (a == c)), ("disagrees", carrying & (y == c) & (a != c))):
            if rows.any():
                out[f"{int(c)}:{name}"] = {"n": int(rows.sum()), "accuracy": float((p[rows] == y[rows]).mean())}
    return out


def worst_group_accuracy(predictions: Sequence[int], labels: Sequence[int], artefact_classes: Sequence[int]) -> float:
    """The lowest accuracy of a non-empty group of :func:`group_accuracies` (NaN: no text carries
    an artefact, e.g. the ``none`` kind)."""
    groups = group_accuracies(predictions, labels, artefact_classes)
    return min((g["accuracy"] for g in groups.values()), default=float("nan"))


def confusion_rate(no_shortcut_predictions: Sequence[int], artefact_classes: Sequence[int]) -> float:
    """The no-shortcut confusion rate: :func:`shortcut_reliance` of a model trained without the
    artefact (the ``none`` case's CE), on the counter-shortcut texts of a case."""
    return shortcut_reliance(no_shortcut_predictions, artefact_classes)


def reliance_over_confusion(reliance: float, confusion: float) -> float:
    """A model's reliance divided by the no-shortcut confusion rate (inf when the rate is 0 and the
    reliance is not; NaN when both are 0)."""
    if confusion > 0:
        return float(reliance / confusion)
    return float("inf") if reliance > 0 else float("nan")


def artefact_share(scores: np.ndarray, positions: Sequence[int], normalisation: str = "abs") -> float:
    """Share of one text's attribution mass on its artefact words (NaN when the text has no mass).

    ``abs``: ``|s|``; ``minmax``: ``(s - min) / (max - min)`` (the alignment loss's target; a
    constant vector has no mass).
    """
    s = np.asarray(scores, dtype=np.float64)
    if normalisation == "abs":
        mass = np.abs(s)
    elif normalisation == "minmax":
        span = s.max() - s.min() if s.size else 0.0
        mass = (s - s.min()) / span if span > 0 else np.zeros_like(s)
    else:
        raise ValueError(f"normalisation must be one of {SHARE_NORMALISATIONS}, got {normalisation!r}")
    pos = list(positions)
    if any(not 0 <= k < s.size for k in pos):
        raise ValueError(f"artefact positions {pos} outside a text of {s.size} words")
    total = mass.sum()
    return float(mass[pos].sum() / total) if total > 0 else float("nan")


def share_summary(scores: Sequence[np.ndarray], positions: Sequence[Sequence[int]],
                  normalisations: Sequence[str] = ("abs",)) -> dict:
    """Mean artefact share over texts with an artefact, per normalisation, plus ``top1`` (share of
    texts whose top-scored word is an artefact word) and ``uniform`` (the share of a flat attribution)."""
    rows = [(np.asarray(s, dtype=np.float64), list(p)) for s, p in zip(scores, positions) if s is not None and len(p)]
    if not rows:
        raise ValueError("no text with both scores and an artefact to measure")
    out: dict = {"n": len(rows)}
    for how in normalisations:
        shares = np.array([artefact_share(s, p, how) for s, p in rows])
        out[f"share_{how}"] = float(np.nanmean(shares)) if np.isfinite(shares).any() else float("nan")
    out["top1"] = float(np.mean([int(np.argmax(s)) in p for s, p in rows]))
    out["uniform"] = float(np.mean([len(p) / len(s) for s, p in rows]))
    return out


def _predict(model, tokenizer, texts: Sequence[str], batch_size: int, max_length: int) -> np.ndarray:
    enc = encode_texts(tokenizer, list(texts), max_length)
    return predict_proba(model, [e.input_ids for e in enc], tokenizer.pad_token_id, batch_size).argmax(-1)


def _word_ig(model, tokenizer, texts, targets, steps: int, batch_size: int, max_length: int) -> list[np.ndarray]:
    enc = encode_texts(tokenizer, list(texts), max_length)
    return word_integrated_gradients(model, enc, [int(t) for t in targets], tokenizer.pad_token_id, n_steps=steps,
                                     batch_size=batch_size)


def evaluate_shortcut_model(
    checkpoint: str | Path,
    data: datasets.DatasetDict,
    *,
    device: str = "cpu",
    **kwargs,
) -> dict:
    """:func:`shortcut_metrics` of a saved classifier (its label list must be the dataset's)."""
    import torch

    from eg_train.evaluation.evaluate import checkpoint_label_names
    from eg_train.foundation.models.resolve import load_sequence_classifier

    names = shortcut_metadata(data["test_counter"])["label_names"]
    if checkpoint_label_names(checkpoint) != names:
        raise ValueError(f"{checkpoint}: its label list differs from the shortcut dataset's ({len(names)} labels)")
    started = time.perf_counter()
    model, tokenizer = load_sequence_classifier(str(checkpoint))
    model.to(torch.device(device)).eval()
    out = {"checkpoint": str(checkpoint), **shortcut_metrics(model, tokenizer, data, **kwargs)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def shortcut_metrics(
    model,
    tokenizer,
    data: datasets.DatasetDict,
    *,
    ig_examples: int = 200,
    train_ig_examples: int = 100,
    ig_steps: int = 16,
    seed: int = 0,
    batch_size: int = 64,
    ig_batch_size: int = 8,
    max_length: int = 128,
) -> dict:
    """Clean / counter / aligned accuracy, shortcut reliance, worst-group accuracy and the model's IG
    artefact share; ``predictions`` holds every test split's predicted class ids (in row order),
    so a suite can pair models and compute confusion rates from the record alone.

    The IG share is measured on ``ig_examples`` counter-shortcut texts (seeded; 0 skips, -1 all),
    towards the class the model predicts: how much of its decision rests on the artefact; and on
    ``train_ig_examples`` training texts that carry an artefact, towards the gold label (``train_ig_*``,
    also min-max normalised): the quantity the alignment loss pulls towards the prior.
    """
    names = shortcut_metadata(data["test_counter"])["label_names"]
    out: dict = {"num_labels": len(names)}
    preds = {}
    for split in ("test_clean", "test_counter", "test_aligned"):
        if split not in data:
            continue
        ds = data[split]
        if len(ds) == 0:  # e.g. the counter-shortcut validation of a dataset without artefacts
            preds[split] = np.zeros(0, dtype=np.int64)
            out[f"{split.removeprefix('test_')}_accuracy"] = float("nan")
            continue
        preds[split] = _predict(model, tokenizer, ds["text"], batch_size, max_length)
        out[f"{split.removeprefix('test_')}_accuracy"] = float((preds[split] == np.asarray(ds["label"])).mean())
    counter = data["test_counter"]
    artefact_class = np.asarray(counter["artefact_class"], dtype=np.int64)
    out["reliance_chance"] = 1.0 / len(names)
    out["predictions"] = {split.removeprefix("test_"): [int(x) for x in p] for split, p in preds.items()}
    if len(artefact_class) == 0 or (artefact_class < 0).all():  # the ``none`` kind: nothing to follow
        out["shortcut_reliance"] = out["worst_group_accuracy"] = float("nan")
        return out
    out["shortcut_reliance"] = shortcut_reliance(preds["test_counter"], artefact_class)
    if "test_aligned" in preds:
        both = ("test_aligned", "test_counter")
        pooled = [np.concatenate([np.asarray(x) for x in parts]) for parts in
                  ([preds[s] for s in both], [data[s]["label"] for s in both], [data[s]["artefact_class"] for s in both])]
        out["worst_group_accuracy"] = worst_group_accuracy(*pooled)
        out["groups"] = group_accuracies(*pooled)
    n = len(counter) if ig_examples < 0 else min(ig_examples, len(counter))
    if n > 0:
        idx = np.sort(np.random.default_rng(seed).choice(len(counter), size=n, replace=False))
        sub = counter.select(idx.tolist())
        targets = [int(preds["test_counter"][i]) for i in idx]
        scores = _word_ig(model, tokenizer, sub["text"], targets, ig_steps, ig_batch_size, max_length)
        positions = sub["artefact_positions"]
        # A truncated text may have lost its artefact's tokens: those words then score 0, as IG says.
        out.update({f"ig_{k}": v for k, v in share_summary(scores, positions, ("abs",)).items()})
        followed = preds["test_counter"][idx] == artefact_class[idx]
        shares = np.array([artefact_share(s, p) for s, p in zip(scores, positions)])
        for key, rows in (("followed", followed), ("not_followed", ~followed)):
            if rows.any():
                out[f"ig_share_abs_when_{key}"] = float(np.nanmean(shares[rows]))
    # The training texts, towards the gold label: what the alignment loss compares with the prior.
    train = data["train"] if "train" in data else None
    if train is not None and train_ig_examples != 0:
        rows = [i for i, p in enumerate(train["artefact_positions"]) if p]
        if rows:
            m = len(rows) if train_ig_examples < 0 else min(train_ig_examples, len(rows))
            rows = sorted(np.random.default_rng(seed).choice(rows, size=m, replace=False).tolist())
            sub = train.select(rows)
            scores = _word_ig(model, tokenizer, sub["text"], sub["label"], ig_steps, ig_batch_size, max_length)
            summary = share_summary(scores, sub["artefact_positions"], ("abs", "minmax"))
            out.update({f"train_ig_{k}": v for k, v in summary.items()})
    return out


def prior_artefact_mass(
    cache_dir: str | Path,
    split: LabelledSplit,
    positions: Sequence[Sequence[int]],
    priors: Mapping[str, Sequence[str]],
    fusion: str = "mean",
    normalisation: str = "minmax",
) -> dict[str, dict]:
    """Artefact share of every prior in a prior cache, on the training texts that carry an artefact.

    ``priors`` maps a name to its methods: one method (``{"lime": ["lime"]}``) is read as cached,
    several are fused as training fuses them (``load_fused_priors`` with ``fusion`` and
    ``normalisation``). ``positions[i]`` are the artefact word indices of row ``i`` of ``split``.
    """
    from priors.cache import PriorCache, load_fused_priors

    if len(positions) != len(split):
        raise ValueError(f"{len(positions)} position lists for a split of {len(split)} texts")
    cache = PriorCache(cache_dir)
    out = {}
    for name, methods in priors.items():
        methods = list(methods)
        if len(methods) == 1:
            scores = cache.scores_for(split, methods[0], on_missing="skip")
        else:
            scores = load_fused_priors(cache_dir, split, methods, normalisation, fusion, on_missing="skip")
        out[name] = {"methods": methods, **share_summary(scores, positions, SHARE_NORMALISATIONS)}
    return out


__all__ = ["SHARE_NORMALISATIONS", "artefact_share", "confusion_rate", "evaluate_shortcut_model", "group_accuracies",
           "prior_artefact_mass", "reliance_over_confusion", "share_summary", "shortcut_metrics", "shortcut_reliance",
           "worst_group_accuracy"]
