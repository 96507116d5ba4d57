"""What the victim and the sentence encoder share: length-sorted padded batches, and a text memo.

Both answer many texts at once (the scheduler of :mod:`.search` pools the requests of dozens of
examples): :func:`length_sorted_batches` tokenises them once and pads each batch only to its own
longest row; :class:`TextMemo` answers a text already computed from an LRU cache and sends only
the new ones, each once, to the model.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Iterator, Sequence

import numpy as np


def length_sorted_batches(tokenizer, texts: Sequence[str], max_length: int, batch_size: int) -> Iterator[tuple[list[int], dict]]:
    """``(rows, batch)``: the positions in ``texts`` of each batch, shortest texts first, and the
    padded ``input_ids`` / ``attention_mask`` tensors of those rows."""
    if not len(texts):
        return  # (a tokenizer refuses an empty list)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    for s in range(0, len(order), batch_size):
        rows = order[s : s + batch_size]
        yield rows, tokenizer.pad({"input_ids": [enc[i] for i in rows]}, return_tensors="pt")


class TextMemo:
    """``memo(texts)``: one row per text from ``compute(new texts) -> [n, width]``, LRU-cached."""

    def __init__(self, compute: Callable[[list[str]], np.ndarray], width: Callable[[], int], max_size: int) -> None:
        self.compute = compute
        self.width = width  # row width, for the answer to no texts
        self.max_size = max_size
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if missing:
            for t, row in zip(missing, self.compute(missing)):
                self._rows[t] = row
            while len(self._rows) > self.max_size:
                self._rows.popitem(last=False)
        return np.stack([self._rows[t] for t in texts]) if len(texts) else np.zeros((0, self.width()), np.float32)

    def __len__(self) -> int:
        return len(self._rows)
