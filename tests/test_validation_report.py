"""Validation reports every problem at once, in line order, and nothing runs while there is one."""

from __future__ import annotations

from pathlib import Path

import pytest

from artgraph import GraphError
from tests.conftest import Graphs, line_no

MANY_PROBLEMS = """
artgraph: 1
nodes:
  load:
    type: image.load
    params:
      path: nowhere.png
      size: 0
  fix:
    type: image.resiz
  r:
    type: image.resize
    params: {size: 8, mode: cubic}
    inputs: {image: lod.image}
  s:
    type: image.save
    inputs: {image: r, extra: r}
    params: {path: ../escape.png}
    descriptoin: saves
  loop: {type: vt.scale, inputs: {x: loop}}
  bad:
    type: vt.count
    inputs: {n: load.image}
colour: red
"""


def test_every_problem_is_reported_at_once_with_its_line(graphs: Graphs) -> None:
    path, text = graphs.write(MANY_PROBLEMS)
    problems = graphs.problems(path)
    got = sorted((p.line, p.node, p.message.split(":")[0]) for p in problems)
    expected = sorted(
        [
            (line_no(text, "colour"), None, "unknown top-level key 'colour'"),
            (line_no(text, "nowhere.png"), "load", "param 'path'"),
            (line_no(text, "size: 0"), "load", "param 'size'"),
            (line_no(text, "fix:"), "fix", "unknown node type 'image.resiz'"),
            (line_no(text, "mode: cubic"), "r", "param 'mode'"),
            (line_no(text, "lod.image"), "r", "input 'image' refers to missing node 'lod'"),
            (line_no(text, "extra"), "s", "unknown input 'extra'"),
            (line_no(text, "escape.png"), "s", "param 'path'"),
            (line_no(text, "descriptoin"), "s", "unknown key 'descriptoin'"),
            (line_no(text, "loop:"), "loop", "cycle"),
            (line_no(text, "n: load.image"), "bad", "type mismatch"),
        ]
    )
    assert got == expected, "\n".join(map(str, problems))


def test_problems_are_listed_in_line_order(graphs: Graphs) -> None:
    path, _ = graphs.write(MANY_PROBLEMS)
    lines = [p.line for p in graphs.problems(path)]
    assert lines == sorted(lines)


def test_nothing_runs_when_the_graph_is_invalid(graphs: Graphs, calls: list[str], tmp_path: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          s: {type: vt.scale, inputs: {x: i}}
          bad: {type: vt.count, inputs: {n: s}}
        """,
    )
    graph = graphs.load(path, validate=False)
    calls.clear()
    with pytest.raises(GraphError) as info:
        graph.run(device="cpu", cache=False, out_dir=tmp_path / "out")
    assert [p.node for p in info.value.problems] == ["bad"]
    assert calls == []
    assert not (tmp_path / "out").exists()
