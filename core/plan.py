"""A validated graph, ready to execute: resolved params, typed wires, an order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .node import NodeSpec
from .spec import GraphSpec
from .types import PortType


@dataclass(frozen=True)
class Wire:
    """One edge: the value of ``src.output`` flows into an input of another node."""

    src: str
    output: str
    src_type: PortType
    dst_type: PortType


@dataclass
class PlannedNode:
    id: str
    spec: NodeSpec
    #: Literal params with defaults filled in and file paths made absolute.
    params: dict[str, Any]
    #: input or wired-param name -> one wire, or a list of wires for list inputs.
    wires: dict[str, Wire | list[Wire]]
    #: absolute paths of files the node reads (fingerprinted into its cache key).
    reads: list[str] = field(default_factory=list)
    line: int | None = None

    def sources(self) -> list[Wire]:
        out: list[Wire] = []
        for w in self.wires.values():
            if isinstance(w, list):
                out.extend(w)
            else:
                out.append(w)
        return out


@dataclass
class Plan:
    graph: GraphSpec
    #: every node, in a topological order.
    nodes: dict[str, PlannedNode]
    out_dir: str
