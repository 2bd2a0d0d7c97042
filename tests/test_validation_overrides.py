"""Validation of ``--set NODE.PARAM=VALUE`` overrides: their problems are located at ``--set``.

Each override is applied to ``VALID_GRAPH`` (conftest); its one problem is checked
for node, message, hint and the ``--set: node 'ID': what — how`` shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from artgraph import Problem
from tests.conftest import VALID_GRAPH, Graphs, Has, check, expect_text, line_no, only_problem


def set_problem(graphs: Graphs, overrides: list[str]) -> Problem:
    """The one problem of ``VALID_GRAPH`` with ``overrides``, located at ``--set`` (no line)."""
    path, _ = graphs.write(VALID_GRAPH)
    problem = only_problem(graphs.problems(path, overrides))
    assert problem.file == "--set"
    assert problem.line is None
    return problem


# (override, node, message, hint): its one problem.
ONE_PROBLEM = [
    pytest.param(
        "a.size=0",
        "a",
        "'a.size=0': param 'size': 0 is below the minimum 1",
        "give a Int >= 1 and <= 16384",
        id="value-out-of-range",
    ),
    pytest.param(
        "a.size=big",
        "a",
        "'a.size=big': param 'size': expected a whole number (Int), got str 'big'",
        None,
        id="value-of-the-wrong-type",
    ),
    pytest.param(
        "a.mode=CMYK",
        "a",
        Has("is not one of the choices"),
        "choose one of: 'RGB', 'L', 'RGBA'",
        id="value-not-among-the-choices",
    ),
    pytest.param("aa.size=5", "aa", "'aa.size=5': no such node", "did you mean 'a'?", id="unknown-node-did-you-mean"),
    pytest.param(
        "a.sise=5", "a", "'a.sise=5': unknown param 'sise'", "did you mean 'size'?", id="unknown-param-did-you-mean"
    ),
    pytest.param(
        "s.path=../../x.png",
        "s",
        "'s.path=../../x.png': param 'path': output path '../../x.png' escapes the output folder",
        None,
        id="output-path-escaping-the-output-folder",
    ),
]


@pytest.mark.parametrize(("override", "node_id", "message", "hint"), ONE_PROBLEM)
def test_one_problem_at_set(
    graphs: Graphs, png: Path, override: str, node_id: str, message: str | Has, hint: str | None
) -> None:
    problem = set_problem(graphs, [override])
    check(problem, "--set", None, node_id)
    expect_text(problem.message, message)
    expect_text(problem.hint, hint)


def test_set_missing_input_file(graphs: Graphs, png: Path, tmp_path: Path) -> None:
    problem = set_problem(graphs, ["a.path=gone.png"])
    check(problem, "--set", None, "a")
    assert problem.message == f"'a.path=gone.png': param 'path': file not found: {tmp_path / 'gone.png'}"


@pytest.mark.parametrize("text", ["a.size", "size=5", ".size=5", "a.=5"])
def test_set_that_is_not_node_param_value(graphs: Graphs, png: Path, text: str) -> None:
    problem = set_problem(graphs, [text])
    assert problem.node is None
    assert str(problem).startswith("--set: ")
    assert text in problem.message
    assert "--set transfer.steps=50" in problem.hint


def test_set_applies_and_leaves_the_loaded_graph_alone(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(VALID_GRAPH)
    graph = graphs.load(path)
    plan = graph.plan(["a.size=5", "a.mode=L"])
    assert plan.nodes["a"].params["size"] == 5
    assert plan.nodes["a"].params["mode"] == "L"
    assert graph.plan().nodes["a"].params["size"] == 8


def test_set_problems_are_reported_with_the_file_problems(graphs: Graphs, png: Path) -> None:
    path, text = graphs.write(VALID_GRAPH.replace("size: 8", "size: 8, sise: 3"))
    problems = graphs.problems(path, ["a.size=0", "zz.q=1"])
    assert [(p.file, p.line, p.node) for p in problems if p.file == str(path)] == [
        (str(path), line_no(text, "sise"), "a")
    ]
    assert sorted(p.message for p in problems if p.file == "--set") == [
        "'a.size=0': param 'size': 0 is below the minimum 1",
        "'zz.q=1': no such node",
    ]
