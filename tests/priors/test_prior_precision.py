"""The prior stage's ``dtype``: float32 gives today's numbers, bfloat16 stays close on the real
SmolLM2, and the two never share a cache key."""

import copy

import numpy as np
import pytest
import torch

from priors.prompts import class_aware_template
from priors.scorer import LabelScorer

TEXTS = ["My card is blocked, I typed the wrong PIN three times.", "How old do I need to be to open an account?", "card", ""]
# Computed by the scorer before the dtype option existed (commit 10bd07e, this machine's CPU).
BEFORE_RAW = [-6.921302795410156, -13.059799194335938, -8.207226753234863, -4.488399505615234]
BEFORE_FULL = [-2.110048991122518, -4.696875381648189, -7.781016100531641, -0.5365514215055773]


@pytest.fixture(scope="module")
def labels(banking_train):
    return banking_train.label_names


@pytest.fixture(scope="module")
def smollm_bf16(smollm):
    model, tok = smollm
    return copy.deepcopy(model).to(torch.bfloat16), tok


# The pinned numbers were taken on an Intel CPU; fp32 matrix kernels of another CPU (an AMD EPYC with
# avx512, measured) sum in another order and move them by up to 1.3e-5. bf16 moves them by ~0.1-0.2 nats,
# so 5e-5 still tells the fp32 path from any reduced precision.
FP32_ACROSS_CPUS = 5e-5


def test_float32_is_todays_numbers(smollm, labels):
    s = LabelScorer(*smollm, class_aware_template(labels), labels)
    np.testing.assert_allclose(s.log_prob(TEXTS, [3, 7, 11, 0]), BEFORE_RAW, rtol=0, atol=FP32_ACROSS_CPUS)
    s = LabelScorer(*smollm, class_aware_template(labels[:6]), labels[:6], contrast="full")
    np.testing.assert_allclose(s.log_prob(TEXTS, [3, 1, 5, 0]), BEFORE_FULL, rtol=0, atol=FP32_ACROSS_CPUS)


def test_bfloat16_close_to_float32(smollm, smollm_bf16, labels):
    ys = [3, 7, 11, 0]
    s16 = LabelScorer(*smollm_bf16, class_aware_template(labels), labels)
    assert s16.dtype == torch.bfloat16
    raw = s16.log_prob(TEXTS, ys)
    assert raw.dtype == np.float64
    # bf16 weights and activations move a label's log-probability by up to ~0.2 nats here
    # (docs/precision.md); the float32 logit refinement keeps it from the ~0.5 of bf16 logits.
    assert np.max(np.abs(raw - np.array(BEFORE_RAW))) < 0.35
    s16 = LabelScorer(*smollm_bf16, class_aware_template(labels[:6]), labels[:6], contrast="full")
    full = s16.log_prob(TEXTS, [3, 1, 5, 0])
    assert s16._shared_prefix  # the shared-prefix path accepted the bf16 model
    assert np.max(np.abs(full - np.array(BEFORE_FULL))) < 0.35


def test_bfloat16_full_prompt_reference(smollm_bf16, labels):
    """The bf16 cached path agrees with the bf16 model's own full forward (float32 log-softmax)."""
    s16 = LabelScorer(*smollm_bf16, class_aware_template(labels), labels)
    ys = [3, 7, 11, 0]
    cached = s16.log_prob(TEXTS, ys)
    full = np.array([s16.full_prompt_log_prob(t, y) for t, y in zip(TEXTS, ys)])
    assert np.max(np.abs(cached - full)) < 0.35


def test_dtype_enters_the_cache_key(smollm, smollm_bf16, labels):
    from priors.methods.cap import CapPrior

    fp32 = CapPrior(LabelScorer(*smollm, class_aware_template(labels), labels), model_id="smollm2-135m-instruct")
    bf16 = CapPrior(LabelScorer(*smollm_bf16, class_aware_template(labels), labels), model_id="smollm2-135m-instruct")
    assert "dtype" not in fp32.config()  # float32 priors keep their earlier cache keys
    assert bf16.config()["dtype"] == "bfloat16"
    assert fp32.config_hash() != bf16.config_hash()


def test_bad_dtype_is_a_config_error():
    from eg_train.foundation.errors import ConfigError
    from priors.config import PriorsConfig

    with pytest.raises(ConfigError, match="dtype"):
        PriorsConfig(dtype="float16")
