"""Validation of wires: inputs, references, type mismatches, list inputs, wired params, cycles.

The one-problem cases are checked by ``Graphs.expect`` (conftest): the problem's
line, node, message, hint and ``FILE:LINE: node 'ID': what — how`` shape. The
other tests check what a valid wire becomes in the plan, or several problems.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Graphs, Has, check, line_no, only_problem, the_problem

# (graph, line: the text on it, node, message, hint): the graph's one problem.
ONE_PROBLEM = [
    # --- inputs and references
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          s:
            type: image.save
            params: {path: x.png}
            inputs:
              image: a
              imgae: a
        """,
        "imgae",
        "s",
        "unknown input 'imgae'",
        "did you mean 'image'?",
        id="unknown-input-did-you-mean",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          s:
            type: image.save
            params: {path: x.png}
        """,
        "  s:",
        "s",
        "missing required input 'image' (Image)",
        Has("inputs: {image: NODE.OUTPUT}"),
        id="missing-required-input",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          content: {type: image.load, params: {path: in.png}}
          s:
            type: image.save
            params: {path: x.png}
            inputs:
              image: contnet.image
        """,
        "contnet",
        "s",
        "input 'image' refers to missing node 'contnet'",
        "did you mean 'content'?",
        id="reference-to-a-missing-node-did-you-mean",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          s:
            type: image.save
            params: {path: x.png}
            inputs:
              image: a.imag
        """,
        "a.imag",
        "s",
        "input 'image' refers to missing output 'a.imag'",
        "did you mean 'image'?",
        id="reference-to-a-missing-output-did-you-mean",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          sp: {type: vt.split, inputs: {image: a}}
          s:
            type: image.save
            params: {path: x.png}
            inputs:
              image: sp
        """,
        "image: sp",
        "s",
        "input 'image': node 'sp' has 2 outputs",
        "name one: sp.image, sp.mask",
        id="bare-reference-to-a-node-with-several-outputs",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          g:
            type: image.grid
            inputs:
              images: [a.image, a.image.x]
        """,
        "images:",
        "g",
        "input 'images': 'a.image.x' is not a reference",
        None,
        id="malformed-reference-in-a-list",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          r:
            type: image.resize
            params: {size: 8}
            inputs:
              image: a.image.x
        """,
        "image: a.image.x",
        "r",
        Has("is not a reference"),
        None,
        id="malformed-reference-is-not-also-reported-missing",
    ),
    # --- types
    pytest.param(
        """
        artgraph: 1
        nodes:
          img: {type: image.load, params: {path: in.png}}
          fx:
            type: vt.apply
            params: {strength: 0.5}
            inputs:
              image: img
              model: img.image
        """,
        "model: img.image",
        "fx",
        "type mismatch: input 'model' expects Model, but 'img.image' is Image",
        "wire an output of the expected type",
        id="image-into-model-is-a-type-mismatch",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          f: {type: vt.float}
          c:
            type: vt.count
            inputs:
              n: f
        """,
        "n: f",
        "c",
        "type mismatch: input 'n' expects Int, but 'f.value' is Float",
        None,
        id="float-into-int-is-a-type-mismatch",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          f: {type: vt.float}
          r:
            type: image.resize
            inputs:
              image: a
              size: f.value
        """,
        "size: f.value",
        "r",
        "type mismatch: input 'size' expects Int, but 'f.value' is Float",
        None,
        id="float-wired-into-an-int-param-is-refused",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          n: {type: vt.int}
          r:
            type: image.resize
            params: {size: 8}
            inputs:
              image: a
              size: n
        """,
        "size: n",
        "r",
        "'size' is given both as a param and as an input",
        "keep one of them",
        id="param-given-both-as-param-and-as-input",
    ),
    # --- list inputs
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          m: {type: vt.model}
          g:
            type: image.grid
            inputs:
              images: [a, m]
        """,
        "images:",
        "g",
        "type mismatch: input 'images' expects Image, but 'm.model' is Model",
        None,
        id="wrong-type-inside-a-list-input",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          r:
            type: image.resize
            params: {size: 8}
            inputs:
              image: [a, a]
        """,
        "image: [a, a]",
        "r",
        "input 'image' takes one Image, not a list",
        None,
        id="list-given-to-a-single-input",
    ),
    pytest.param(
        """
        artgraph: 1
        nodes:
          g:
            type: image.grid
            inputs:
              images: []
        """,
        "images:",
        "g",
        "input 'images' is an empty list",
        None,
        id="empty-list-input",
    ),
    # --- cycles
    pytest.param(
        """
        artgraph: 1
        nodes:
          loop:
            type: vt.scale
            inputs: {x: loop.x}
        """,
        "loop:",
        "loop",
        "cycle: 'loop' -> 'loop'",
        None,
        id="node-wired-to-itself-is-a-cycle",
    ),
]


@pytest.mark.parametrize(("graph", "line", "node_id", "message", "hint"), ONE_PROBLEM)
def test_one_problem_at_its_line(
    graphs: Graphs, png: Path, graph: str, line: str, node_id: str, message: str | Has, hint: str | Has | None
) -> None:
    graphs.expect(graph, line, node_id, message, hint)


MALFORMED = """
artgraph: 1
nodes:
  a: {{type: image.load, params: {{path: in.png}}}}
  r:
    type: image.resize
    params: {{size: 8}}
    inputs:
      image: {ref}
"""


@pytest.mark.parametrize("ref", ["a.image.extra", "a..image", "'a image'", "42", "{node: a}", "1a.image"])
def test_malformed_reference(graphs: Graphs, png: Path, ref: str) -> None:
    problem = graphs.expect(
        MALFORMED.format(ref=ref), "image: ", "r", None, Has("NODE.OUTPUT"), among="is not a reference"
    )
    assert problem.message.startswith("input 'image': ")


# --- valid wires, as planned ------------------------------------------------------------


def test_named_output_of_a_multi_output_node_is_fine(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          sp: {type: vt.split, inputs: {image: a}}
          s: {type: image.save, params: {path: x.png}, inputs: {image: sp.mask}}
        """,
    )
    plan = graphs.load(path).plan()
    [wire] = plan.nodes["s"].wires["image"]
    assert (wire.src, wire.output) == ("sp", "mask")


def test_int_output_feeds_a_float_input(graphs: Graphs) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          s: {type: vt.scale, inputs: {x: i}}
        """,
    )
    plan = graphs.load(path).plan()
    [wire] = plan.nodes["s"].wires["x"]
    assert (wire.src, wire.output, wire.src_type.name, wire.dst_type.name) == ("i", "value", "Int", "Float")


def test_int_output_wired_into_an_int_param(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          n: {type: vt.int, params: {value: 2}}
          r:
            type: image.resize
            inputs: {image: a, size: n.value}
        """,
    )
    plan = graphs.load(path).plan()
    assert [w.src for w in plan.nodes["r"].wires["size"]] == ["n"]
    assert "size" not in plan.nodes["r"].params
    assert list(plan.nodes).index("n") < list(plan.nodes).index("r")


def test_int_output_wired_into_a_float_param(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          n: {type: vt.int, params: {value: 1}}
          g:
            type: image.grid
            inputs: {images: [a], background: n}
        """,
    )
    plan = graphs.load(path).plan()
    assert [w.dst_type.name for w in plan.nodes["g"].wires["background"]] == ["Float"]


def test_list_input_takes_a_yaml_list_of_references(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          sp: {type: vt.split, inputs: {image: a}}
          g:
            type: image.grid
            inputs:
              images:
                - a
                - sp.mask
                - a.image
        """,
    )
    plan = graphs.load(path).plan()
    wires = plan.nodes["g"].wires["images"]
    assert [(w.src, w.output) for w in wires] == [("a", "image"), ("sp", "mask"), ("a", "image")]
    assert "images" in plan.nodes["g"].listed


def test_single_reference_into_a_list_input(graphs: Graphs, png: Path) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          g: {type: image.grid, inputs: {images: a.image}}
        """,
    )
    plan = graphs.load(path).plan()
    [wire] = plan.nodes["g"].wires["images"]
    assert "images" not in plan.nodes["g"].listed  # one value, made a list of one when it arrives
    assert (wire.src, wire.src_type.name, wire.dst_type.name) == ("a", "Image", "List[Image]")


def test_list_of_ints_feeds_a_list_of_floats(graphs: Graphs) -> None:
    path, _ = graphs.write(
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          f: {type: vt.float}
          t: {type: vt.total, inputs: {values: [i, f]}}
        """,
    )
    plan = graphs.load(path).plan()
    assert [w.src_type.name for w in plan.nodes["t"].wires["values"]] == ["Int", "Float"]


# --- cycles -------------------------------------------------------------------------------


def test_cycle_names_every_node_in_it(graphs: Graphs, png: Path) -> None:
    path, text = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          first:
            type: image.resize
            params: {size: 8}
            inputs: {image: third}
          second:
            type: image.resize
            params: {size: 8}
            inputs: {image: first}
          third:
            type: image.resize
            params: {size: 8}
            inputs: {image: second.image}
          out: {type: image.save, params: {path: x.png}, inputs: {image: third}}
        """,
    )
    problem = only_problem(graphs.problems(path))
    check(problem, path, line_no(text, "first:"), "first")
    assert problem.message in (
        "cycle: 'first' -> 'second' -> 'third' -> 'first'",
        "cycle: 'second' -> 'third' -> 'first' -> 'second'",
        "cycle: 'third' -> 'first' -> 'second' -> 'third'",
    )
    assert "remove one of these wires" in problem.hint


def test_cycle_text_starts_at_the_reported_node(graphs: Graphs) -> None:
    # Twelve separate 3-cycles: each must read 'xN_a' -> 'xN_b' -> 'xN_c' -> 'xN_a' with
    # 'xN_a' (the first written) as the reported node. By luck alone all twelve would
    # come out right about once in half a million runs.
    body = "".join(
        f"  x{i}_a: {{type: vt.scale, inputs: {{x: x{i}_c}}}}\n"
        f"  x{i}_b: {{type: vt.scale, inputs: {{x: x{i}_a}}}}\n"
        f"  x{i}_c: {{type: vt.scale, inputs: {{x: x{i}_b}}}}\n"
        for i in range(12)
    )
    path, _ = graphs.write("artgraph: 1\nnodes:\n" + body)
    problems = graphs.problems(path)
    assert len(problems) == 12
    for i in range(12):
        problem = the_problem(problems, f"'x{i}_a' ->")
        assert problem.node == f"x{i}_a"
        assert problem.message == f"cycle: 'x{i}_a' -> 'x{i}_b' -> 'x{i}_c' -> 'x{i}_a'"


def test_two_separate_cycles_are_both_reported(graphs: Graphs) -> None:
    path, text = graphs.write(
        """
        artgraph: 1
        nodes:
          a: {type: vt.scale, inputs: {x: b}}
          b: {type: vt.scale, inputs: {x: a}}
          c: {type: vt.scale, inputs: {x: c}}
        """,
    )
    problems = graphs.problems(path)
    assert sorted((p.line, p.node) for p in problems) == [(line_no(text, "a:"), "a"), (line_no(text, "c:"), "c")]
