"""Prompt templates for the label-probability scorer (docs/design.md#scorer).

A prompt is ``prefix + body(text) + continuation(label)``. The prefix does not depend on the
text (instructions, label list), so its KV cache is computed once and reused for every
perturbation of every example. Boundaries are newlines and ``Label:`` so that tokenising the
parts separately gives the same ids as tokenising the whole prompt (tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from eg_train.foundation.data.source import readable_label

_SPACES = re.compile(r"\s+")  # a demonstration stays on one line of the prompt
DEFAULT_INSTRUCTION = "Classify the customer's message into exactly one of the given labels."


@dataclass(frozen=True)
class PromptTemplate:
    """``prefix`` is text-independent; ``body`` holds ``{text}``; ``answer`` holds ``{label}``."""

    name: str
    prefix: str
    body: str = "Text: {text}\nLabel:"
    answer: str = " {label}"

    def text_part(self, text: str) -> str:
        return self.body.split("{text}")[0] + text

    def tail_part(self) -> str:
        return self.body.split("{text}")[1]

    def render(self, text: str, label: str | None = None) -> str:
        out = self.prefix + self.body.format(text=text)
        return out + (self.answer.format(label=label) if label is not None else "")


def plain_template() -> PromptTemplate:
    """LIME prior prompt: ``Text: <x>`` / ``Label:`` (no instruction, no label list)."""
    return PromptTemplate(name="plain", prefix="")


def class_aware_template(
    label_names: list[str],
    instruction: str = DEFAULT_INSTRUCTION,
    demonstrations: Sequence[tuple[str, str]] = (),
) -> PromptTemplate:
    """CAP prompt: instruction and the full label space before the text.

    ``demonstrations``: labelled ``(text, label name)`` pairs written after the label list and
    before the attributed ``Text:``, in the body's own format (``Text: …`` / ``Label: …``). They
    are part of the text-independent prefix, so their KV cache is computed once."""
    labels = ", ".join(readable_label(n) for n in label_names)
    demos = "".join(
        f"Text: {_SPACES.sub(' ', text).strip()}\nLabel: {readable_label(label)}\n" for text, label in demonstrations
    )
    return PromptTemplate(
        name="class_aware" + ("+demos" if demonstrations else ""),
        prefix=f"Instructions: {instruction}\nGiven Labels: {labels}\n{demos}",
    )
