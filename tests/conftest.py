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
    from eg_train.models import load_causal_lm

    return load_causal_lm("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def banking_train():
    from eg_train.data import DataSpec, load_split

    return load_split(DataSpec(preset="banking77"), "train")
