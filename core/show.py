"""Showing a graph: as text in the terminal, or drawn with Graphviz."""

from __future__ import annotations

from pathlib import Path

from .errors import ArtgraphError
from .files import atomic_path
from .plan import Plan


def render_text(plan: Plan) -> str:
    """Nodes in run order, each with where its inputs come from and its params."""
    lines = [f"{plan.graph.name} ({len(plan.nodes)} nodes)"]
    for node in plan.nodes.values():
        flag = " [output]" if node.spec.output_node else ""
        lines.append(f"  {node.id}: {node.spec.type_name}{flag}")
        for name, wires in node.wires.items():
            lines.append(f"    {name} <- {', '.join(f'{w.src}.{w.output}' for w in wires)}")
        for name, value in node.params.items():
            if value is not None and value != node.spec.params[name].default:
                lines.append(f"    {name} = {value!r}")
    return "\n".join(lines)


def write_drawing(plan: Plan, path: str) -> None:
    """Write ``.dot`` (needs pydot), ``.svg`` or ``.png`` (also Graphviz's ``dot``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".dot", ".svg", ".png"):
        raise ArtgraphError(f"cannot draw to '{path}': use a .dot, .svg or .png file")
    try:
        import pydot
    except ImportError:
        raise ArtgraphError("drawing graphs needs pydot: pip install 'artgraph[viz]'") from None
    dot = pydot.Dot(plan.graph.name, graph_type="digraph", rankdir="LR")
    for node in plan.nodes.values():
        shape = "doubleoctagon" if node.spec.output_node else "box"
        label = f"{node.id}\\n{node.spec.type_name}"
        dot.add_node(pydot.Node(f'"{node.id}"', label=f'"{label}"', shape=shape))
    for node in plan.nodes.values():
        for name, wires in node.wires.items():
            for w in wires:
                dot.add_edge(pydot.Edge(f'"{w.src}"', f'"{node.id}"', label=f'"{w.output} -> {name}"'))
    if suffix == ".dot":
        data = dot.to_string().encode()
    else:
        try:
            data = dot.create(format=suffix[1:])  # type: ignore[assignment]  # pydot says str; it returns dot's stdout bytes
        except (FileNotFoundError, OSError, AssertionError) as exc:
            raise ArtgraphError(
                f"drawing {suffix} needs Graphviz's 'dot' program ({exc}); install graphviz or write a .dot file"
            ) from None
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise ArtgraphError(f"cannot write {path}: {exc.strerror or exc}") from None
