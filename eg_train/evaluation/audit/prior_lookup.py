"""Priors of arbitrary texts from a prior cache, found by the text fingerprint the cache stores.

The audit reads priors for the texts it is given, whatever their ids: every cached record carries
:func:`eg_train.foundation.words.text_fingerprint` of the text it scored, so a text is matched by
content. One method is read as cached; several are fused as training fuses them
(:func:`priors.fusion.fuse`, ``normalisation`` then ``fusion``).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from eg_train.foundation.words import split_words, text_fingerprint


def _method_table(cache, method: str, config_hash: str | None) -> dict[str, np.ndarray]:
    from priors.cache import PriorCacheError

    hashes = cache.config_hashes(method)
    if config_hash is None:
        if not hashes:
            raise PriorCacheError(f"{cache.root}: no {method!r} priors cached; run `eg-priors compute` first")
        if len(hashes) > 1:
            raise PriorCacheError(f"{cache.root}: {method!r} priors exist for several configurations {hashes}; "
                                  "name one (prior_config_hash)")
        config_hash = hashes[0]
    elif config_hash not in hashes:
        raise PriorCacheError(f"{cache.root}: no {method!r} priors for config hash {config_hash} (cached: {hashes or 'none'})")
    records = cache.records(method)
    keep = [i for i, h in enumerate(records["config_hash"]) if h == config_hash]
    table: dict[str, np.ndarray] = {}
    for fp, sc in zip(records.select(keep)["fingerprint"], records.select(keep)["scores"]):
        table[fp] = np.asarray(sc, dtype=np.float32)
    return table


def priors_by_fingerprint(
    cache_dir: str | os.PathLike,
    texts: Sequence[str],
    methods: Sequence[str],
    fusion: str = "mean",
    normalisation: str = "minmax",
    config_hashes: dict[str, str] | None = None,
) -> list[np.ndarray | None]:
    """The (fused) prior of every text (None where a method has no record of it)."""
    from priors.cache import PriorCache
    from priors.fusion import fuse

    methods = list(methods)
    if not methods:
        raise ValueError("no prior methods given")
    cache = PriorCache(cache_dir)
    tables = [_method_table(cache, m, (config_hashes or {}).get(m)) for m in methods]
    out: list[np.ndarray | None] = []
    for text in texts:
        fp = text_fingerprint(text)
        vectors = [t.get(fp) for t in tables]
        n_words = len(split_words(text))
        if any(v is None or v.shape != (n_words,) for v in vectors):
            out.append(None)
        elif len(vectors) == 1:
            out.append(vectors[0])
        else:
            out.append(np.asarray(fuse(vectors, how=fusion, normalisation=normalisation), dtype=np.float32))
    return out


__all__ = ["priors_by_fingerprint"]
