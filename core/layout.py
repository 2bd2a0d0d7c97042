"""Where a viewer draws each node: topological layers, left to right, computed here so the
page only draws.

Nodes go in columns by their longest path from a source (networkx's topological
generations), and within a column in the order that puts them near the nodes
feeding them (one barycentre sweep: cheap, and enough to keep typical graphs
readable); a 1,000-node graph lays out in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Box size and gaps, in the page's units (CSS pixels at zoom 1).
NODE_W, NODE_H, GAP_X, GAP_Y = 180, 56, 70, 22


def layout(nodes: Sequence[str], types: Mapping[str, str], edges: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"nodes": [{id, type, layer, x, y, w, h}], "edges": [...], "width", "height"}``.

    ``edges`` are ``run_start``'s (``from``, ``output``, ``to``, ``input``, ``type``);
    one naming a node not in ``nodes`` is left out rather than drawn to nowhere.
    """
    import networkx as nx

    known = set(nodes)
    kept = [e for e in edges if e.get("from") in known and e.get("to") in known]
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((e["from"], e["to"]) for e in kept)
    try:
        layers = [list(layer) for layer in nx.topological_generations(graph)]
    except nx.NetworkXUnfeasible:  # not a DAG: never from a validated plan; draw it in one column
        layers = [list(nodes)]
    order = {node: i for i, node in enumerate(nodes)}
    row: dict[str, float] = {}
    for layer in layers:
        # Sort by where the feeding nodes sit; nodes without inputs keep the graph's order.
        def barycentre(node: str) -> tuple[float, int]:
            fed_by = [row[p] for p in graph.predecessors(node) if p in row]
            return (sum(fed_by) / len(fed_by) if fed_by else float(order[node]), order[node])

        layer.sort(key=barycentre)
        for i, node in enumerate(layer):
            row[node] = float(i)
    placed = []
    for column, layer in enumerate(layers):
        for i, node in enumerate(layer):
            placed.append(
                {
                    "id": node,
                    "type": types.get(node, ""),
                    "layer": column,
                    "x": column * (NODE_W + GAP_X),
                    "y": i * (NODE_H + GAP_Y),
                    "w": NODE_W,
                    "h": NODE_H,
                }
            )
    tallest = max((len(layer) for layer in layers), default=0)
    return {
        "nodes": placed,
        "edges": [dict(e) for e in kept],
        "width": max(len(layers) * (NODE_W + GAP_X) - GAP_X, 0),
        "height": max(tallest * (NODE_H + GAP_Y) - GAP_Y, 0),
    }
