"""Content fingerprints: what decides whether a stored artefact may be reused.

- :func:`digest`: a short hash of any JSON-able value (a resolved configuration, a key document),
  independent of key order;
- :func:`content_fingerprint` / :func:`split_fingerprint`: a labelled split's texts, labels and
  label names, in order (the same file path with other rows gets another fingerprint).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Sequence

__all__ = ["content_fingerprint", "digest", "split_fingerprint"]


def digest(obj: Any, length: int = 16) -> str:
    """SHA-1 of ``obj`` as canonical JSON (sorted keys; tuples read as lists), ``length`` hex digits."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:length]


def content_fingerprint(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> str:
    """Fingerprint of a split's content: texts, labels and label names, in order."""
    return digest({"texts": list(texts), "labels": [int(y) for y in labels], "names": list(label_names)})


def split_fingerprint(split) -> str:
    """:func:`content_fingerprint` of a :class:`~eg_train.foundation.data.source.LabelledSplit`."""
    return content_fingerprint(split.dataset["text"], split.dataset["label"], split.label_names)
