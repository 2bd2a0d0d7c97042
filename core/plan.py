"""A validated graph, ready to execute: resolved params, typed wires, an order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .canonical import canonical_json
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
    #: input or wired-param name -> its wires: one, or several for an input written as a list.
    wires: dict[str, list[Wire]]
    #: absolute paths of files the node reads (fingerprinted into its cache key).
    reads: list[str] = field(default_factory=list)
    #: output-file params -> their path relative to the output folder (what keys the cache).
    out_files: dict[str, str] = field(default_factory=dict)
    #: inputs written as a list in the graph: the node gets the list of their values.
    listed: set[str] = field(default_factory=set)
    line: int | None = None
    _sources: list[Wire] | None = field(default=None, repr=False)
    _identity: str | None = field(default=None, repr=False)

    def sources(self) -> list[Wire]:
        """Every wire into this node, flattened (computed once: plans are reused)."""
        if self._sources is None:
            self._sources = [w for wires in self.wires.values() for w in wires]
        return self._sources

    def key_params(self) -> dict[str, Any]:
        """The params as they key the cache: output files relative to the output folder,
        so the same graph run with another ``--out`` finds its cached results."""
        if not self.out_files:
            return self.params
        return {**self.params, **self.out_files}

    def identity(self) -> str:
        """The fixed part of the cache key: type, version and params, as canonical JSON."""
        if self._identity is None:
            blob = [self.spec.type_name, self.spec.version, self.key_params()]
            self._identity = canonical_json(blob)
        return self._identity


@dataclass
class Plan:
    graph: GraphSpec
    #: every node, in a topological order.
    nodes: dict[str, PlannedNode]
    out_dir: str

    def wiring(self) -> dict[str, Any]:
        """The graph's shape as plain data: each node's type, and every wire
        (``from``/``output`` -> ``to``/``input``, with the type that flows). What a viewer draws."""
        return {
            "types": {node_id: node.spec.type_name for node_id, node in self.nodes.items()},
            "edges": [
                {"from": w.src, "output": w.output, "to": node_id, "input": name, "type": w.src_type.name}
                for node_id, node in self.nodes.items()
                for name, wires in node.wires.items()
                for w in wires
            ],
        }
