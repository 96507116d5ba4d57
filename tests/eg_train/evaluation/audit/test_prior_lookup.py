"""Priors found by text fingerprint, whatever the ids; several methods fused as training fuses them."""

from __future__ import annotations

import numpy as np
import pytest

from eg_train.evaluation.audit.prior_lookup import priors_by_fingerprint
from eg_train.foundation.words import split_words
from priors.cache import PriorCache, PriorCacheError, make_record
from priors.fusion import fuse

TEXTS = ["my card is late", "exchange rate please"]


def _cache(tmp_path):
    cache = PriorCache(tmp_path / "cache")
    for method, base in (("lime", 1.0), ("cap", -2.0)):
        recs = [make_record(f"train-{i}", t, 0, split_words(t).words, base * np.arange(len(split_words(t))) + i, method,
                            "llm", "h1") for i, t in enumerate(TEXTS)]
        cache.append(recs, method, "h1")
    return cache


def test_lookup_by_content_and_fusion(tmp_path):
    cache = _cache(tmp_path)
    got = priors_by_fingerprint(cache.root, ["exchange rate please", "unknown text", "my card is late"], ["lime"])
    assert np.allclose(got[0], [1.0, 2.0, 3.0]) and got[1] is None and np.allclose(got[2], [0, 1, 2, 3])
    fused = priors_by_fingerprint(cache.root, ["my card is late"], ["lime", "cap"], fusion="mean")
    ref = fuse([np.arange(4.0), -2.0 * np.arange(4.0)], how="mean", normalisation="minmax")
    assert np.allclose(fused[0], ref)


def test_a_method_not_cached_is_a_clear_error(tmp_path):
    cache = _cache(tmp_path)
    with pytest.raises(PriorCacheError, match="no 'ig' priors"):
        priors_by_fingerprint(cache.root, TEXTS, ["ig"])
