"""Where a bench ran: the machine, its software and its load, recorded with every figure.

Shared by the benches (they run as scripts, so this folder is on ``sys.path``). A
figure means little without the machine it came from, and on a shared machine the
load average says how much other work was competing for the cores.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        return name


def machine(device: str = "cpu") -> dict[str, Any]:
    """Platform, CPU, threads, Python, torch and artgraph versions, and the device used."""
    try:
        artgraph_version = version("artgraph")
    except PackageNotFoundError:
        artgraph_version = "not installed"
    out: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "artgraph": artgraph_version,
        "device": device,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
        out["cuda"] = torch.version.cuda
    return out


def load() -> list[float] | None:
    """The load average over 1, 5 and 15 minutes (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None
