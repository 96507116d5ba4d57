"""The prior cache: a `datasets` dataset on disk, resumable, shardable, written atomically.

Layout of ``cache_dir``::

    parts/<method>-<config_hash>/r<rank>-<seq>/   one `save_to_disk` per computed batch
    priors/                                       all records consolidated (``datasets.load_from_disk``)

A part is written to a temporary folder and renamed into place, so killing the process at any
moment loses at most the batch in flight and never leaves a half-written part. Re-running the
same command skips the ids already present for that method and config hash. ``N`` processes
(rank / world size) compute disjoint shards into their own part names.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Sequence

import datasets
import numpy as np

from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.errors import UserError
from eg_train.foundation.io import atomic_dir
from eg_train.foundation.words import split_words, text_fingerprint
from priors.fusion import fuse

log = logging.getLogger(__name__)

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "fingerprint": datasets.Value("string"),
        "label": datasets.Value("int64"),
        "words": datasets.Sequence(datasets.Value("string")),
        "scores": datasets.Sequence(datasets.Value("float32")),
        "method": datasets.Value("string"),
        "model_id": datasets.Value("string"),
        "config_hash": datasets.Value("string"),
        "queries": datasets.Value("int64"),
        "proxy_queries": datasets.Value("int64"),
        "focus_words": datasets.Value("int64"),
        "seconds": datasets.Value("float32"),
    }
)


class PriorCacheError(UserError, RuntimeError):
    """The cache does not match the dataset or configuration it is read for (a user error: one line)."""


def make_record(
    example_id: str, text: str, label: int, words: Sequence[str], scores, method: str, model_id: str,
    config_hash: str, queries: int = 0, proxy_queries: int = 0, focus_words: int = -1, seconds: float = 0.0,
) -> dict:
    """One cache record (the schema of :data:`FEATURES`)."""
    return {
        "id": example_id, "fingerprint": text_fingerprint(text), "label": int(label), "words": list(words),
        "scores": np.asarray(scores, dtype=np.float32).tolist(), "method": method, "model_id": model_id,
        "config_hash": config_hash, "queries": int(queries), "proxy_queries": int(proxy_queries),
        "focus_words": int(focus_words), "seconds": float(seconds),
    }


def _atomic_save(ds: datasets.Dataset, target: Path) -> None:
    # A kill mid-write leaves a dot-folder that readers ignore; the old target stays until the swap.
    with atomic_dir(target, replace=True) as tmp:
        # One small part per batch: datasets' own progress bar would drown the prior's bar.
        was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            ds.save_to_disk(str(tmp))
        finally:
            if was_enabled:
                datasets.enable_progress_bars()


class PriorCache:
    """Read and append prior records under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # ---- writing -------------------------------------------------------------------------
    def part_dir(self, method: str, config_hash: str) -> Path:
        return self.root / "parts" / f"{method}-{config_hash}"

    def append(self, records: Sequence[dict], method: str, config_hash: str, rank: int = 0) -> Path:
        """Write one batch of records as a new part (atomic)."""
        for r in records:
            scores = np.asarray(r["scores"], dtype=np.float64)
            if not np.isfinite(scores).all():
                raise PriorCacheError(f"refusing to cache non-finite {method} scores for example {r['id']!r}")
            if len(scores) != len(r["words"]):
                raise PriorCacheError(
                    f"{method} scores for {r['id']!r}: {len(scores)} scores for {len(r['words'])} words"
                )
        ds = datasets.Dataset.from_list(list(records), features=FEATURES)
        part = self.part_dir(method, config_hash) / f"r{rank:03d}-{time.time_ns()}"
        _atomic_save(ds, part)
        return part

    # ---- reading -------------------------------------------------------------------------
    @staticmethod
    def _visible_dirs(folder: Path) -> list[Path]:
        """Sub-folders that were renamed into place (temporaries start with a dot)."""
        if not folder.is_dir():
            return []
        return [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]

    def _groups(self, method: str | None = None) -> list[tuple[str, str, Path]]:
        """``(method, config_hash, folder)`` of every part group (of ``method``)."""
        out = []
        for group in self._visible_dirs(self.root / "parts"):
            name, chash = group.name.rsplit("-", 1)
            if method is None or name == method:
                out.append((name, chash, group))
        return out

    def _part_paths(self, method: str | None = None) -> list[Path]:
        return [p for _, _, group in self._groups(method) for p in self._visible_dirs(group)]

    def records(self, method: str | None = None) -> datasets.Dataset:
        """Every record (of ``method``) across all parts, as one dataset."""
        parts = [datasets.load_from_disk(str(p)) for p in self._part_paths(method)]
        if not parts:
            return datasets.Dataset.from_list([], features=FEATURES)
        return datasets.concatenate_datasets(parts)

    def config_hashes(self, method: str) -> list[str]:
        return sorted(chash for _, chash, _ in self._groups(method))

    def done_ids(self, method: str, config_hash: str, expected: dict[str, str] | None = None) -> set[str]:
        """Ids already cached for (method, config); ``expected`` (id -> fingerprint) checks texts."""
        done: set[str] = set()
        for p in self._visible_dirs(self.part_dir(method, config_hash)):
            ds = datasets.load_from_disk(str(p)).select_columns(["id", "fingerprint"])
            for i, fp in zip(ds["id"], ds["fingerprint"]):
                if expected is not None and i in expected and expected[i] != fp:
                    raise PriorCacheError(
                        f"{p}: example {i!r} was cached for a different text (fingerprint {fp} != {expected[i]}); "
                        "the dataset changed — use a new cache directory or delete this part"
                    )
                done.add(i)
        return done

    def consolidate(self) -> Path:
        """Write all records into ``root/priors`` (atomic), loadable with ``datasets.load_from_disk``."""
        target = self.root / "priors"
        _atomic_save(self.records(), target)
        return target

    # ---- metadata (JSON beside the records: prior quality, ...) --------------------------
    def metadata_path(self, name: str) -> Path:
        """``root/metadata/<name>.json``; ``name`` is letters, digits, ``_ . -`` only."""
        import re

        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            raise ValueError(f"invalid metadata name {name!r} (letters, digits, '_', '.', '-' only)")
        return self.root / "metadata" / f"{name}.json"

    def write_metadata(self, name: str, data: dict) -> Path:
        """Write ``data`` as JSON under the cache folder, atomically (a reader sees old or new)."""
        from eg_train.foundation.io import atomic_write_json

        return atomic_write_json(self.metadata_path(name), data, default=str)

    def read_metadata(self, name: str) -> dict | None:
        """The JSON written by :meth:`write_metadata` (None when there is none)."""
        import json

        path = self.metadata_path(name)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def metadata_names(self, prefix: str = "") -> list[str]:
        """Names of the stored metadata documents (starting with ``prefix``), sorted."""
        folder = self.root / "metadata"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if p.stem.startswith(prefix) and not p.name.startswith("."))

    def clean_temporaries(self) -> int:
        """Remove folders left by a process killed mid-write (they were never renamed into place)."""
        n = 0
        for tmp in self.root.rglob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            n += 1
        return n

    # ---- lookup for training / reports ---------------------------------------------------
    def scores_for(
        self,
        split: LabelledSplit,
        method: str,
        config_hash: str | None = None,
        on_missing: str = "error",
    ) -> list[np.ndarray | None]:
        """One score vector per example of ``split`` (checked against its text and word count)."""
        hashes = self.config_hashes(method)
        if config_hash is None:
            if not hashes:
                raise PriorCacheError(f"{self.root}: no {method!r} priors cached; run `eg-priors compute` first")
            if len(hashes) > 1:
                raise PriorCacheError(
                    f"{self.root}: {method!r} priors exist for several configurations {hashes}; name one (config_hash)"
                )
            config_hash = hashes[0]
        elif config_hash not in hashes:
            raise PriorCacheError(
                f"{self.root}: no {method!r} priors for config hash {config_hash} (cached: {hashes or 'none'}); "
                "the prior configuration changed — recompute or point at the matching cache"
            )
        if on_missing not in ("error", "skip"):
            raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
        table: dict[str, tuple[str, list[float], Path]] = {}
        for p in self._visible_dirs(self.part_dir(method, config_hash)):
            ds = datasets.load_from_disk(str(p))
            for i, fp, sc in zip(ds["id"], ds["fingerprint"], ds["scores"]):
                if i in table and (table[i][0], table[i][1]) != (fp, sc):
                    # Two parts disagree about one example (overlapping shards, copied parts): which
                    # one is right cannot be told here, so never pick one silently.
                    raise PriorCacheError(
                        f"{self.root}: example {i!r} has two different {method} priors, in {table[i][2]} and {p}; "
                        "delete the part that should not be there (or recompute into a new cache)"
                    )
                table[i] = (fp, sc, p)
        out: list[np.ndarray | None] = []
        missing = []
        for row, (i, text) in enumerate(zip(split.dataset["id"], split.dataset["text"])):
            if i not in table:
                missing.append(i)
                out.append(None)
                continue
            fp, sc, _ = table[i]
            if fp != text_fingerprint(text):
                raise PriorCacheError(
                    f"{self.root}: {method} prior for example {i!r} (row {row} of {split.source}) was computed for a "
                    "different text (fingerprint mismatch); recompute the priors for this dataset"
                )
            vec = np.asarray(sc, dtype=np.float32)
            n_words = len(split_words(text))
            if len(vec) != n_words:
                raise PriorCacheError(f"{self.root}: {method} prior for {i!r} has {len(vec)} scores, text has {n_words} words")
            out.append(vec)
        if missing and on_missing == "error":
            raise PriorCacheError(
                f"{self.root}: {len(missing)} of {len(out)} examples have no {method!r} prior (first: {missing[:3]}); "
                "compute them or pass on_missing='skip'"
            )
        if missing:
            log.info("%d of %d examples have no %s prior (first: %s)", len(missing), len(out), method, missing[:3])
        return out


def load_fused_priors(
    cache_dir: str | os.PathLike,
    split: LabelledSplit,
    methods: Iterable[str],
    normalisation: str = "minmax",
    fusion: str = "mean",
    on_missing: str = "error",
    config_hashes: dict[str, str] | None = None,
) -> list[np.ndarray | None]:
    """The fused prior of every example of ``split`` (``None`` where skipped)."""
    cache = PriorCache(cache_dir)
    methods = list(methods)
    if not methods:
        raise ValueError("no prior methods given to fuse")
    per_method = [
        cache.scores_for(split, m, (config_hashes or {}).get(m), on_missing=on_missing) for m in methods
    ]
    fused: list[np.ndarray | None] = []
    for vectors in zip(*per_method):
        if any(v is None for v in vectors):
            fused.append(None)
        else:
            fused.append(fuse(list(vectors), how=fusion, normalisation=normalisation))
    return fused


def fuse_into_cache(
    cache_dir: str | os.PathLike,
    split: LabelledSplit,
    methods: Sequence[str],
    fusion: str = "mean",
    normalisation: str = "minmax",
) -> tuple[str, str]:
    """Store the fused (hybrid) prior of every example as method ``hybrid_<fusion>``.

    Returns ``(method_name, config_hash)``; the hash covers the component methods' config hashes,
    so a change in any component gives a new hybrid entry instead of silently reusing one.
    """
    import hashlib
    import json

    cache = PriorCache(cache_dir)
    components = {m: cache.config_hashes(m) for m in methods}
    for m, hashes in components.items():
        if len(hashes) != 1:
            raise PriorCacheError(f"{cache_dir}: need exactly one cached configuration of {m!r}, found {hashes}")
    blob = json.dumps({"components": {m: h[0] for m, h in components.items()}, "fusion": fusion, "norm": normalisation}, sort_keys=True)
    chash = hashlib.sha1(blob.encode()).hexdigest()[:12]
    name = f"hybrid_{fusion}"
    done = cache.done_ids(name, chash)
    fused = load_fused_priors(cache_dir, split, methods, normalisation, fusion, on_missing="skip")
    records = []
    for (i, text, y), vec in zip(zip(split.dataset["id"], split.dataset["text"], split.dataset["label"]), fused):
        if vec is None or i in done:
            continue
        records.append(make_record(i, text, y, split_words(text).words, vec, name, "+".join(sorted(methods)), chash))
    if records:
        cache.append(records, name, chash)
    return name, chash


__all__ = ["FEATURES", "PriorCache", "PriorCacheError", "fuse_into_cache", "load_fused_priors", "make_record"]
