"""Validation of params: unknown and missing params, types, bounds, choices, literals, node checks.

The one-problem cases are checked by ``Graphs.expect`` (conftest): the problem's
line, node, message, hint and ``FILE:LINE: node 'ID': what — how`` shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Graphs, Has, assert_shape, check, line_no, only_problem

SIZE_HINT = "give a Int >= 1 and <= 16384"

SIZE_OF = """
artgraph: 1
nodes:
  a:
    type: image.load
    params:
      path: in.png
      size: {value}
"""

# The value on its own line, inside a flow mapping that spans two lines.
SIZE_IN_FLOW = """
artgraph: 1
nodes:
  a:
    type: image.load
    params: {{path: in.png,
             size: {value}}}
"""

FLOAT_OF = "artgraph: 1\nnodes:\n  f:\n    type: vt.float\n    params: {{value: {literal}}}\n"

INT_OF = "artgraph: 1\nnodes:\n  a:\n    type: image.load\n    params: {{path: in.png, size: {value}}}\n"

# Node b, after the image node a.
SECOND_NODE = """
artgraph: 1
nodes:
  a: {{type: image.load, params: {{path: in.png}}}}
  b: {node_text}
"""

# (graph, line: the text on it, node, message, hint): the graph's one problem.
ONE_PROBLEM = [
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              path: in.png
              sise: 8
        """,
        "sise",
        "a",
        "unknown param 'sise'",
        "did you mean 'size'?",
        id="unknown-param-did-you-mean",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          r:
            type: image.resize
            inputs: {image: a}
            params:
              size: 8
              image: a.image
        """,
        "image: a.image",
        "r",
        "unknown param 'image'",
        Has("move it under 'inputs'"),
        id="input-written-as-a-param-says-to-move-it",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          img: {type: image.load, params: {path: in.png}}
          m: {type: vt.model}
          fx:
            type: vt.apply
            inputs: {model: m, image: img}
        """,
        "fx:",
        "fx",
        "missing required param 'strength' (Float)",
        Has("strength"),
        id="missing-required-param",
    ),
    *(
        pytest.param(
            SIZE_OF.format(value=value),
            "size:",
            "a",
            f"param 'size': expected a whole number (Int), got {got}",
            SIZE_HINT,
            id=f"param-of-the-wrong-type-{value}",
        )
        for value, got in [("big", "str 'big'"), ("true", "bool True"), ("2.5", "float 2.5"), ("[8]", "list [8]")]
    ),
    *(
        pytest.param(
            SIZE_IN_FLOW.format(value=value),
            "size:",
            "a",
            f"param 'size': {value} is {word}",
            SIZE_HINT,
            id=f"param-out-of-range-{value}",
        )
        for value, word in [("0", "below the minimum 1"), ("16385", "above the maximum 16384")]
    ),
    pytest.param(FLOAT_OF.format(literal=".nan"), "value:", "f", Has("NaN"), None, id="float-param-refuses-nan"),
    *(
        pytest.param(
            FLOAT_OF.format(literal=literal), "value:", "f", Has(words), None, id=f"float-param-refuses-{name}"
        )
        for name, literal, words in [
            ("inf", ".inf", "expected a finite number (Float), got inf"),
            ("minus-inf", "-.inf", "expected a finite number (Float), got -inf"),
            ("401-digits", "1" + "0" * 400, "is too large for a Float"),
        ]
    ),
    *(
        pytest.param(
            INT_OF.format(value=value),
            "size:",
            "a",
            Has("does not fit in 64 bits"),
            None,
            id=f"int-param-{name}-does-not-fit-in-64-bits",
        )
        for name, value in [("2**63", 2**63), ("-(2**63)-1", -(2**63) - 1), ("10**30", 10**30)]
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              path: in.png
              mode: rgb
        """,
        "mode: rgb",
        "a",
        "param 'mode': 'rgb' is not one of the choices: 'RGB', 'L', 'RGBA'",
        "choose one of: 'RGB', 'L', 'RGBA'",
        id="param-not-among-the-choices",
    ),
    # A param that already failed is not followed by a spurious message from the
    # node's own check (which would see the param missing).
    *(
        pytest.param(SECOND_NODE.format(node_text=node_text), "b:", "b", Has(needle), None, id=f"no-check-after-{name}")
        for name, node_text, needle in [
            (
                "a-size-below-the-minimum",
                "{type: image.resize, inputs: {image: a}, params: {size: 0}}",
                "below the minimum",
            ),
            (
                "an-escaping-path",
                "{type: image.save, inputs: {image: a}, params: {path: ../x.png}}",
                "escapes the output folder",
            ),
        ]
    ),
]


@pytest.mark.parametrize(("graph", "line", "node_id", "message", "hint"), ONE_PROBLEM)
def test_one_problem_at_its_line(
    graphs: Graphs, png: Path, graph: str, line: str, node_id: str, message: str | Has, hint: str | Has | None
) -> None:
    graphs.expect(graph, line, node_id, message, hint)


# --- a node's own check ------------------------------------------------------------------

RESIZE_BOTH = """
artgraph: 1
nodes:
  a: {type: image.load, params: {path: in.png}}
  r:
    type: image.resize
    inputs: {image: a}
    params: {size: 8, width: 4}
"""


def test_node_check_reports_an_invalid_combination(graphs: Graphs, png: Path) -> None:
    path, text = graphs.write(RESIZE_BOTH)
    problem = only_problem(graphs.problems(path, shape=False))
    check(problem, path, line_no(text, "r:"), "r")
    assert "not both" in problem.message


def test_node_check_problem_says_how_to_fix_it(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(RESIZE_BOTH)
    assert_shape(only_problem(graphs.problems(path, shape=False)))
