"""What a run reports: each node's status and why, and the values of its outputs.

Shared by every way a graph runs (the CLI's report, the Python API, and later
the server and batch workers), so it lives apart from the executor that fills it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .types import PortType

EXECUTED, CACHED, FAILED, SKIPPED, CANCELLED = "executed", "cached", "failed", "skipped", "cancelled"


@dataclass
class NodeReport:
    status: str
    seconds: float = 0.0
    reason: str = ""
    error: str | None = None
    #: The Python traceback of a failure, shown only with ``--debug``.
    trace: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "seconds": round(self.seconds, 6), "reason": self.reason}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class RunResult:
    """What a run produced: per-node reports and the values of its outputs."""

    nodes: dict[str, NodeReport]
    outputs: dict[str, Any]
    output_types: dict[str, PortType] = field(default_factory=dict)
    #: What went wrong around the nodes without failing them (a damaged cache entry
    #: that was recomputed, a disk cache that could not be written).
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status not in (FAILED, CANCELLED) for r in self.nodes.values())

    @property
    def cancelled(self) -> bool:
        """The run was asked to stop and did (what finished before is kept)."""
        return any(r.status == CANCELLED for r in self.nodes.values())

    @property
    def failures(self) -> list[str]:
        return [f"node '{i}': {r.error}" for i, r in self.nodes.items() if r.status == FAILED]

    def __getitem__(self, ref: str) -> Any:
        return self.outputs[ref]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cancelled": self.cancelled,
            "nodes": {i: r.to_dict() for i, r in self.nodes.items()},
            "outputs": {k: describe_value(v, self.output_types.get(k)) for k, v in self.outputs.items()},
            "warnings": list(self.warnings),
        }


def describe_value(value: Any, port: PortType | None) -> Any:
    """A JSON-ready view of a value: scalars and paths as they are, tensors by shape."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {
            "type": port.name if port else "Tensor",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "device": str(getattr(value, "device", "")),
        }
    if isinstance(value, (list, tuple)):
        inner = port.element if port is not None else None
        return [describe_value(v, inner) for v in value]
    if isinstance(value, dict):
        try:
            json.dumps(value)
            return value
        except (TypeError, ValueError):
            pass
    return {"type": port.name if port else "Any", "class": type(value).__name__}
