"""Validation of the file's shape: YAML syntax, top-level keys, the format version, node ids and keys.

Each case writes a small graph to ``tmp_path``, loads it with ``artgraph.load_graph``
and checks the problem it reports: the line of the offending YAML, the node, the
message, the hint, and the ``FILE:LINE: node 'ID': what is wrong — how to fix it``
shape (see ``Graphs.expect`` in conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Graphs, Has, check, line_no, only_problem, the_problem

VERSION = """
# comment first
artgraph: {version}
nodes:
  a: {{type: image.load, params: {{path: in.png}}}}
"""

# (graph, line: a number or the text on it, node, message, hint): the graph's one problem.
ONE_PROBLEM = [
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params: {path: in.png]
        """,
        "in.png]",
        None,
        Has("YAML syntax error"),
        None,
        id="yaml-syntax-error-has-its-line",
    ),
    pytest.param(
        "- artgraph: 1\n- nodes: {}\n",
        1,
        None,
        Has("must be a mapping", "got a list"),
        None,
        id="top-level-must-be-a-mapping",
    ),
    pytest.param("# nothing yet\n", 1, None, Has("an empty file"), None, id="empty-file-is-invalid"),
    pytest.param(
        """
        name: no-version
        nodes:
          a: {type: image.load, params: {path: in.png}}
        """,
        1,
        None,
        Has("'artgraph'"),
        Has("artgraph: 1"),
        id="missing-version",
    ),
    *(
        pytest.param(
            VERSION.format(version=version),
            "artgraph:",
            None,
            Has("unknown format version"),
            Has("artgraph: 1"),
            id=f"unknown-version-{version}",
        )
        for version in ["2", "'1'", "true", "0.5"]
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
        descripton: typo
        """,
        "descripton",
        None,
        Has("unknown top-level key 'descripton'"),
        "did you mean 'description'?",
        id="unknown-top-level-key-did-you-mean",
    ),
    pytest.param("artgraph: 1\nname: empty\n", 1, None, Has("missing the 'nodes' mapping"), None, id="missing-nodes"),
    *(
        pytest.param(
            f"artgraph: 1\nname: x\nnodes: {value}\n",
            "nodes:",
            None,
            Has("non-empty mapping"),
            None,
            id=f"nodes-must-be-a-non-empty-mapping-{value}",
        )
        for value in ["{}", "[a, b]", "3"]
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: image.load
        """,
        "a: image.load",
        "a",
        Has("must be a mapping"),
        None,
        id="node-must-be-a-mapping",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          load.it: {type: image.load, params: {path: in.png}}
        """,
        "load.it",
        "load.it",
        Has("node ids are"),
        None,
        id="invalid-node-id",
    ),
]


@pytest.mark.parametrize(("graph", "line", "node_id", "message", "hint"), ONE_PROBLEM)
def test_one_problem_at_its_line(
    graphs: Graphs, png: Path, graph: str, line: int | str, node_id: str | None, message: Has, hint: str | Has | None
) -> None:
    graphs.expect(graph, line, node_id, message, hint)


def test_unknown_node_key_did_you_mean(graphs: Graphs, png: Path) -> None:
    graphs.expect(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            param: {path: in.png}
        """,
        "param:",
        "a",
        "unknown key 'param'",
        "did you mean 'params'?",
        among="unknown key",
    )


def test_duplicate_node_id_is_reported_at_its_second_line(graphs: Graphs, png: Path) -> None:
    path, text = graphs.write(
        """
        artgraph: 1
        nodes:
          load:
            type: image.load
            params: {path: in.png}
          load:
            type: image.load
            params: {path: in.png, size: 8}
        """,
    )
    problem = only_problem(graphs.problems(path))
    first, second = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "load:"]
    assert (problem.file, problem.line) == (str(path), second)
    assert "'load'" in problem.message
    assert f"first on line {first}" in problem.message


def test_duplicate_node_id_names_the_node_and_other_problems_are_still_reported(graphs: Graphs, png: Path) -> None:
    path, text = graphs.write(
        """
        artgraph: 1
        nodes:
          load:
            type: image.load
            params: {path: in.png}
          load:
            type: image.load
            params: {path: in.png}
          other:
            type: image.lod
        """,
    )
    problems = graphs.problems(path)
    duplicate = the_problem(problems, "duplicate")
    assert duplicate.node == "load"
    unknown = the_problem(problems, "unknown node type")
    check(unknown, path, line_no(text, "other:"), "other")
