"""Shared fixtures: the real embedded models and the offline Banking77 copy."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm():
    """SmolLM2-135M-Instruct (dequantised once into the model cache)."""
    from eg_train.foundation.models import load_causal_lm

    return load_causal_lm("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def banking_train():
    from eg_train.foundation.data import DataSpec, load_split

    return load_split(DataSpec(preset="banking77"), "train")


TINY_ROWS = [
    ("My card got blocked, help!", "card_blocked"), ("Why is my card blocked?", "card_blocked"),
    ("The card was frozen yesterday.", "card_blocked"), ("How long do transfers take?", "transfer_timing"),
    ("My transfer hasn't arrived yet.", "transfer_timing"), ("When will the wire transfer land?", "transfer_timing"),
    ("I forgot my PIN.", "forgot_pin"), ("Can't remember my PIN number", "forgot_pin"), ("Reset my PIN, I lost it", "forgot_pin"),
]
TINY_LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]


@pytest.fixture()
def tiny_spec(tmp_path):
    """A 9-row, 3-intent CSV (train = test) as a DataSpec mapping: fast end-to-end runs."""
    import csv

    data = tmp_path / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent"])
        w.writerows(TINY_ROWS)
    return {"files": {"train": str(data), "test": str(data)}, "label_column": "intent", "labels": TINY_LABELS}
