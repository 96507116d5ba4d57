"""Self-contained HTML report of word heatmaps (one row per prior, fused last)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np

from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.words import split_words
from priors.cache import PriorCache
from priors.fusion import fuse, normalise

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
h1{font-size:22px} .ex{border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:14px 0}
.meta{color:#555;font-size:13px;margin-bottom:8px} table{border-collapse:collapse;width:100%}
td{padding:4px 6px;vertical-align:top} td.m{width:110px;font-weight:600;font-size:13px;color:#333}
span.w{display:inline-block;padding:1px 4px;margin:1px;border-radius:3px;font-size:15px}
.legend span{display:inline-block;width:40px;height:12px}
"""


def _word_cells(words: Sequence[str], scores: np.ndarray) -> str:
    shade = normalise(scores, "minmax")
    cells = []
    for w, raw, s in zip(words, scores, shade):
        cells.append(
            f'<span class="w" title="{raw:.4g}" style="background:rgba(214,39,40,{0.08 + 0.85 * float(s):.3f})">'
            f"{html.escape(w)}</span>"
        )
    return "".join(cells)


def heatmap_rows(words: Sequence[str], rows: dict[str, np.ndarray]) -> str:
    """HTML table rows, one per named score vector."""
    return "".join(f'<tr><td class="m">{html.escape(n)}</td><td>{_word_cells(words, s)}</td></tr>' for n, s in rows.items())


def write_heatmap_report(
    cache_dir: str,
    split: LabelledSplit,
    out: str,
    methods: Sequence[str],
    fusion: Sequence[str] = ("mean", "max"),
    normalisation: str = "minmax",
    example_ids: Sequence[str] | None = None,
    max_examples: int = 20,
) -> Path:
    """Write an HTML page with LIME / CAP / IG / fused heatmaps for chosen examples."""
    cache = PriorCache(cache_dir)
    per_method = {m: cache.scores_for(split, m, on_missing="skip") for m in methods}
    ids = split.dataset["id"]
    wanted = set(example_ids) if example_ids else None
    blocks = []
    for row, i in enumerate(ids):
        if wanted is not None and i not in wanted:
            continue
        vecs = {m: per_method[m][row] for m in methods}
        if any(v is None for v in vecs.values()):
            continue
        text = split.dataset[row]["text"]
        words = split_words(text).words
        rows = {m.upper(): v for m, v in vecs.items()}
        for how in fusion:
            rows[f"fused ({how})"] = fuse(list(vecs.values()), how=how, normalisation=normalisation)
        label = split.label_names[split.dataset[row]["label"]]
        blocks.append(
            f'<div class="ex"><div class="meta">{html.escape(i)} · gold label <b>{html.escape(label)}</b></div>'
            f"<table>{heatmap_rows(words, rows)}</table></div>"
        )
        if len(blocks) >= max_examples:
            break
    if not blocks:
        raise ValueError(f"{cache_dir}: no example has all of {list(methods)} cached")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>eg-train priors</title>"
        f"<style>{_CSS}</style></head><body><h1>Attribution priors</h1>"
        f"<p>Cache <code>{html.escape(str(cache_dir))}</code>; darker = more important (min-max per row; hover a word for its raw score).</p>"
        + "".join(blocks)
        + "</body></html>"
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
