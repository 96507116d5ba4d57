"""The ``device`` and ``precision`` options of every stage (``cpu`` by default, ``cuda`` for users with a GPU)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """``torch.device`` for a device option, with a clear error when that device is not usable here.

    ``None`` means ``cpu``. ``cuda`` / ``cuda:N`` need a CUDA build of torch and a visible GPU;
    ``mps`` needs Apple's Metal backend.
    """
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
            raise ValueError(f"device {device!r} requested, but torch {torch.__version__} is {build}; use device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested, but the MPS backend is not available; use device cpu")
    return dev


def module_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (where its inputs must go)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


# --------------------------------------------------------------------------------- precision
# The ``precision`` option of every stage: ``fp32`` computes as before, ``bf16`` runs the matrix
# products in bfloat16 (autocast for trained / differentiated models, bf16 weights for the frozen
# LLM) with softmaxes, losses and reductions in float32, ``auto`` picks bf16 where the hardware
# multiplies bf16 natively and fp32 elsewhere (docs/precision.md).
PRECISIONS = ("auto", "bf16", "fp32")
_ALIASES = {
    "auto": "auto", "bf16": "bf16", "bfloat16": "bf16", "bf16-mixed": "bf16", "bf16-true": "bf16",
    "fp32": "fp32", "float32": "fp32", "32": "fp32", "32-true": "fp32",
}
# CPU flags of native bf16 matrix instructions: Intel AMX tiles, or AVX-512 BF16 dot products
# (Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and later). Without them oneDNN
# emulates bf16 and it is slower than fp32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

log = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()


def normalise_precision(precision: str | int | None) -> str:
    """``auto`` | ``bf16`` | ``fp32`` for any accepted spelling (``bfloat16``, ``float32``, ``bf16-mixed``, ``32``...)."""
    key = "auto" if precision is None else str(precision).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"precision {precision!r} is not one of auto, bf16 (bfloat16), fp32 (float32)")
    return _ALIASES[key]


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bf16 flags of this CPU (from ``/proc/cpuinfo``'s ``flags`` lines; ``cpuinfo`` overrides the text)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:  # not Linux: no detection, fp32
            return []
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return [f for f in BF16_CPU_FLAGS if f in flags]


def resolve_precision(precision: str | int | None, device: str | torch.device | None = "cpu", cpuinfo: str | None = None) -> str:
    """``bf16`` or ``fp32`` for a precision option on ``device``.

    ``auto`` is bf16 on a CPU with AMX or AVX-512 BF16 (``cpuinfo``: the text of ``/proc/cpuinfo``,
    read when None) and on a CUDA device that supports bf16; fp32 elsewhere. The choice and its
    reason are logged once per (option, device)."""
    p = normalise_precision(precision)
    if p != "auto":
        return p
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        reason = "the CUDA device supports bf16" if ok else "the CUDA device lacks bf16"
    elif dev.type == "cpu":
        flags = cpu_bf16_flags(cpuinfo)
        ok = bool(flags)
        reason = f"the CPU has {', '.join(flags)}" if ok else f"the CPU has none of {', '.join(BF16_CPU_FLAGS)}"
    else:
        ok, reason = False, f"no bf16 detection for {dev.type}"
    chosen = "bf16" if ok else "fp32"
    if (chosen, str(dev)) not in _logged:
        _logged.add((chosen, str(dev)))
        log.info("precision auto -> %s on %s (%s)", chosen, dev, reason)
    return chosen


def torch_dtype(precision: str) -> torch.dtype:
    """The compute dtype of a resolved precision (``bf16`` -> ``torch.bfloat16``)."""
    return torch.bfloat16 if normalise_precision(precision) == "bf16" else torch.float32


def autocast(precision: str, device: str | torch.device | None = "cpu") -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bf16 for a resolved ``bf16`` precision; a no-op for ``fp32`` (bit-identical to no context)."""
    if resolve_precision(precision, device) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device("cpu" if device is None else device).type, dtype=torch.bfloat16)


def lightning_precision(precision: str, device: str | torch.device | None = "cpu") -> str:
    """Lightning's ``Trainer(precision=...)`` spelling: ``bf16-mixed`` or ``32-true``."""
    return "bf16-mixed" if resolve_precision(precision, device) == "bf16" else "32-true"


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is bf16 / fp16 (autocast outputs); float32 and float64 unchanged."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
