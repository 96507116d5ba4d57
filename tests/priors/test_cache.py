"""Prior cache: resume after a kill, sharding, mismatch errors, plain `datasets` on disk."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest

from eg_train.foundation.data import DataSpec, load_split
from priors.cache import PriorCache, PriorCacheError, load_fused_priors
from priors.cli import run_compute
from priors.config import PriorsConfig

ROWS = [
    ("my card is blocked after three wrong pins", "pin_blocked"),
    ("how old must I be to open an account", "age_limit"),
    ("where is my new card, still waiting", "card_arrival"),
    ("the app says my pin is blocked", "pin_blocked"),
    ("is there a minimum age for kids", "age_limit"),
]
LABELS = ["card_arrival", "pin_blocked", "age_limit"]


def _csv(path: Path, rows=ROWS) -> Path:
    path.write_text("text,category\n" + "".join(f'"{t}",{c}\n' for t, c in rows), encoding="utf-8")
    return path


def _cfg(csv: Path, cache: Path, **kw) -> PriorsConfig:
    spec = DataSpec(files={"train": str(csv)}, text_column="text", label_column="category", labels=LABELS)
    base = dict(data=spec, methods=["cap"], n_samples=6, cache_dir=str(cache), batch_size=1, scorer_batch_size=16,
                llm="smollm2-135m-instruct", demonstrations_per_class=0)
    base.update(kw)
    return PriorsConfig(**base)


def _scores(cache: Path, csv: Path, method="cap"):
    split = load_split(DataSpec(files={"train": str(csv)}, label_column="category", labels=LABELS), "train")
    return PriorCache(cache).scores_for(split, method)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, smollm):
    d = tmp_path_factory.mktemp("ref")
    csv = _csv(d / "train.csv")
    run_compute(_cfg(csv, d / "cache"))
    return csv, d / "cache"


def test_consolidated_cache_is_a_plain_dataset(reference):
    csv, cache = reference
    ds = datasets.load_from_disk(str(cache / "priors"))
    assert len(ds) == len(ROWS)
    row = ds[0]
    assert {"id", "fingerprint", "words", "scores", "method", "model_id", "config_hash", "queries"} <= set(row)
    assert row["queries"] == 6 and row["method"] == "cap" and len(row["words"]) == len(row["scores"])


def test_rerun_skips_everything(reference):
    csv, cache = reference
    [summary] = run_compute(_cfg(csv, cache))
    assert summary["computed"] == 0 and summary["already_cached"] == len(ROWS)


def test_two_shards_equal_single_run(reference, tmp_path):
    csv, ref_cache = reference
    for rank in (0, 1):
        run_compute(_cfg(csv, tmp_path / "sharded", rank=rank, world_size=2))
    for a, b in zip(_scores(tmp_path / "sharded", csv), _scores(ref_cache, csv)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_resume_after_kill_equals_uninterrupted_run(reference, tmp_path):
    csv, ref_cache = reference
    cache = tmp_path / "killed"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"data:\n  files: {{train: {csv}}}\n  label_column: category\n  labels: {LABELS}\n"
        f"methods: [cap]\nn_samples: 6\ncache_dir: {cache}\nbatch_size: 1\nscorer_batch_size: 16\n"
        "llm: smollm2-135m-instruct\ndemonstrations_per_class: 0\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "priors.cli", "compute", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    parts = cache / "parts"
    while time.time() < deadline:
        n = sum(1 for p in parts.glob("cap-*/r*") if p.is_dir()) if parts.exists() else 0
        if n >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = PriorCache(cache).done_ids("cap", next(parts.glob("cap-*")).name.split("-")[1])
    assert 2 <= len(done_before) < len(ROWS)
    [summary] = run_compute(PriorsConfig(**{**_cfg(csv, cache).__dict__}))
    assert summary["already_cached"] == len(done_before)
    for a, b in zip(_scores(cache, csv), _scores(ref_cache, csv)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not list(cache.rglob(".tmp-*"))


def test_changed_text_is_an_error_not_silent_reuse(reference, tmp_path):
    csv, cache = reference
    changed = _csv(tmp_path / "train.csv", [(ROWS[0][0] + " please", ROWS[0][1])] + ROWS[1:])
    split = load_split(DataSpec(files={"train": str(changed)}, label_column="category", labels=LABELS), "train")
    with pytest.raises(PriorCacheError, match="different text"):
        PriorCache(cache).scores_for(split, "cap")
    with pytest.raises(PriorCacheError, match="different text"):
        run_compute(_cfg(changed, cache))


def test_missing_method_or_config_is_an_error(reference):
    csv, cache = reference
    split = load_split(DataSpec(files={"train": str(csv)}, label_column="category", labels=LABELS), "train")
    with pytest.raises(PriorCacheError, match="no 'lime' priors"):
        load_fused_priors(cache, split, ["cap", "lime"])
    with pytest.raises(PriorCacheError, match="config hash"):
        PriorCache(cache).scores_for(split, "cap", config_hash="000000000000")
    fused = load_fused_priors(cache, split, ["cap"])
    assert all(f.min() == 0.0 and f.max() == 1.0 for f in fused)


def test_non_finite_scores_are_refused(tmp_path):
    rec = {"id": "a", "fingerprint": "f", "label": 0, "words": ["x", "y"], "scores": [0.1, float("nan")],
           "method": "cap", "model_id": "m", "config_hash": "h", "queries": 1, "proxy_queries": 0,
           "focus_words": -1, "seconds": 0.0}
    with pytest.raises(PriorCacheError, match="non-finite"):
        PriorCache(tmp_path).append([rec], "cap", "h")
    assert not (tmp_path / "parts" / "cap-h").exists() or not any((tmp_path / "parts" / "cap-h").iterdir())


def test_shard_from_torchrun_environment(monkeypatch):
    from priors.compute import shard_from_env

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert shard_from_env() == (1, 3)
    assert shard_from_env(0, 2) == (0, 2)
    with pytest.raises(ValueError):
        shard_from_env(2, 2)


def test_fused_priors_are_stored_as_a_hybrid_method(reference, tmp_path):
    import shutil

    from priors.cache import fuse_into_cache

    csv, ref_cache = reference
    cache = tmp_path / "c"
    shutil.copytree(ref_cache, cache)
    split = load_split(DataSpec(files={"train": str(csv)}, label_column="category", labels=LABELS), "train")
    name, chash = fuse_into_cache(cache, split, ["cap"], "max")
    assert name == "hybrid_max"
    stored = PriorCache(cache).scores_for(split, name)
    expected = load_fused_priors(cache, split, ["cap"], fusion="max")
    for a, b in zip(stored, expected):
        np.testing.assert_allclose(a, b)


def test_focus_stage_runs_through_the_cli_config_and_records_queries(tmp_path, smollm):
    """A long input goes through Focus-LIME (proxy: the embedded SLM) and the cache stores the
    target and proxy query counts and the focus size."""
    long_text = " ".join(["the weather was fine and we walked to the shop."] * 12) + " my pin is blocked."
    csv = _csv(tmp_path / "train.csv", [(long_text, "pin_blocked"), ROWS[1]])
    cfg = _cfg(csv, tmp_path / "cache", methods=["lime"], n_samples=8, focus_proxy="all-minilm-l6-v2")
    cfg.focus = type(cfg.focus)(min_words=50, word_budget=12, proxy_samples=8, max_rounds=3)
    run_compute(cfg)
    ds = datasets.load_from_disk(str(tmp_path / "cache" / "priors"))
    by_id = {r["id"]: r for r in ds}
    long_rec, short_rec = by_id["train-0"], by_id["train-1"]
    assert long_rec["proxy_queries"] > 0 and 0 < long_rec["focus_words"] < len(long_rec["words"])
    assert long_rec["queries"] == 8
    assert sum(1 for s in long_rec["scores"] if s != 0.0) <= long_rec["focus_words"]
    assert short_rec["proxy_queries"] == 0 and short_rec["focus_words"] == -1


def _record(i, text, scores):
    from eg_train.foundation.words import split_words, text_fingerprint

    return {"id": i, "fingerprint": text_fingerprint(text), "label": 0, "words": list(split_words(text).words),
            "scores": scores, "method": "cap", "model_id": "m", "config_hash": "h", "queries": 1,
            "proxy_queries": 0, "focus_words": -1, "seconds": 0.0}


def _one_row_split(tmp_path, text):
    csv = _csv(tmp_path / "one.csv", [(text, "pin_blocked")])
    return load_split(DataSpec(files={"train": str(csv)}, label_column="category", labels=LABELS), "train")


def test_duplicate_ids_across_parts_disagreeing_are_an_error(tmp_path):
    split = _one_row_split(tmp_path, "my pin is blocked")
    i = split.dataset["id"][0]
    cache = PriorCache(tmp_path / "cache")
    cache.append([_record(i, "my pin is blocked", [0.1, 0.2, 0.3, 0.4])], "cap", "h", rank=0)
    cache.append([_record(i, "my pin is blocked", [0.1, 0.2, 0.3, 0.4])], "cap", "h", rank=1)
    [same] = cache.scores_for(split, "cap")  # an identical duplicate (a shard run twice) is harmless
    np.testing.assert_allclose(same, [0.1, 0.2, 0.3, 0.4])
    cache.append([_record(i, "my pin is blocked", [0.4, 0.3, 0.2, 0.1])], "cap", "h", rank=2)
    with pytest.raises(PriorCacheError, match="two different cap priors"):
        cache.scores_for(split, "cap")


def test_on_missing_typo_is_an_error_not_a_skip(tmp_path):
    split = _one_row_split(tmp_path, "my pin is blocked")
    cache = PriorCache(tmp_path / "cache")
    cache.append([_record("other", "my pin is blocked", [0.1, 0.2, 0.3, 0.4])], "cap", "h")
    with pytest.raises(ValueError, match="on_missing must be"):
        cache.scores_for(split, "cap", on_missing="skp")
    assert cache.scores_for(split, "cap", on_missing="skip") == [None]
