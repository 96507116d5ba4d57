"""The precision option: spellings, the ``auto`` detection from /proc/cpuinfo flags, autocast."""

import pytest
import torch

from eg_train.foundation.device import (
    autocast,
    cpu_bf16_flags,
    lightning_precision,
    normalise_precision,
    resolve_precision,
    torch_dtype,
)

AMX = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile amx_int8 avx512_bf16\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n"
OLD = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"  # AVX-512 without bf16 (Cascade Lake)
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n"


def test_spellings():
    for s in ("bf16", "bfloat16", "BF16-mixed", "bf16-true"):
        assert normalise_precision(s) == "bf16"
    for s in ("fp32", "float32", "32", 32, "32-true"):
        assert normalise_precision(s) == "fp32"
    assert normalise_precision(None) == "auto"
    with pytest.raises(ValueError, match="auto, bf16"):
        normalise_precision("fp16")


def test_cpu_flags_from_cpuinfo_text():
    assert cpu_bf16_flags(AMX) == ["amx_bf16", "avx512_bf16"]
    assert cpu_bf16_flags(ZEN4) == ["avx512_bf16"]
    assert cpu_bf16_flags(OLD) == []
    assert cpu_bf16_flags(ARM) == []
    assert cpu_bf16_flags("") == []


def test_auto_follows_the_flags():
    assert resolve_precision("auto", "cpu", cpuinfo=AMX) == "bf16"
    assert resolve_precision("auto", "cpu", cpuinfo=ZEN4) == "bf16"
    assert resolve_precision("auto", "cpu", cpuinfo=OLD) == "fp32"
    assert resolve_precision("auto", "cpu", cpuinfo=ARM) == "fp32"
    # explicit choices never look at the hardware
    assert resolve_precision("fp32", "cpu", cpuinfo=AMX) == "fp32"
    assert resolve_precision("bf16", "cpu", cpuinfo=OLD) == "bf16"


def test_auto_is_logged(caplog):
    import logging

    from eg_train.foundation import device

    device._logged.clear()
    with caplog.at_level(logging.INFO, logger="eg_train.foundation.device"):
        resolve_precision("auto", "cpu", cpuinfo=OLD)
    assert "precision auto -> fp32" in caplog.text and "none of amx_bf16, avx512_bf16" in caplog.text


def test_dtype_autocast_and_lightning_spelling():
    assert torch_dtype("bf16") is torch.bfloat16 and torch_dtype("fp32") is torch.float32
    assert lightning_precision("bf16") == "bf16-mixed" and lightning_precision("fp32") == "32-true"
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    with autocast("fp32"):
        assert torch.equal(lin(x), lin(x)) and lin(x).dtype == torch.float32
    with autocast("bf16"):
        assert lin(x).dtype == torch.bfloat16
