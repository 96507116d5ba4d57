"""Word segmentation shared by the priors and the trainer.

A *word* is a maximal run of word characters (letters, digits, underscore), optionally
joined by an inner apostrophe (``hasn't``). Punctuation is never part of a word, so
``blocked,`` and ``blocked`` are the same feature (docs/design.md#words).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

WORD_PATTERN = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Words:
    """The words of a text with their character spans ``[start, end)``."""

    text: str
    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return len(self.words)

    def keep(self, mask: Sequence[int] | Sequence[bool]) -> str:
        """Text with the words whose mask entry is 0 removed (punctuation kept, spaces collapsed)."""
        if len(mask) != len(self.words):
            raise ValueError(f"mask has {len(mask)} entries, text has {len(self.words)} words")
        pieces: list[str] = []
        cursor = 0
        for keep, (start, end) in zip(mask, self.spans):
            if not keep:
                pieces.append(self.text[cursor:start])
                cursor = end
        pieces.append(self.text[cursor:])
        return _SPACES.sub(" ", "".join(pieces)).strip()


def split_words(text: str) -> Words:
    """Segment ``text`` into words with character spans."""
    matches = list(WORD_PATTERN.finditer(text))
    return Words(
        text=text,
        words=tuple(m.group(0) for m in matches),
        spans=tuple((m.start(), m.end()) for m in matches),
    )


def word_ids_from_offsets(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """Map each token (fast-tokenizer character offsets) to the index of its word, or -1.

    Special tokens (offset ``(0, 0)``) and tokens that only cover punctuation/space map to -1.
    """
    ids: list[int] = []
    w = 0
    for start, end in offsets:
        if end <= start:
            ids.append(-1)
            continue
        while w < len(spans) and spans[w][1] <= start:
            w += 1
        if w < len(spans) and spans[w][0] < end and start < spans[w][1]:
            ids.append(w)
        else:
            # A token may start before the next word (leading space in BPE offsets).
            j = w
            found = -1
            while j < len(spans) and spans[j][0] < end:
                if start < spans[j][1]:
                    found = j
                    break
                j += 1
            ids.append(found)
    return ids


def text_fingerprint(text: str) -> str:
    """Stable fingerprint of a text, stored with every cached prior."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
