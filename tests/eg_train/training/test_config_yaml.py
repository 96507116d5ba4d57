"""Training configs read ``3e-4``-style numbers as numbers (YAML 1.1 alone reads them as strings)."""

from __future__ import annotations

from eg_train.training.config import apply_overrides, load_yaml


def test_exponent_floats_are_numbers_in_files_and_overrides():
    doc = load_yaml("model: {lr: 3e-4, beta: 1, name: 1e5x, weight_decay: -2E+2, steps: 10}")
    assert doc["model"] == {"lr": 3e-4, "beta": 1, "name": "1e5x", "weight_decay": -200.0, "steps": 10}
    assert isinstance(doc["model"]["lr"], float) and isinstance(doc["model"]["steps"], int)
    assert apply_overrides({"model": {"lr": 1.0}}, ["--model.lr=3e-4"]) == {"model": {"lr": 3e-4}}
    assert apply_overrides({}, ["--model.name", "abc"]) == {"model": {"name": "abc"}}
