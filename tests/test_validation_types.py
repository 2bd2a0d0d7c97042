"""Validation of node types: a missing or malformed type, unknown types, types two plugins claim.

The one-problem cases are checked by ``Graphs.expect`` (conftest): the problem's
line, node, message, hint and ``FILE:LINE: node 'ID': what — how`` shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import artgraph
from artgraph import GraphError, Image, Param, node
from artgraph.plugins import build_registry
from tests.conftest import Graphs, Has, check, only_problem

# (graph, line: a number or the text on it, node, message, hint): the graph's one problem.
ONE_PROBLEM = [
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            params: {path: in.png}
        """,
        "a:",
        "a",
        "missing 'type'",
        Has("type:"),
        id="missing-type",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            type: [image.load]
        """,
        "type:",
        "a",
        Has("'type' must be a node type name"),
        None,
        id="type-must-be-a-name",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            type: image.lod
            params: {path: in.png}
        """,
        "a:",
        "a",
        "unknown node type 'image.lod'",
        "did you mean 'image.load'?",
        id="unknown-type-did-you-mean",
    ),
    pytest.param(
        "artgraph: 1\nnodes:\n  a: {type: zzz.qqq}\n",
        3,
        "a",
        None,
        Has("artgraph nodes"),
        id="unknown-type-without-a-close-match-points-at-the-node-list",
    ),
]


@pytest.mark.parametrize(("graph", "line", "node_id", "message", "hint"), ONE_PROBLEM)
def test_one_problem_at_its_line(
    graphs: Graphs,
    png: Path,
    graph: str,
    line: int | str,
    node_id: str,
    message: str | Has | None,
    hint: str | Has | None,
) -> None:
    graphs.expect(graph, line, node_id, message, hint)


# --- two distributions, one type ------------------------------------------------------


def _clash_plugin(type_name: str) -> object:
    class Clash:
        @artgraph.hookimpl
        def artgraph_register_nodes(self) -> list[object]:
            @node(type_name, params={"path": Param(artgraph.Path, file="input")}, outputs={"image": Image})
            def other_load(path: str) -> None:
                return None

            return [other_load]

    return Clash()


def test_type_registered_by_two_distributions_is_reported(graphs: Graphs, png: Path) -> None:
    registry = build_registry(
        plugins=[("one", "clash-one", _clash_plugin("clash.load")), ("two", "clash-two", _clash_plugin("clash.load"))]
    )
    path, _ = graphs.write("artgraph: 1\nnodes:\n  a: {type: clash.load, params: {path: in.png}}\n")
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(path, registry=registry)
    problem = only_problem(info.value.problems)
    check(problem, path, 3, "a")
    assert "clash-one" in problem.message and "clash-two" in problem.message and "uninstall one" in problem.message


def test_a_plugin_cannot_take_a_builtin_type(graphs: Graphs, png: Path) -> None:
    registry = build_registry(plugins=[("clash", "clash-dist", _clash_plugin("image.load"))])
    path, _ = graphs.write("artgraph: 1\nnodes:\n  a: {type: image.load, params: {path: in.png}}\n")
    graph = artgraph.load_graph(path, registry=registry)
    assert graph.plan().nodes["a"].spec.distribution == "artgraph"
    assert any("is a built-in type of artgraph" in b.error and b.distribution == "clash-dist" for b in registry.broken)
