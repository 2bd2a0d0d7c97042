"""Choosing the device a run places its tensors on."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class DeviceError(ValueError):
    """The requested device does not exist here; the message says what does."""


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> cuda if available, else mps, else cpu; check explicit names exist."""
    if not _PATTERN.match(name):
        raise DeviceError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps")
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' requested but CUDA is not available here; use --device cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return "cuda" if name == "cuda" else name
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("device 'mps' requested but MPS is not available here; use --device cpu")
    return name
