"""Params as plain data: what keys the cache and fills the ledger, for any value.

A plugin's port type may parse a literal into anything (a tensor, an object).
Keys and the ledger need JSON, and must never fail after a run has done its
work; :func:`to_plain` turns any value into JSON-able data that still tells
different values apart (a tensor by the hash of its bytes, not its text).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def to_plain(value: Any) -> Any:
    """``value`` as JSON-able data: containers recursively, tensors by content hash."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array(value)
    return {"object": f"{type(value).__module__}.{type(value).__qualname__}", "repr": repr(value)[:200]}


def _array(value: Any) -> dict[str, Any]:
    """A tensor or array by shape, dtype and a hash of its bytes."""
    try:
        import numpy as np

        data = value.detach().cpu().contiguous().numpy() if hasattr(value, "detach") else np.ascontiguousarray(value)
        digest = hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()
    except Exception:  # an exotic dtype or device: identify it by its text instead
        digest = hashlib.blake2b(repr(value).encode(), digest_size=16).hexdigest()
    return {"array": list(value.shape), "dtype": str(value.dtype), "blake2b": digest}


def canonical_json(value: Any) -> str:
    """Compact, key-sorted JSON of :func:`to_plain` (``value``): stable across processes."""
    return json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"))
