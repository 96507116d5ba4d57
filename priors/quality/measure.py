"""Prior quality of every cached method, measured on the cached examples and stored in the cache.

For each method (a configured :class:`~priors.base.PriorMethod` whose config hash is cached, or a
cached method such as ``hybrid_mean`` given by name), on the same examples:

- **competence** of its scoring LLM under its prompt (:mod:`priors.quality.competence`);
- **faithfulness** to that LLM: deletion AOPC ratio against random orders
  (:mod:`priors.quality.faithfulness`);
- **keyword agreement** with a reference split it never saw (:mod:`priors.quality.agreement`);
- **coverage** (cached examples / examples), **queries** and **seconds per example** (from the
  cache records), and Spearman agreement between every pair of methods.

Methods without an LLM scorer (IG, fused priors) get the model-free metrics only. The result of
each method is written as cache metadata ``quality-<method>-<config_hash>`` (JSON), so tables
can show it beside accuracy.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.words import split_words
from priors.base import PriorMethod
from priors.cache import PriorCache
from priors.quality.agreement import KeywordSettings, ReferenceKeywords, keyword_precision, mean_spearman
from priors.quality.competence import competence
from priors.quality.faithfulness import DEFAULT_BINS, deletion_aopc
from priors.quality.llm import LabelScoreMemo, deletion_score_fn, scorer_of

log = logging.getLogger(__name__)

@dataclass
class QualitySettings:
    """What ``eg-priors quality`` measures and how (see the metric modules)."""

    k: int = 3  # precision@k
    bins: tuple[float, ...] = DEFAULT_BINS  # deletion sizes as fractions of the words
    n_random: int = 3  # random orders per example for the deletion reference
    seed: int = 0
    max_examples: int | None = None  # a seeded subset of the cached examples (None: all)
    keywords: KeywordSettings = field(default_factory=KeywordSettings)


@dataclass
class Reference:
    """The texts keywords are mined from; ``leave_out`` ids are evaluated examples inside it."""

    texts: list[str]
    labels: list[int]
    description: str
    leave_out: set[str] = field(default_factory=set)


def reference_split(full: LabelledSplit, evaluated: LabelledSplit) -> Reference:
    """The rest of ``full`` once the evaluated examples are removed (a k-shot sample: the rest of
    the training split); when nothing remains, all of ``full`` with each evaluated example left
    out of its own keywords."""
    ids = set(evaluated.dataset["id"])
    rows = [r for r, i in enumerate(full.dataset["id"]) if i not in ids]
    texts, labels = full.dataset["text"], full.dataset["label"]
    if rows:
        return Reference(
            [texts[r] for r in rows], [labels[r] for r in rows],
            f"{full.source}: {len(rows)} texts not among the {len(ids)} evaluated examples",
        )
    return Reference(list(texts), list(labels), f"{full.source}: all {len(texts)} texts, leave-one-out", ids)


def _cost(cache: PriorCache, method: str, chash: str, ids: set[str]) -> dict[str, float]:
    ds = cache.records(method)
    cols = ds.select_columns(["id", "config_hash", "queries", "proxy_queries", "seconds"]).to_dict()
    rows = [r for r, (i, h) in enumerate(zip(cols["id"], cols["config_hash"])) if h == chash and i in ids]
    pick = lambda c: float(np.mean([cols[c][r] for r in rows])) if rows else float("nan")  # noqa: E731
    return {"queries_per_example": pick("queries"), "proxy_queries_per_example": pick("proxy_queries"),
            "seconds_per_example": pick("seconds")}


def measure_quality(
    cache: PriorCache,
    split: LabelledSplit,
    methods: Sequence[PriorMethod],
    reference: Reference,
    settings: QualitySettings | None = None,
    extra_methods: Sequence[str] = (),
    write: bool = True,
    memo: LabelScoreMemo | None = None,
) -> dict[str, Any]:
    """Measure every method (module docstring); returns ``{"methods": {key: metrics}, ...}``
    with ``key = <method>-<config_hash>``, and writes each method's metrics into the cache.
    ``memo`` shares label scores with other measurements of the same prompts."""
    s = settings or QualitySettings()
    t_start = time.perf_counter()
    rows = np.arange(len(split))
    if s.max_examples is not None and s.max_examples < len(rows):
        rows = np.sort(np.random.default_rng(s.seed).choice(rows, size=s.max_examples, replace=False))
    sub = LabelledSplit(split.dataset.select(rows.tolist()), split.label_names, split.source)
    ids, texts, labels = sub.dataset["id"], sub.dataset["text"], sub.dataset["label"]
    words = [split_words(t) for t in texts]
    ref = ReferenceKeywords(reference.texts, reference.labels, len(split.label_names), s.keywords)
    kw = [ref.for_example(t, y, i in reference.leave_out) for i, t, y in zip(ids, texts, labels)]

    targets: list[tuple[str, str, PriorMethod | None]] = [(m.name, m.config_hash(), m) for m in methods]
    for name in extra_methods:
        hashes = cache.config_hashes(name)
        if len(hashes) != 1:
            log.warning("quality: %s has %d cached configurations %s; skipped", name, len(hashes), hashes)
            continue
        targets.append((name, hashes[0], None))

    results: dict[str, dict[str, Any]] = {}
    vectors: dict[str, list[np.ndarray | None]] = {}
    memo = memo if memo is not None else LabelScoreMemo()
    for name, chash, method in targets:
        key = f"{name}-{chash}"
        out: dict[str, Any] = {"method": name, "config_hash": chash, "examples": len(sub)}
        if chash not in cache.config_hashes(name):
            out.update(coverage=0.0, note=f"no {name} priors cached for config {chash}")
            log.warning("quality: %s", out["note"])
            results[key] = out
            continue
        vecs = cache.scores_for(sub, name, chash, on_missing="skip")
        vectors[key] = vecs
        have = [j for j, v in enumerate(vecs) if v is not None]
        out["coverage"] = len(have) / max(len(sub), 1)
        out.update(_cost(cache, name, chash, {ids[j] for j in have}))
        out.update(keyword_precision([words[j] for j in have], [vecs[j] for j in have], [kw[j] for j in have], s.k))
        scorers = [scorer_of(method, ids[j]) for j in have] if method is not None else []
        if scorers and all(sc is not None for sc in scorers):
            out["model_id"] = method.model_id
            t0 = time.perf_counter()
            lp = memo.matrix(scorers, [texts[j] for j in have])
            out.update(competence(lp, [labels[j] for j in have]), competence_seconds=time.perf_counter() - t0)
            t0 = time.perf_counter()
            dele = deletion_aopc(
                [words[j] for j in have], [vecs[j] for j in have], [labels[j] for j in have],
                deletion_score_fn(scorers, [texts[j] for j in have], [labels[j] for j in have]),
                ids=[ids[j] for j in have], bins=s.bins, n_random=s.n_random, seed=s.seed,
            )
            out.update(dele.summary(), deletion_seconds=time.perf_counter() - t0)
        results[key] = out
    spearman: dict[str, dict[str, float]] = {}
    for a, b in combinations(vectors, 2):
        rho, n = mean_spearman(vectors[a], vectors[b])
        spearman[f"{a} vs {b}"] = {"spearman": rho, "n": n}
        for x, y in ((a, b), (b, a)):
            results[x].setdefault("spearman_with", {})[y] = rho
    summary = {
        "settings": {**asdict(s), "bins": list(s.bins)},
        "reference": {"description": reference.description, **ref.summary()},
        "examples": len(sub),
        "methods": results,
        "spearman": spearman,
        "seconds": time.perf_counter() - t_start,
    }
    if write:
        for key, out in results.items():
            cache.write_metadata(f"quality-{key}", {**out, "settings": summary["settings"], "reference": summary["reference"]})
    return summary


def stored_quality(cache: PriorCache) -> dict[str, dict[str, Any]]:
    """Every quality document stored in the cache, by ``<method>-<config_hash>``."""
    out = {}
    for name in cache.metadata_names("quality-"):
        doc = cache.read_metadata(name)
        if doc is not None:
            out[name[len("quality-") :]] = doc
    return out


__all__ = ["QualitySettings", "Reference", "measure_quality", "reference_split", "stored_quality"]
