"""Safetensors files with JSON metadata: how nodes keep weights and search state.

Checkpoints and saved models are safetensors files: tensors plus a header whose
metadata values are JSON text (configs, step counts, histories). Writing goes
through :func:`artgraph.atomic_path`, so a crash never leaves half a file; reading
refuses pickles outright, because unpickling a file can run arbitrary code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from artgraph import NodeError, atomic_path, limits

_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, shortened: for messages about files from anyone."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_safetensors(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and ``meta`` (each value JSON-encoded) atomically."""
    from safetensors.torch import save_file

    metadata = {key: json.dumps(value, sort_keys=True) for key, value in meta.items()}
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, os.fspath(tmp), metadata=metadata)


def read_safetensors(path: str, what: str = "file", hint: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON metadata of a safetensors file; pickles and other files refused.

    ``what`` names the file in messages ("generator file", "checkpoint"); ``hint``
    says how to make a proper one, for the message refusing a pickle.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    file = Path(path)
    if not file.is_file():
        raise NodeError(f"no {what} at {path}")
    with open(file, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_PICKLE_MAGIC):
        advice = f" {hint}" if hint else ""
        raise NodeError(f"{path} is a pickle (torch.save) file; artgraph never unpickles (it can run code).{advice}")
    # A safetensors file starts with its header's length; the header (tensor names, shapes,
    # and our JSON metadata) is parsed whole, so a file may not claim a huge one.
    header = int.from_bytes(head, "little") if len(head) == 8 else 0
    if header > file.stat().st_size - 8:
        raise NodeError(f"{path} is not a readable safetensors file: it claims a header longer than the file")
    if header > limits.METADATA_BYTES.value:
        raise NodeError(
            f"{path} claims a header of {header:,} bytes; {limits.METADATA_BYTES.how_to_raise()} if you trust it"
        )
    try:
        with safe_open(os.fspath(file), "pt") as fh:
            raw = fh.metadata() or {}
        tensors = load_file(os.fspath(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise NodeError(f"{path} is not a readable safetensors file: {one_line(exc)}") from None
    try:
        meta = {key: json.loads(value) for key, value in raw.items()}
    except (json.JSONDecodeError, RecursionError) as exc:
        raise NodeError(f"{path}: the metadata is not valid JSON: {one_line(exc)}") from None
    return tensors, meta
