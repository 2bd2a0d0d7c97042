"""Saving plain data and tensors: JSON, .npy, .safetensors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from artgraph import AnyType, Input, NodeError, Param, atomic_path, node
from artgraph import Path as PathT

_SUFFIXES = (".json", ".npy", ".safetensors")


@node(
    "data.save",
    category="data",
    output_node=True,
    inputs={"value": Input(AnyType, description="numbers, text, lists, histories, tensors, points, tours")},
    params={"path": Param(PathT, file="output", suffixes=_SUFFIXES, description=".json, .npy or .safetensors")},
    outputs={"path": PathT},
)
def save(value: Any, path: str) -> str:
    """Write a value atomically: JSON for plain data, .npy or .safetensors for tensors."""
    suffix = Path(path).suffix.lower()
    is_tensor = hasattr(value, "detach") and hasattr(value, "shape")
    if suffix == ".json":
        try:
            text = json.dumps(_plain(value), indent=2, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise NodeError(f"cannot write this value as JSON ({exc}); use .npy or .safetensors for tensors") from None
        with atomic_path(path) as tmp:
            tmp.write_text(text + "\n")
    elif not is_tensor:
        raise NodeError(f"'{suffix}' files hold tensors, got {type(value).__name__}; use .json")
    elif suffix == ".npy":
        import numpy as np

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, value.detach().cpu().numpy(), allow_pickle=False)
    else:
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file({"value": value.detach().cpu().contiguous()}, os.fspath(tmp))
    return path


def _plain(value: Any) -> Any:
    """Small tensors and tuples become lists so histories and point sets serialise.

    A value with a ``to_json()`` method (point sets, tours) describes itself, so
    this module needs no import of the plugin modules that define such types.
    """
    to_json = getattr(value, "to_json", None)
    if callable(to_json) and not isinstance(value, type):
        return _plain(to_json())
    if hasattr(value, "detach") and hasattr(value, "tolist"):
        return value.detach().cpu().tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
