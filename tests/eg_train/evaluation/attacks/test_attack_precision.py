"""The attacks' precision: the victim and the sentence encoder in bf16 agree with fp32 closely,
and fp32 is bit-identical to running without the option."""

import numpy as np
import pytest
import torch

from eg_train.foundation.device import autocast

TEXTS = ["My card got blocked, help!", "How long do transfers take?", "I forgot my PIN.", "What is the exchange rate today?"]


@pytest.fixture(scope="module")
def encoder():
    from eg_train.evaluation.attacks.similarity import SentenceEncoder

    return SentenceEncoder("all-minilm-l6-v2")


def test_encoder_bf16_close_to_fp32(encoder):
    plain = encoder._encode(TEXTS)
    with autocast("fp32"):
        assert np.array_equal(encoder._encode(TEXTS), plain)
    with autocast("bf16"):
        bf16 = encoder._encode(TEXTS)
    assert bf16.dtype == np.float32
    cos = (plain * bf16).sum(-1)  # both L2-normalised
    assert cos.min() > 0.995, cos
    # the similarity the TextFooler constraint compares
    assert np.max(np.abs(plain @ plain.T - bf16 @ bf16.T)) < 0.02


def test_victim_bf16_close_to_fp32():
    from eg_train.evaluation.attacks.victim import VictimModel
    from eg_train.foundation.models import load_sequence_classifier

    torch.manual_seed(0)
    model, tok = load_sequence_classifier("all-minilm-l6-v2", ["a", "b", "c"])
    p32 = VictimModel(model, tok)._forward(TEXTS)
    with autocast("bf16"):
        p16 = VictimModel(model, tok)._forward(TEXTS)
    assert p16.dtype == np.float32 and np.allclose(p16.sum(-1), 1, atol=1e-5)
    assert np.max(np.abs(p16 - p32)) < 0.02


def test_attack_params_keep_fp32_keys():
    from eg_train.evaluation.attacks.recipes.base import ModelAttackConfig
    from eg_train.evaluation.attacks.run_model import _params

    assert "precision" not in _params(ModelAttackConfig(), "cpu")
    assert _params(ModelAttackConfig(precision="bf16"), "cpu")["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        ModelAttackConfig(precision="half")
