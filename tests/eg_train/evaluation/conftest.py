"""Shared fixtures: a 10-class Banking77 subset and a small real fine-tuned checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from eg_train.foundation.data.source import DataSpec, load_split, shared_data_dir

# Pairs the centroid model confuses (card_arrival/card_delivery_estimate, lost_or_stolen/compromised,
# pin_blocked/change_pin, top_up_failed/top_up_reverted) plus two easy classes.
CLASSES = [
    "card_arrival", "card_delivery_estimate", "lost_or_stolen_card", "compromised_card", "pin_blocked",
    "change_pin", "top_up_failed", "top_up_reverted", "exchange_rate", "age_limit",
]
TRAIN_PER_CLASS = 40
TEST_PER_CLASS = 12


def _banking_dir() -> Path:
    base = shared_data_dir()
    if base is None or not (base / "banking77" / "train.csv").is_file():
        pytest.skip("the offline Banking77 copy (shared/data/banking77) is not available")
    return base / "banking77"


def _write_subset(src: Path, dst: Path, per_class: int) -> None:
    seen = {c: 0 for c in CLASSES}
    with open(src, encoding="utf-8") as fh, open(dst, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "category"])
        for row in csv.DictReader(fh):
            c = row["category"]
            if c in seen and seen[c] < per_class:
                seen[c] += 1
                writer.writerow([row["text"], c])


@pytest.fixture(scope="session")
def banking_subset(tmp_path_factory) -> DataSpec:
    """A 10-class Banking77 subset written to a temporary folder (never into the repository)."""
    src = _banking_dir()
    d = tmp_path_factory.mktemp("banking10")
    _write_subset(src / "train.csv", d / "train.csv", TRAIN_PER_CLASS)
    _write_subset(src / "test.csv", d / "test.csv", TEST_PER_CLASS)
    (d / "labels.json").write_text(json.dumps(CLASSES))
    return DataSpec(files={"train": str(d / "train.csv"), "test": str(d / "test.csv")},
                    text_column="text", label_column="category", labels_file=str(d / "labels.json"))


@pytest.fixture(scope="session")
def train_split(banking_subset):
    return load_split(banking_subset, "train")


@pytest.fixture(scope="session")
def test_split(banking_subset):
    return load_split(banking_subset, "test")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, train_split) -> Path:
    """all-MiniLM-L6-v2 with its top (pooler + classifier head) fine-tuned by plain cross-entropy.

    The encoder's [CLS] states are computed once and only the pooler and the new head are trained
    on them: the same ``BertForSequenceClassification`` a full fine-tune exports (``save_pretrained``
    with ``id2label``), at a fraction of the cost (~90% accuracy on the 10-class subset).
    """
    from eg_train.foundation.models.resolve import load_sequence_classifier

    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", label_names=CLASSES)
    model.eval()
    texts, labels = train_split.dataset["text"], torch.tensor(train_split.dataset["label"])
    with torch.no_grad():
        batch = tok(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
        cls_states = model.bert(**batch).last_hidden_state[:, 0]
    pooler, head = model.bert.pooler, model.classifier
    opt = torch.optim.AdamW([*pooler.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(head(pooler.activation(pooler.dense(cls_states))), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("ckpt") / "ce-baseline" / "model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def attack_dir(tmp_path_factory, train_split, test_split) -> Path:
    """Keyword attacks of the test subset (thresholds loosened for 40 training texts per class)."""
    from eg_train.evaluation.attacks import AttackConfig, build_attacks, save_attacks

    att = build_attacks(train_split, test_split, AttackConfig(seed=0, min_z=1.0, min_gold_docs=1))
    return save_attacks(att, tmp_path_factory.mktemp("att") / "attacks")


@pytest.fixture(scope="session")
def evaluated(tmp_path_factory, checkpoint, test_split, attack_dir):
    """``(out_dir, metrics)`` of the fixture checkpoint evaluated as method "ce", seed 0."""
    from eg_train.evaluation.evaluate import EvalConfig, evaluate_checkpoint

    out = tmp_path_factory.mktemp("eval") / "ce"
    cfg = EvalConfig(faithfulness_examples=6, ig_steps=8, ig_batch_size=6)
    return out, evaluate_checkpoint(checkpoint, test_split, out, attack_dir, method="ce", run_seed=0, config=cfg)
