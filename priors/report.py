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
table.q{width:auto;font-size:13px;margin-bottom:18px} table.q th,table.q td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
table.q td:first-child,table.q th:first-child{text-align:left}
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


# Columns of the prior-quality table: (metadata key, header, format).
QUALITY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("coverage", "coverage", "{:.0%}"),
    ("llm_accuracy", "LLM accuracy", "{:.1%}"),
    ("median_gold_rank", "median gold rank", "{:g}"),
    ("keyword_precision_at_3", "keyword P@3", "{:.3f}"),
    ("keyword_precision_at_3_random", "P@3 random", "{:.3f}"),
    ("keyword_precision_at_3_ceiling", "P@3 ceiling", "{:.3f}"),
    ("deletion_aopc_ratio_vs_random", "deletion AOPC / random", "{:.2f}"),
    ("queries_per_example", "queries / ex", "{:.0f}"),
    ("seconds_per_example", "s / ex", "{:.2f}"),
)


def _cell(doc: dict, key: str, fmt: str) -> str:
    v = doc.get(key)
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return fmt.format(v)


def quality_rows(docs: dict[str, dict]) -> list[list[str]]:
    """One row per method (``<method>-<hash>``, then the :data:`QUALITY_COLUMNS` cells)."""
    return [[key] + [_cell(d, k, f) for k, _, f in QUALITY_COLUMNS] for key, d in sorted(docs.items())]


def quality_markdown(docs: dict[str, dict]) -> str:
    """The prior-quality table as markdown."""
    head = ["prior"] + [h for _, h, _ in QUALITY_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in quality_rows(docs)]
    return "\n".join(lines) + "\n"


def quality_section_html(cache_dir: str) -> str:
    """The "Prior quality" section of the report from the metadata ``eg-priors quality`` stored
    in the cache ("" when nothing was measured)."""
    from priors.quality.measure import stored_quality

    docs = stored_quality(PriorCache(cache_dir))
    if not docs:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["prior"] + [h for _, h, _ in QUALITY_COLUMNS])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in quality_rows(docs))
    ref = next(iter(docs.values())).get("reference", {}).get("description", "")
    return (
        "<h2>Prior quality</h2><p>Measured by <code>eg-priors quality</code> on the cached examples: competence of "
        "the scoring LLM under the prior's prompt (argmax over the labels on the unmasked texts), precision@3 of the "
        "prior's top words against log-odds class keywords of a reference split the prior never saw "
        f"({html.escape(ref)}), and deletion AOPC of the LLM's log-probability against random word orders "
        f"(&gt; 1: the prior ranks what the LLM uses).</p><table class='q'><tr>{head}</tr>{body}</table>"
    )


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
        + quality_section_html(cache_dir)
        + "".join(blocks)
        + "</body></html>"
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
