"""The ``device`` option of every stage (``cpu`` by default, ``cuda`` for users with a GPU)."""

from __future__ import annotations

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
