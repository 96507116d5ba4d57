"""EGDataModule: sampling, word alignment of tokens, prior attachment from the prior cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eg_train.foundation.data import DataSpec, load_split
from eg_train.foundation.data.fewshot import sample_k_per_class
from eg_train.training.datamodule import EGDataModule, collate
from eg_train.foundation.words import split_words, text_fingerprint

LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]
ROWS = [
    ("My card got blocked, help!", "card_blocked"),
    ("Why is my card blocked?", "card_blocked"),
    ("The card was frozen yesterday.", "card_blocked"),
    ("Unblock my card please", "card_blocked"),
    ("How long do transfers take?", "transfer_timing"),
    ("My transfer hasn't arrived yet.", "transfer_timing"),
    ("When will the wire transfer land?", "transfer_timing"),
    ("Transfer still pending after 3 days", "transfer_timing"),
    ("I forgot my PIN.", "forgot_pin"),
    ("Can't remember my PIN number", "forgot_pin"),
    ("Reset my PIN, I lost it", "forgot_pin"),
    ("What is my PIN code?", "forgot_pin"),
]


@pytest.fixture()
def csv_spec(tmp_path):
    path = tmp_path / "train.csv"
    lines = ["text,intent"] + [f'"{t}",{y}' for t, y in ROWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return DataSpec(files={"train": str(path), "test": str(path)}, text_column="text", label_column="intent", labels=LABELS)


def _write_cache(cache_dir, split, method, scores_fn, config_hash="h1", drop=(), corrupt=()):
    from priors.cache import PriorCache

    records = []
    for i, text, y in zip(split.dataset["id"], split.dataset["text"], split.dataset["label"]):
        if i in drop:
            continue
        words = split_words(text)
        records.append(
            {
                "id": i, "fingerprint": text_fingerprint(text + ("!" if i in corrupt else "")), "label": int(y),
                "words": list(words.words), "scores": scores_fn(i, len(words)), "method": method, "model_id": "test",
                "config_hash": config_hash, "queries": 0, "proxy_queries": 0, "focus_words": -1, "seconds": 0.0,
            }
        )
    PriorCache(cache_dir).append(records, method, config_hash)


def test_k_shot_sampling_and_validation_split(csv_spec):
    dm = EGDataModule.from_spec(csv_spec, k_shot=2, val_per_class=1, seed=3, batch_size=4)
    dm.setup("fit")
    train, val = dm.splits["train"], dm.splits["validation"]
    assert np.bincount(train.dataset["label"], minlength=3).tolist() == [2, 2, 2]
    assert np.bincount(val.dataset["label"], minlength=3).tolist() == [1, 1, 1]
    assert not set(train.dataset["id"]) & set(val.dataset["id"])
    # The same examples the prior stage samples (it calls sample_k_per_class with the same seed).
    expected = sample_k_per_class(load_split(csv_spec, "train"), 2, 3)
    assert list(train.dataset["id"]) == list(expected.dataset["id"])
    dm2 = EGDataModule.from_spec(csv_spec, k_shot=2, val_per_class=1, seed=3)
    dm2.setup("fit")
    assert list(dm2.splits["validation"].dataset["id"]) == list(val.dataset["id"])
    assert dm.label_names == LABELS


def test_token_word_ids_rebuild_the_words(csv_spec):
    dm = EGDataModule.from_spec(csv_spec, k_shot=None, val_per_class=0)
    dm.setup("fit")
    tok = dm.tokenizer
    for item, text in zip(dm.datasets["train"].items, dm.splits["train"].dataset["text"]):
        words = split_words(text).words
        pieces = [""] * len(words)
        for tid, w in zip(item["input_ids"], item["word_ids"]):
            if w >= 0:
                pieces[w] += tok.convert_ids_to_tokens(tid).removeprefix("##")
        assert pieces == [w.lower() for w in words], text
        special = [s for s, w in zip(item["special_tokens_mask"], item["word_ids"]) if s]
        assert len(special) == 2


def test_collate_pads_tokens_and_words(csv_spec):
    dm = EGDataModule.from_spec(csv_spec, k_shot=None, val_per_class=0)
    dm.setup("fit")
    items = dm.datasets["train"].items[:3]
    b = collate(items, dm.tokenizer.pad_token_id)
    assert b["input_ids"].shape == b["word_ids"].shape == b["attention_mask"].shape
    assert b["word_mask"].sum(-1).tolist() == [it["n_words"] for it in items]
    assert (b["word_ids"][b["attention_mask"] == 0] == -1).all()
    assert not b["has_prior"].any()


def test_prior_none_gives_no_priors(csv_spec):
    dm = EGDataModule.from_spec(csv_spec, k_shot=2, val_per_class=1, prior="none")
    dm.setup("fit")
    assert dm.prior is None
    assert all(it["prior"] is None for it in dm.datasets["train"].items)


def test_fused_priors_are_attached_from_the_cache(csv_spec, tmp_path):
    from priors.fusion import fuse

    cache = tmp_path / "cache"
    full = load_split(csv_spec, "train")
    rng = np.random.default_rng(0)
    lime = {i: rng.random(len(split_words(t))).tolist() for i, t in zip(full.dataset["id"], full.dataset["text"])}
    cap = {i: rng.normal(size=len(split_words(t))).tolist() for i, t in zip(full.dataset["id"], full.dataset["text"])}
    _write_cache(cache, full, "lime", lambda i, n: lime[i])
    _write_cache(cache, full, "cap", lambda i, n: cap[i])
    dm = EGDataModule.from_spec(csv_spec, k_shot=2, val_per_class=1, prior={"cache_dir": str(cache), "methods": ["lime", "cap"]})
    dm.setup("fit")
    assert dm.prior_coverage == (6, 6)
    for item in dm.datasets["train"].items:
        expected = fuse([np.array(lime[item["id"]]), np.array(cap[item["id"]])], how="mean", normalisation="minmax")
        assert np.allclose(item["prior"], expected)
    batch = next(iter(dm.train_dataloader()))
    assert batch["has_prior"].all()
    assert torch.all(batch["prior"][~batch["word_mask"]] == 0)


def test_missing_prior_is_an_error_or_an_explicit_skip(csv_spec, tmp_path):
    from priors.cache import PriorCacheError

    cache = tmp_path / "cache"
    full = load_split(csv_spec, "train")
    train_ids = list(sample_k_per_class(full, 2, 0).dataset["id"])
    _write_cache(cache, full, "ig", lambda i, n: [1.0] * n, drop={train_ids[0]})
    with pytest.raises(PriorCacheError, match="no 'ig' prior"):
        EGDataModule.from_spec(csv_spec, k_shot=2, prior={"cache_dir": str(cache), "methods": ["ig"]}).setup("fit")
    dm = EGDataModule.from_spec(csv_spec, k_shot=2, prior={"cache_dir": str(cache), "methods": ["ig"], "on_missing": "skip"})
    dm.setup("fit")
    assert dm.prior_coverage == (5, 6)
    missing = [it for it in dm.datasets["train"].items if it["prior"] is None]
    assert [it["id"] for it in missing] == [train_ids[0]]


def test_changed_text_is_an_error(csv_spec, tmp_path):
    from priors.cache import PriorCacheError

    cache = tmp_path / "cache"
    full = load_split(csv_spec, "train")
    train_ids = list(sample_k_per_class(full, 2, 0).dataset["id"])
    _write_cache(cache, full, "ig", lambda i, n: [1.0] * n, corrupt={train_ids[1]})
    with pytest.raises(PriorCacheError, match="fingerprint"):
        EGDataModule.from_spec(csv_spec, k_shot=2, prior={"cache_dir": str(cache), "methods": ["ig"]}).setup("fit")


def test_bad_prior_option_is_rejected(csv_spec):
    with pytest.raises(ValueError, match="prior must be"):
        EGDataModule.from_spec(csv_spec, prior="lime")


def test_banking77_preset_five_shot():
    dm = EGDataModule.from_spec(DataSpec(preset="banking77"), k_shot=5, val_per_class=1, batch_size=32)
    dm.setup("fit")
    assert len(dm.splits["train"]) == 77 * 5 and len(dm.splits["validation"]) == 77
    assert len(dm.label_names) == 77


def test_penalty_words_of_a_data_file_reach_the_batch_as_a_word_mask(tmp_path):
    """A ``penalty_words`` column (per text: word indices) is carried from the file to ``penalty_mask``."""
    import json

    rows = [("my card is blocked", "card", [1]), ("reset my pin please", "pin", [2, 3]), ("card lost", "card", [])]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y, "penalty_words": p}) + "\n" for t, y, p in rows))
    dm = EGDataModule(files={"train": str(path)}, val_per_class=0)
    dm.setup("fit")
    ds = dm.datasets["train"]
    assert [ds[i]["penalty_words"] for i in range(len(ds))] == [p for _, _, p in rows]
    batch = collate([ds[i] for i in range(len(ds))], dm.tokenizer.pad_token_id)
    assert [torch.nonzero(m).flatten().tolist() for m in batch["penalty_mask"]] == [p for _, _, p in rows]
    assert batch["penalty_mask"].shape == batch["word_mask"].shape
