"""Validation of file params: input files must exist, output paths must stay in the output folder.

The one-problem cases are checked by ``Graphs.expect`` (conftest): the problem's
line, node, message, hint and ``FILE:LINE: node 'ID': what — how`` shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Graphs, Has, check, line_no, only_problem

SAVE_TO = """
artgraph: 1
nodes:
  a: {{type: image.load, params: {{path: in.png}}}}
  s:
    type: image.save
    inputs: {{image: a}}
    params:
      format: PNG
      path: "{target}"
"""


def test_missing_input_file(graphs: Graphs, tmp_path: Path) -> None:
    path, text = graphs.write(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              size: 8
              path: missing.png
        """,
    )
    problem = only_problem(graphs.problems(path))
    check(problem, path, line_no(text, "missing.png"), "a")
    assert problem.message == f"param 'path': file not found: {tmp_path / 'missing.png'}"
    assert str(tmp_path) in problem.hint


def test_input_file_resolves_against_the_graph_folder(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write("artgraph: 1\nnodes:\n  a: {type: image.load, params: {path: in.png}}\n")
    plan = graphs.load(path).plan()
    assert plan.nodes["a"].params["path"] == str(png.resolve())
    assert plan.nodes["a"].reads == [str(png.resolve())]


@pytest.mark.parametrize("target", ["../x.png", "/tmp/x.png", "sub/../../x.png", ".."])
def test_output_path_escaping_the_output_folder(graphs: Graphs, png: Path, target: str) -> None:
    graphs.expect(
        SAVE_TO.format(target=target),
        'path: "',
        "s",
        f"param 'path': output path '{target}' escapes the output folder",
        Has("--out"),
    )


def test_output_path_inside_the_output_folder_is_resolved_under_it(graphs: Graphs, png: Path, tmp_path: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          s: {type: image.save, inputs: {image: a}, params: {path: sub/../res/x.png}}
        """,
    )
    out = tmp_path / "elsewhere"
    plan = graphs.load(path).plan(out_dir=out)
    assert plan.nodes["s"].params["path"] == str((out / "res" / "x.png").resolve())
