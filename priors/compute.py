"""Run a prior method over a split into the prior cache: resumable, sharded, with progress."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.words import split_words, text_fingerprint
from priors.base import PriorBatch, PriorMethod
from priors.cache import PriorCache, make_record

log = logging.getLogger(__name__)


def shard_from_env(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit rank / world size, else ``RANK`` / ``WORLD_SIZE`` as ``torchrun`` sets them, else (0, 1)."""
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid shard: rank {rank} of world size {world_size}")
    return rank, world_size


@dataclass
class ComputeSummary:
    method: str
    config_hash: str
    computed: int = 0
    skipped_done: int = 0
    skipped_invalid: list[str] = field(default_factory=list)
    queries: int = 0
    proxy_queries: int = 0
    truncated: int = 0  # examples attributed over the words that fit the LLM's text budget only
    seconds: float = 0.0

    @property
    def seconds_per_example(self) -> float:
        return self.seconds / self.computed if self.computed else 0.0


def compute_priors(
    split: LabelledSplit,
    method: PriorMethod,
    cache: PriorCache,
    *,
    batch_size: int = 8,
    rank: int = 0,
    world_size: int = 1,
    skip_invalid: bool = False,
    progress: bool = True,
) -> ComputeSummary:
    """Compute ``method`` for this shard's examples of ``split`` that are not cached yet.

    Example ``i`` belongs to shard ``i % world_size``; masks are seeded per example id, so the
    union of shards equals a single-process run.
    """
    chash = method.config_hash()
    summary = ComputeSummary(method.name, chash)
    if world_size == 1:  # with several shards a temporary may belong to a live process
        cache.clean_temporaries()
    ds = split.dataset
    ids, texts, labels = ds["id"], ds["text"], ds["label"]
    fingerprints = {i: text_fingerprint(t) for i, t in zip(ids, texts)}
    done = cache.done_ids(method.name, chash, expected=fingerprints)
    todo = [k for k in range(len(ids)) if k % world_size == rank and ids[k] not in done]
    summary.skipped_done = sum(1 for k in range(len(ids)) if k % world_size == rank and ids[k] in done)
    if summary.skipped_done:
        log.info("%s: %d examples already cached, %d to compute", method.name, summary.skipped_done, len(todo))
    bar = tqdm(total=len(todo), desc=f"{method.name} prior (shard {rank}/{world_size})", disable=not progress, unit="ex")
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        batch = PriorBatch(
            ids=[ids[k] for k in chunk],
            texts=[texts[k] for k in chunk],
            labels=[labels[k] for k in chunk],
            words=[split_words(texts[k]) for k in chunk],
        )
        empty = [i for i, w in zip(batch.ids, batch.words) if len(w) == 0]
        if empty:
            raise ValueError(f"{split.source}: example {empty[0]!r} has no words to attribute")
        t0 = time.perf_counter()
        results = method.compute(batch)
        elapsed = time.perf_counter() - t0
        records = []
        for i, text, y, words, res in zip(batch.ids, batch.texts, batch.labels, batch.words, results):
            if not np.isfinite(res.scores).all():
                msg = f"{split.source}: {method.name} prior of example {i!r} is not finite"
                if not skip_invalid:
                    raise ValueError(msg + "; pass skip_invalid to skip such examples")
                summary.skipped_invalid.append(msg)
                continue
            records.append(
                make_record(
                    i, text, y, words.words, res.scores, method.name, method.model_id, chash,
                    res.queries, res.proxy_queries, res.focus_words, elapsed / len(chunk),
                )
            )
            summary.queries += int(res.queries)
            summary.proxy_queries += int(res.proxy_queries)
            summary.truncated += int(res.truncated_words > 0)
        if records:
            cache.append(records, method.name, chash, rank=rank)
        summary.computed += len(records)
        summary.seconds += elapsed
        bar.update(len(chunk))
        bar.set_postfix(s_per_ex=f"{summary.seconds_per_example:.2f}")
    bar.close()
    for msg in summary.skipped_invalid:
        log.warning("skipped: %s", msg)
    if summary.truncated:
        log.warning(
            "%s: %d of %d examples were longer than the LLM's text budget and were attributed over "
            "their leading words only (the rest score 0)", method.name, summary.truncated, summary.computed,
        )
    return summary
