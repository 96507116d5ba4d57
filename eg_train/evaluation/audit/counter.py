"""What training can use from an audit: a counter-shortcut validation split and penalty positions.

- :func:`counter_shortcut_split`: the confirmed features *moved*: every held-out (validation) text,
  without the confirmed features of its own class (a user's validation texts carry the shortcut as the
  training texts do), once with each confirmed feature of *another* class inserted at the feature's
  typical position (or ``per_text`` of them, a seeded draw), its gold label unchanged. A model that
  follows the shortcut gets these wrong, so a recipe can be chosen on them without anyone knowing the
  shortcut (issue 25).
- :func:`shortcut_free_split`: every held-out text without any confirmed feature (clean accuracy
  without the shortcuts).
- :func:`feature_positions`: per training text, the word indices that the confirmed features cover.
"""

from __future__ import annotations

from typing import Sequence

import datasets
import numpy as np

from eg_train.evaluation.audit.proof import feature_starts, insert_phrase, insertion_position, remove_feature
from eg_train.foundation.data.source import DataError, LabelledSplit
from eg_train.foundation.words import split_words, text_fingerprint


def feature_positions(split: LabelledSplit, features: Sequence[Sequence[str]]) -> list[dict]:
    """``[{id, row, fingerprint, positions}]`` for every text of ``split`` containing any feature;
    ``positions``: the sorted word indices (:func:`split_words`) covered by the features."""
    out = []
    ids = split.dataset["id"] if "id" in split.dataset.column_names else [str(i) for i in range(len(split))]
    for row, (rid, text) in enumerate(zip(ids, split.dataset["text"])):
        pos = sorted({k + j for f in features for k in feature_starts(text, tuple(f)) for j in range(len(f))})
        if pos:
            out.append({"id": rid, "row": row, "fingerprint": text_fingerprint(text), "positions": pos})
    return out


def _without(text: str, features: Sequence[str]) -> str:
    for feature in features:
        words = tuple(w.lower() for w in split_words(feature).words)
        if feature_starts(text, words):
            text = remove_feature(text, words)
    return text


def shortcut_free_split(audit: dict, heldout: LabelledSplit) -> LabelledSplit:
    """``heldout`` with every confirmed feature removed from every text (gold labels unchanged): the
    validation a model is judged on *without* the shortcuts, for the clean-accuracy side of a choice (a
    user's validation carries the shortcut as the training data does, so a model that fits it scores
    best there). Unchanged when nothing is confirmed."""
    features = [f["feature"] for f in audit.get("confirmed") or []]
    if not features:
        return heldout
    texts = [_without(t, features) for t in heldout.dataset["text"]]
    ds = heldout.dataset.remove_columns(["text"]).add_column("text", texts)
    return LabelledSplit(ds, heldout.label_names, f"{heldout.source}[shortcut-free]", heldout.skipped)


def counter_shortcut_split(
    audit: dict, heldout: LabelledSplit, per_text: int | None = None, seed: int = 0,
) -> LabelledSplit:
    """The counter-shortcut split of ``heldout`` from ``audit["confirmed"]`` (module docstring).

    Rows carry ``id`` (``<id>~<feature index>``), ``text``, ``original_text``, ``label`` (gold),
    ``feature``, ``feature_class`` and ``feature_positions`` (its word indices in the new text).
    """
    names = list(audit["class_names"])
    if list(heldout.label_names) != names:
        raise DataError(f"{heldout.source}: its label list differs from the audited model's")
    confirmed = audit.get("confirmed") or []
    if not confirmed:
        raise DataError("the audit confirmed no feature: there is no counter-shortcut split to build")
    if per_text is not None and per_text < 1:
        raise ValueError(f"per_text must be >= 1 or None (every other class's features), got {per_text}")
    ids = heldout.dataset["id"] if "id" in heldout.dataset.column_names else [str(i) for i in range(len(heldout))]
    cols: dict[str, list] = {k: [] for k in ("id", "text", "original_text", "label", "feature", "feature_class",
                                             "feature_positions")}
    for row, (rid, raw, y) in enumerate(zip(ids, heldout.dataset["text"], heldout.dataset["label"])):
        rng = np.random.default_rng([seed, row])
        # its own class's shortcuts out: the counter text must not keep them
        text = _without(raw, [f["feature"] for f in confirmed if f["label"] == int(y)])
        others = [j for j, f in enumerate(confirmed) if f["label"] != int(y)]
        if per_text is not None and per_text < len(others):
            others = sorted(rng.choice(others, size=per_text, replace=False).tolist())
        for j in others:
            f = confirmed[j]
            k = insertion_position(text, f["position"], rng)
            new = insert_phrase(text, f["feature"], k)
            n = len(split_words(f["feature"]))
            for key, value in (("id", f"{rid}~{j}"), ("text", new), ("original_text", raw), ("label", int(y)),
                               ("feature", f["feature"]), ("feature_class", int(f["label"])),
                               ("feature_positions", list(range(k, k + n)))):
                cols[key].append(value)
    if not cols["id"]:
        raise DataError(f"{heldout.source}: no held-out text of a class other than the confirmed features' classes")
    return LabelledSplit(datasets.Dataset.from_dict(cols), names, f"{heldout.source}[counter-shortcut]", 0)


__all__ = ["counter_shortcut_split", "feature_positions", "shortcut_free_split"]
