"""Validation: every rule, one focused test each.

Each test writes a small graph to ``tmp_path``, loads it with
``artgraph.load_graph`` and checks the problem it reports: the exact line of
the offending YAML line, the node, the message, the hint, and the
``FILE:LINE: node 'ID': what is wrong — how to fix it`` shape. Problems found
in ``--set`` overrides are located at ``--set``.

Test-only node types (two outputs, Float/Int/Model outputs, a required param)
are registered through a registry built without entry points for them.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

import artgraph
from artgraph import REQUIRED, Float, GraphError, Image, Input, Int, List, Model, Param, Problem, node
from artgraph.plugins import build_registry

# --- test node pack ---------------------------------------------------------------

CALLS: list[str] = []


@node("vt.int", params={"value": Param(Int, 3)}, outputs={"value": Int})
def int_source(value: int) -> int:
    CALLS.append("vt.int")
    return value


@node("vt.float", params={"value": Param(Float, 0.5)}, outputs={"value": Float})
def float_source(value: float) -> float:
    CALLS.append("vt.float")
    return value


@node("vt.model", outputs={"model": Model})
def model_source() -> object:
    CALLS.append("vt.model")
    return object()


@node("vt.split", inputs={"image": Input(Image)}, outputs={"image": Image, "mask": Image})
def split(image: Any) -> tuple[Any, Any]:
    CALLS.append("vt.split")
    return image, image


@node("vt.scale", inputs={"x": Input(Float)}, params={"factor": Param(Float, 1.0)}, outputs={"x": Float})
def scale(x: float, factor: float) -> float:
    CALLS.append("vt.scale")
    return x * factor


@node("vt.count", inputs={"n": Input(Int)}, outputs={"n": Int})
def count(n: int) -> int:
    CALLS.append("vt.count")
    return n


@node(
    "vt.apply",
    inputs={"model": Input(Model), "image": Input(Image)},
    params={"strength": Param(Float, REQUIRED, min=0.0, max=1.0)},
    outputs={"image": Image},
)
def apply_model(model: object, image: Any, strength: float) -> Any:
    CALLS.append("vt.apply")
    return image


@node("vt.total", inputs={"values": Input(List(Float))}, outputs={"total": Float})
def total(values: list[float]) -> float:
    CALLS.append("vt.total")
    return sum(values)


class _Pack:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [int_source, float_source, model_source, split, scale, count, apply_model, total]


@functools.lru_cache(maxsize=1)
def validation_registry() -> artgraph.Registry:
    """Built-in nodes (through their entry point) plus the test pack."""
    return build_registry(plugins=[("validation-pack", "artgraph-validation-tests", _Pack())])


# --- helpers ------------------------------------------------------------------------


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_no(text: str, needle: str) -> int:
    """The 1-based line of the only line of ``text`` containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A 4x3 RGB PNG beside the graph files."""
    path = tmp_path / "in.png"
    PILImage.new("RGB", (4, 3), (200, 10, 10)).save(path)
    return path


def write(tmp_path: Path, text: str, name: str = "graph.yaml") -> tuple[Path, str]:
    text = dedent(text)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path, text


def load(path: Path, overrides: list[str] | None = None) -> artgraph.Graph:
    graph = artgraph.load_graph(path, registry=validation_registry(), validate=False)
    graph.plan(overrides, out_dir=path.parent / "out")
    return graph


def problems_of(path: Path, overrides: list[str] | None = None, *, shape: bool = True) -> list[Problem]:
    """Every problem of the graph at ``path``; each checked for shape unless told not to."""
    with pytest.raises(GraphError) as info:
        if overrides is None:
            artgraph.load_graph(path, registry=validation_registry())
        else:
            load(path, overrides)
    problems = info.value.problems
    assert problems, "a GraphError always lists its problems"
    if shape:
        for problem in problems:
            assert_shape(problem)
    # the exception text lists every problem
    for problem in problems:
        assert str(problem) in str(info.value)
    return problems


def assert_shape(problem: Problem) -> None:
    """``FILE:LINE: node 'ID': what — how`` (no LINE for --set, no node for file-level)."""
    where = problem.file if problem.line is None else f"{problem.file}:{problem.line}"
    who = f" node '{problem.node}':" if problem.node else ""
    assert problem.message, problem
    assert problem.hint, f"no hint on how to fix: {problem}"
    assert str(problem) == f"{where}:{who} {problem.message} — {problem.hint}"


def the_problem(problems: list[Problem], needle: str) -> Problem:
    """The only problem whose message contains ``needle``."""
    found = [p for p in problems if needle in p.message]
    assert len(found) == 1, f"{needle!r} matched {found} in {problems}"
    return found[0]


def only_problem(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def check(problem: Problem, path: Path | str, line: int | None, node_id: str | None) -> None:
    assert (problem.file, problem.line, problem.node) == (str(path), line, node_id), str(problem)
    if node_id is not None:
        assert str(problem).startswith(f"{path}:{line}: node '{node_id}': " if line else f"{path}: node '{node_id}': ")


# --- the file's shape -------------------------------------------------------------


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params: {path: in.png]
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "in.png]"), None)
    assert "YAML syntax error" in problem.message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "- artgraph: 1\n- nodes: {}\n")
    problem = only_problem(problems_of(path))
    check(problem, path, 1, None)
    assert "must be a mapping" in problem.message and "got a list" in problem.message


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "# nothing yet\n")
    problem = only_problem(problems_of(path))
    check(problem, path, 1, None)
    assert "an empty file" in problem.message


def test_missing_version(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        name: no-version
        nodes:
          a: {type: image.load, params: {path: in.png}}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, 1, None)
    assert "'artgraph'" in problem.message
    assert "artgraph: 1" in problem.hint


@pytest.mark.parametrize("version", ["2", "'1'", "true", "0.5"])
def test_unknown_version(tmp_path: Path, png: Path, version: str) -> None:
    path, text = write(
        tmp_path,
        f"""
        # comment first
        artgraph: {version}
        nodes:
          a: {{type: image.load, params: {{path: in.png}}}}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "artgraph:"), None)
    assert "unknown format version" in problem.message
    assert "artgraph: 1" in problem.hint


def test_unknown_top_level_key_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
        descripton: typo
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "descripton"), None)
    assert "unknown top-level key 'descripton'" in problem.message
    assert problem.hint == "did you mean 'description'?"


def test_missing_nodes(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "artgraph: 1\nname: empty\n")
    problem = only_problem(problems_of(path))
    check(problem, path, 1, None)
    assert "missing the 'nodes' mapping" in problem.message


@pytest.mark.parametrize("value", ["{}", "[a, b]", "3"])
def test_nodes_must_be_a_non_empty_mapping(tmp_path: Path, value: str) -> None:
    path, text = write(tmp_path, f"artgraph: 1\nname: x\nnodes: {value}\n")
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "nodes:"), None)
    assert "non-empty mapping" in problem.message


def test_node_must_be_a_mapping(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: image.load
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "a: image.load"), "a")
    assert "must be a mapping" in problem.message


def test_invalid_node_id(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          load.it: {type: image.load, params: {path: in.png}}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "load.it"), "load.it")
    assert "node ids are" in problem.message


def test_unknown_node_key_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            param: {path: in.png}
        """,
    )
    problems = problems_of(path)
    problem = the_problem(problems, "unknown key")
    check(problem, path, line_no(text, "param:"), "a")
    assert problem.message == "unknown key 'param'"
    assert problem.hint == "did you mean 'params'?"


def test_duplicate_node_id_is_reported_at_its_second_line(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    problem = only_problem(problems_of(path))
    first, second = [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "load:"]
    assert (problem.file, problem.line) == (str(path), second)
    assert "'load'" in problem.message
    assert f"first on line {first}" in problem.message


def test_duplicate_node_id_names_the_node_and_other_problems_are_still_reported(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    problems = problems_of(path)
    duplicate = the_problem(problems, "duplicate")
    assert duplicate.node == "load"
    unknown = the_problem(problems, "unknown node type")
    check(unknown, path, line_no(text, "other:"), "other")


# --- node types ---------------------------------------------------------------------


def test_missing_type(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            params: {path: in.png}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "a:"), "a")
    assert problem.message == "missing 'type'"
    assert "type:" in problem.hint


def test_type_must_be_a_name(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: [image.load]
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "type:"), "a")
    assert "'type' must be a node type name" in problem.message


def test_unknown_type_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: image.lod
            params: {path: in.png}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "a:"), "a")
    assert problem.message == "unknown node type 'image.lod'"
    assert problem.hint == "did you mean 'image.load'?"


def test_unknown_type_without_a_close_match_points_at_the_node_list(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "artgraph: 1\nnodes:\n  a: {type: zzz.qqq}\n")
    problem = only_problem(problems_of(path))
    check(problem, path, 3, "a")
    assert "artgraph nodes" in problem.hint


def _clash_plugin(type_name: str) -> object:
    class Clash:
        @artgraph.hookimpl
        def artgraph_register_nodes(self) -> list[object]:
            @node(type_name, params={"path": Param(artgraph.Path, file="input")}, outputs={"image": Image})
            def other_load(path: str) -> None:
                return None

            return [other_load]

    return Clash()


def test_type_registered_by_two_distributions_is_reported(tmp_path: Path, png: Path) -> None:
    registry = build_registry(
        plugins=[("one", "clash-one", _clash_plugin("clash.load")), ("two", "clash-two", _clash_plugin("clash.load"))]
    )
    path, _ = write(tmp_path, "artgraph: 1\nnodes:\n  a: {type: clash.load, params: {path: in.png}}\n")
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(path, registry=registry)
    problem = only_problem(info.value.problems)
    check(problem, path, 3, "a")
    assert "clash-one" in problem.message and "clash-two" in problem.message and "uninstall one" in problem.message


def test_a_plugin_cannot_take_a_builtin_type(tmp_path: Path, png: Path) -> None:
    registry = build_registry(plugins=[("clash", "clash-dist", _clash_plugin("image.load"))])
    path, _ = write(tmp_path, "artgraph: 1\nnodes:\n  a: {type: image.load, params: {path: in.png}}\n")
    graph = artgraph.load_graph(path, registry=registry)
    assert graph.plan().nodes["a"].spec.distribution == "artgraph"
    assert any("is a built-in type of artgraph" in b.error and b.distribution == "clash-dist" for b in registry.broken)


# --- params --------------------------------------------------------------------------


def test_unknown_param_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              path: in.png
              sise: 8
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "sise"), "a")
    assert problem.message == "unknown param 'sise'"
    assert problem.hint == "did you mean 'size'?"


def test_input_written_as_a_param_says_to_move_it(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "image: a.image"), "r")
    assert problem.message == "unknown param 'image'"
    assert "move it under 'inputs'" in problem.hint


def test_missing_required_param(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          img: {type: image.load, params: {path: in.png}}
          m: {type: vt.model}
          fx:
            type: vt.apply
            inputs: {model: m, image: img}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "fx:"), "fx")
    assert problem.message == "missing required param 'strength' (Float)"
    assert "strength" in problem.hint


@pytest.mark.parametrize(
    ("value", "got"),
    [("big", "str 'big'"), ("true", "bool True"), ("2.5", "float 2.5"), ("[8]", "list [8]")],
)
def test_param_of_the_wrong_type(tmp_path: Path, png: Path, value: str, got: str) -> None:
    path, text = write(
        tmp_path,
        f"""
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              path: in.png
              size: {value}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "size:"), "a")
    assert problem.message == f"param 'size': expected a whole number (Int), got {got}"
    assert problem.hint == "give a Int >= 1 and <= 16384"


@pytest.mark.parametrize(("value", "word"), [("0", "below the minimum 1"), ("16385", "above the maximum 16384")])
def test_param_out_of_range(tmp_path: Path, png: Path, value: str, word: str) -> None:
    path, text = write(
        tmp_path,
        f"""
        artgraph: 1
        nodes:
          a:
            type: image.load
            params: {{path: in.png,
                     size: {value}}}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "size:"), "a")
    assert problem.message == f"param 'size': {value} is {word}"
    assert problem.hint == "give a Int >= 1 and <= 16384"


def test_float_param_refuses_nan(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          f:
            type: vt.float
            params: {value: .nan}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "value:"), "f")
    assert "NaN" in problem.message


@pytest.mark.parametrize(
    ("literal", "words"),
    [
        (".inf", "expected a finite number (Float), got inf"),
        ("-.inf", "expected a finite number (Float), got -inf"),
        ("1" + "0" * 400, "is too large for a Float"),
    ],
)
def test_float_param_refuses_what_is_not_a_finite_float(tmp_path: Path, png: Path, literal: str, words: str) -> None:
    path, text = write(tmp_path, f"artgraph: 1\nnodes:\n  f:\n    type: vt.float\n    params: {{value: {literal}}}\n")
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "value:"), "f")
    assert words in problem.message


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_int_params_fit_in_64_bits(tmp_path: Path, png: Path, value: int) -> None:
    path, text = write(
        tmp_path, f"artgraph: 1\nnodes:\n  a:\n    type: image.load\n    params: {{path: in.png, size: {value}}}\n"
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "size:"), "a")
    assert "does not fit in 64 bits" in problem.message


def test_param_not_among_the_choices(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              path: in.png
              mode: rgb
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "mode: rgb"), "a")
    assert problem.message == "param 'mode': 'rgb' is not one of the choices: 'RGB', 'L', 'RGBA'"
    assert problem.hint == "choose one of: 'RGB', 'L', 'RGBA'"


RESIZE_BOTH = """
artgraph: 1
nodes:
  a: {type: image.load, params: {path: in.png}}
  r:
    type: image.resize
    inputs: {image: a}
    params: {size: 8, width: 4}
"""


def test_node_check_reports_an_invalid_combination(tmp_path: Path, png: Path) -> None:
    path, text = write(tmp_path, RESIZE_BOTH)
    problem = only_problem(problems_of(path, shape=False))
    check(problem, path, line_no(text, "r:"), "r")
    assert "not both" in problem.message


def test_node_check_problem_says_how_to_fix_it(tmp_path: Path, png: Path) -> None:
    path, _ = write(tmp_path, RESIZE_BOTH)
    assert_shape(only_problem(problems_of(path, shape=False)))


@pytest.mark.parametrize(
    ("node_text", "needle"),
    [
        ("{type: image.resize, inputs: {image: a}, params: {size: 0}}", "below the minimum"),
        ("{type: image.save, inputs: {image: a}, params: {path: ../x.png}}", "escapes the output folder"),
    ],
)
def test_a_bad_param_is_not_followed_by_a_spurious_check_message(
    tmp_path: Path, png: Path, node_text: str, needle: str
) -> None:
    # The node's own check must not run on params that already failed: it would
    # see them missing and report a second, misleading problem.
    path, text = write(
        tmp_path,
        f"""
        artgraph: 1
        nodes:
          a: {{type: image.load, params: {{path: in.png}}}}
          b: {node_text}
        """,
    )
    problem = only_problem(problems_of(path))
    assert needle in problem.message
    check(problem, path, line_no(text, "b:"), "b")


# --- files -----------------------------------------------------------------------


def test_missing_input_file(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
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
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "missing.png"), "a")
    assert problem.message == f"param 'path': file not found: {tmp_path / 'missing.png'}"
    assert str(tmp_path) in problem.hint


def test_input_file_resolves_against_the_graph_folder(tmp_path: Path, png: Path) -> None:
    path, _ = write(tmp_path, "artgraph: 1\nnodes:\n  a: {type: image.load, params: {path: in.png}}\n")
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    assert plan.nodes["a"].params["path"] == str(png.resolve())
    assert plan.nodes["a"].reads == [str(png.resolve())]


@pytest.mark.parametrize("target", ["../x.png", "/tmp/x.png", "sub/../../x.png", ".."])
def test_output_path_escaping_the_output_folder(tmp_path: Path, png: Path, target: str) -> None:
    path, text = write(
        tmp_path,
        f"""
        artgraph: 1
        nodes:
          a: {{type: image.load, params: {{path: in.png}}}}
          s:
            type: image.save
            inputs: {{image: a}}
            params:
              format: PNG
              path: "{target}"
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, 'path: "'), "s")
    assert problem.message == f"param 'path': output path '{target}' escapes the output folder"
    assert "--out" in problem.hint


def test_output_path_inside_the_output_folder_is_resolved_under_it(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          s: {type: image.save, inputs: {image: a}, params: {path: sub/../res/x.png}}
        """,
    )
    out = tmp_path / "elsewhere"
    plan = artgraph.load_graph(path, registry=validation_registry()).plan(out_dir=out)
    assert plan.nodes["s"].params["path"] == str((out / "res" / "x.png").resolve())


# --- inputs and references ----------------------------------------------------------


def test_unknown_input_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "imgae"), "s")
    assert problem.message == "unknown input 'imgae'"
    assert problem.hint == "did you mean 'image'?"


def test_missing_required_input(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          s:
            type: image.save
            params: {path: x.png}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "  s:"), "s")
    assert problem.message == "missing required input 'image' (Image)"
    assert "inputs: {image: NODE.OUTPUT}" in problem.hint


def test_reference_to_a_missing_node_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "contnet"), "s")
    assert problem.message == "input 'image' refers to missing node 'contnet'"
    assert problem.hint == "did you mean 'content'?"


def test_reference_to_a_missing_output_did_you_mean(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "a.imag"), "s")
    assert problem.message == "input 'image' refers to missing output 'a.imag'"
    assert problem.hint == "did you mean 'image'?"


def test_bare_reference_to_a_node_with_several_outputs(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "image: sp"), "s")
    assert problem.message == "input 'image': node 'sp' has 2 outputs"
    assert problem.hint == "name one: sp.image, sp.mask"


def test_named_output_of_a_multi_output_node_is_fine(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          sp: {type: vt.split, inputs: {image: a}}
          s: {type: image.save, params: {path: x.png}, inputs: {image: sp.mask}}
        """,
    )
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    wire = plan.nodes["s"].wires["image"]
    assert (wire.src, wire.output) == ("sp", "mask")


@pytest.mark.parametrize("ref", ["a.image.extra", "a..image", "'a image'", "42", "{node: a}", "1a.image"])
def test_malformed_reference(tmp_path: Path, png: Path, ref: str) -> None:
    path, text = write(
        tmp_path,
        f"""
        artgraph: 1
        nodes:
          a: {{type: image.load, params: {{path: in.png}}}}
          r:
            type: image.resize
            params: {{size: 8}}
            inputs:
              image: {ref}
        """,
    )
    problem = the_problem(problems_of(path), "is not a reference")
    check(problem, path, line_no(text, "image: "), "r")
    assert problem.message.startswith("input 'image': ")
    assert "NODE.OUTPUT" in problem.hint


def test_malformed_reference_in_a_list(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          g:
            type: image.grid
            inputs:
              images: [a.image, a.image.x]
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "images:"), "g")
    assert problem.message == "input 'images': 'a.image.x' is not a reference"


def test_malformed_reference_is_not_also_reported_missing(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "image: a.image.x"), "r")
    assert "is not a reference" in problem.message


# --- types ----------------------------------------------------------------------------


def test_image_into_model_is_a_type_mismatch(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "model: img.image"), "fx")
    assert problem.message == "type mismatch: input 'model' expects Model, but 'img.image' is Image"
    assert problem.hint == "wire an output of the expected type"


def test_float_into_int_is_a_type_mismatch(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          f: {type: vt.float}
          c:
            type: vt.count
            inputs:
              n: f
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "n: f"), "c")
    assert problem.message == "type mismatch: input 'n' expects Int, but 'f.value' is Float"


def test_float_wired_into_an_int_param_is_refused(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "size: f.value"), "r")
    assert problem.message == "type mismatch: input 'size' expects Int, but 'f.value' is Float"


def test_int_output_feeds_a_float_input(tmp_path: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          s: {type: vt.scale, inputs: {x: i}}
        """,
    )
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    wire = plan.nodes["s"].wires["x"]
    assert (wire.src, wire.output, wire.src_type.name, wire.dst_type.name) == ("i", "value", "Int", "Float")


def test_int_output_wired_into_an_int_param(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
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
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    assert plan.nodes["r"].wires["size"].src == "n"
    assert "size" not in plan.nodes["r"].params
    assert list(plan.nodes).index("n") < list(plan.nodes).index("r")


def test_int_output_wired_into_a_float_param(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
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
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    assert plan.nodes["g"].wires["background"].dst_type.name == "Float"


def test_param_given_both_as_param_and_as_input(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "size: n"), "r")
    assert problem.message == "'size' is given both as a param and as an input"
    assert problem.hint == "keep one of them"


def test_list_input_takes_a_yaml_list_of_references(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
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
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    wires = plan.nodes["g"].wires["images"]
    assert [(w.src, w.output) for w in wires] == [("a", "image"), ("sp", "mask"), ("a", "image")]


def test_single_reference_into_a_list_input(tmp_path: Path, png: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: image.load, params: {path: in.png}}
          g: {type: image.grid, inputs: {images: a.image}}
        """,
    )
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    wire = plan.nodes["g"].wires["images"]
    assert not isinstance(wire, list)
    assert (wire.src, wire.src_type.name, wire.dst_type.name) == ("a", "Image", "List[Image]")


def test_list_of_ints_feeds_a_list_of_floats(tmp_path: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          f: {type: vt.float}
          t: {type: vt.total, inputs: {values: [i, f]}}
        """,
    )
    plan = artgraph.load_graph(path, registry=validation_registry()).plan()
    assert [w.src_type.name for w in plan.nodes["t"].wires["values"]] == ["Int", "Float"]


def test_wrong_type_inside_a_list_input(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "images:"), "g")
    assert problem.message == "type mismatch: input 'images' expects Image, but 'm.model' is Model"


def test_list_given_to_a_single_input(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "image: [a, a]"), "r")
    assert problem.message == "input 'image' takes one Image, not a list"


def test_empty_list_input(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          g:
            type: image.grid
            inputs:
              images: []
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "images:"), "g")
    assert problem.message == "input 'images' is an empty list"


# --- cycles ---------------------------------------------------------------------------


def test_cycle_names_every_node_in_it(tmp_path: Path, png: Path) -> None:
    path, text = write(
        tmp_path,
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
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "first:"), "first")
    assert problem.message in (
        "cycle: 'first' -> 'second' -> 'third' -> 'first'",
        "cycle: 'second' -> 'third' -> 'first' -> 'second'",
        "cycle: 'third' -> 'first' -> 'second' -> 'third'",
    )
    assert "remove one of these wires" in problem.hint


def test_cycle_text_starts_at_the_reported_node(tmp_path: Path) -> None:
    # Twelve separate 3-cycles: each must read 'xN_a' -> 'xN_b' -> 'xN_c' -> 'xN_a' with
    # 'xN_a' (the first written) as the reported node. By luck alone all twelve would
    # come out right about once in half a million runs.
    body = "".join(
        f"  x{i}_a: {{type: vt.scale, inputs: {{x: x{i}_c}}}}\n"
        f"  x{i}_b: {{type: vt.scale, inputs: {{x: x{i}_a}}}}\n"
        f"  x{i}_c: {{type: vt.scale, inputs: {{x: x{i}_b}}}}\n"
        for i in range(12)
    )
    path, _ = write(tmp_path, "artgraph: 1\nnodes:\n" + body)
    problems = problems_of(path)
    assert len(problems) == 12
    for i in range(12):
        problem = the_problem(problems, f"'x{i}_a' ->")
        assert problem.node == f"x{i}_a"
        assert problem.message == f"cycle: 'x{i}_a' -> 'x{i}_b' -> 'x{i}_c' -> 'x{i}_a'"


def test_node_wired_to_itself_is_a_cycle(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          loop:
            type: vt.scale
            inputs: {x: loop.x}
        """,
    )
    problem = only_problem(problems_of(path))
    check(problem, path, line_no(text, "loop:"), "loop")
    assert problem.message == "cycle: 'loop' -> 'loop'"


def test_two_separate_cycles_are_both_reported(tmp_path: Path) -> None:
    path, text = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          a: {type: vt.scale, inputs: {x: b}}
          b: {type: vt.scale, inputs: {x: a}}
          c: {type: vt.scale, inputs: {x: c}}
        """,
    )
    problems = problems_of(path)
    assert sorted((p.line, p.node) for p in problems) == [(line_no(text, "a:"), "a"), (line_no(text, "c:"), "c")]


# --- all at once -------------------------------------------------------------------------

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


def test_every_problem_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path, text = write(tmp_path, MANY_PROBLEMS)
    problems = problems_of(path)
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


def test_problems_are_listed_in_line_order(tmp_path: Path) -> None:
    path, _ = write(tmp_path, MANY_PROBLEMS)
    lines = [p.line for p in problems_of(path)]
    assert lines == sorted(lines)


def test_nothing_runs_when_the_graph_is_invalid(tmp_path: Path) -> None:
    path, _ = write(
        tmp_path,
        """
        artgraph: 1
        nodes:
          i: {type: vt.int}
          s: {type: vt.scale, inputs: {x: i}}
          bad: {type: vt.count, inputs: {n: s}}
        """,
    )
    graph = artgraph.load_graph(path, registry=validation_registry(), validate=False)
    CALLS.clear()
    with pytest.raises(GraphError) as info:
        graph.run(device="cpu", cache=False, out_dir=tmp_path / "out")
    assert [p.node for p in info.value.problems] == ["bad"]
    assert CALLS == []
    assert not (tmp_path / "out").exists()


# --- --set overrides -------------------------------------------------------------------

VALID = """
artgraph: 1
nodes:
  a:
    type: image.load
    params: {path: in.png, size: 8}
  s:
    type: image.save
    inputs: {image: a}
    params: {path: x.png}
"""


def set_problem(tmp_path: Path, overrides: list[str]) -> Problem:
    path, _ = write(tmp_path, VALID)
    problem = only_problem(problems_of(path, overrides))
    assert problem.file == "--set"
    assert problem.line is None
    return problem


def test_set_applies_and_leaves_the_loaded_graph_alone(tmp_path: Path, png: Path) -> None:
    path, _ = write(tmp_path, VALID)
    graph = artgraph.load_graph(path, registry=validation_registry())
    plan = graph.plan(["a.size=5", "a.mode=L"])
    assert plan.nodes["a"].params["size"] == 5
    assert plan.nodes["a"].params["mode"] == "L"
    assert graph.plan().nodes["a"].params["size"] == 8


def test_set_value_out_of_range(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["a.size=0"])
    check(problem, "--set", None, "a")
    assert problem.message == "'a.size=0': param 'size': 0 is below the minimum 1"
    assert problem.hint == "give a Int >= 1 and <= 16384"


def test_set_value_of_the_wrong_type(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["a.size=big"])
    check(problem, "--set", None, "a")
    assert problem.message == "'a.size=big': param 'size': expected a whole number (Int), got str 'big'"


def test_set_value_not_among_the_choices(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["a.mode=CMYK"])
    check(problem, "--set", None, "a")
    assert "is not one of the choices" in problem.message
    assert problem.hint == "choose one of: 'RGB', 'L', 'RGBA'"


def test_set_unknown_node_did_you_mean(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["aa.size=5"])
    check(problem, "--set", None, "aa")
    assert problem.message == "'aa.size=5': no such node"
    assert problem.hint == "did you mean 'a'?"


def test_set_unknown_param_did_you_mean(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["a.sise=5"])
    check(problem, "--set", None, "a")
    assert problem.message == "'a.sise=5': unknown param 'sise'"
    assert problem.hint == "did you mean 'size'?"


@pytest.mark.parametrize("text", ["a.size", "size=5", ".size=5", "a.=5"])
def test_set_that_is_not_node_param_value(tmp_path: Path, png: Path, text: str) -> None:
    problem = set_problem(tmp_path, [text])
    assert problem.node is None
    assert str(problem).startswith("--set: ")
    assert text in problem.message
    assert "--set transfer.steps=50" in problem.hint


def test_set_missing_input_file(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["a.path=gone.png"])
    check(problem, "--set", None, "a")
    assert problem.message == f"'a.path=gone.png': param 'path': file not found: {tmp_path / 'gone.png'}"


def test_set_output_path_escaping_the_output_folder(tmp_path: Path, png: Path) -> None:
    problem = set_problem(tmp_path, ["s.path=../../x.png"])
    check(problem, "--set", None, "s")
    assert problem.message == "'s.path=../../x.png': param 'path': output path '../../x.png' escapes the output folder"


def test_set_problems_are_reported_with_the_file_problems(tmp_path: Path, png: Path) -> None:
    path, text = write(tmp_path, VALID.replace("size: 8", "size: 8, sise: 3"))
    problems = problems_of(path, ["a.size=0", "zz.q=1"])
    assert [(p.file, p.line, p.node) for p in problems if p.file == str(path)] == [
        (str(path), line_no(text, "sise"), "a")
    ]
    assert sorted(p.message for p in problems if p.file == "--set") == [
        "'a.size=0': param 'size': 0 is below the minimum 1",
        "'zz.q=1': no such node",
    ]


# --- the CLI ----------------------------------------------------------------------------
#
# Each `python -m artgraph.cli` imports torch (seconds), so there is one such run,
# on invalid graphs (the case where a traceback could leak). It starts in the
# background as soon as this module's first test starts and overlaps with the
# in-process tests; the exit-0 and --set checks call the same main() in process.

CLI_BAD = """
artgraph: 1
nodes:
  a:
    type: image.load
    params: {path: nowhere.png}
  s:
    type: image.sav
    inputs: {image: a}
"""

CLI_RUNS = {"bad": ["bad.yaml", "syntax.yaml", "evil.yaml", "missing.yaml"]}


def _cli_folder(folder: Path) -> Path:
    PILImage.new("RGB", (4, 3)).save(folder / "in.png")
    (folder / "good.yaml").write_text(dedent(VALID))
    (folder / "bad.yaml").write_text(dedent(CLI_BAD))
    (folder / "syntax.yaml").write_text("artgraph: 1\nnodes: {a: [}\n")
    (folder / "evil.yaml").write_text("artgraph: 1\nnodes: !!python/object/apply:os.getcwd []\n")
    return folder


@pytest.fixture(scope="module", autouse=True)
def _cli_processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not any(item.name.startswith("test_cli_invalid") for item in request.session.items):
        yield {}
        return
    folder = _cli_folder(tmp_path_factory.mktemp("cli"))
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "artgraph.cli", "validate", *args],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in CLI_RUNS.items()
    }
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def cli(_cli_processes: dict[str, subprocess.Popen[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    done = {}
    for name, proc in _cli_processes.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def run_main(
    folder: Path, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> tuple[int, str, str]:
    """``artgraph ARGS`` in process: what ``python -m artgraph.cli`` passes to sys.exit."""
    from artgraph import cli as cli_module

    monkeypatch.chdir(folder)
    code = cli_module.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_valid_graph_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_main(_cli_folder(tmp_path), ["validate", "good.yaml"], capsys, monkeypatch)
    assert code == 0, err
    assert out == "ok: good.yaml (2 nodes)\n"
    assert err == ""


def test_cli_invalid_graphs_exit_2_with_every_problem_and_no_traceback(
    cli: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    run = cli["bad"]
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    bad = dedent(CLI_BAD)
    assert any(
        line.startswith(f"bad.yaml:{line_no(bad, 'nowhere.png')}: node 'a': param 'path': file not found")
        for line in lines
    ), run.stderr
    assert (
        f"bad.yaml:{line_no(bad, '  s:')}: node 's': unknown node type 'image.sav' — did you mean 'image.save'?"
        in lines
    )
    assert any(line.startswith("syntax.yaml:2: YAML syntax error") for line in lines), run.stderr
    assert any(line.startswith("evil.yaml:2: ") and "python/object" in line for line in lines), run.stderr
    assert any(line.startswith("missing.yaml: graph file not found") for line in lines), run.stderr
    assert lines[-1] == "artgraph: 5 problems; nothing was run"


def test_cli_set_problems_are_located_at_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["validate", "good.yaml", "--set", "a.size=0", "--set", "zz.size=1"]
    code, _, err = run_main(_cli_folder(tmp_path), args, capsys, monkeypatch)
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert "--set: node 'a': 'a.size=0': param 'size': 0 is below the minimum 1 — give a Int >= 1 and <= 16384" in lines
    assert "--set: node 'zz': 'zz.size=1': no such node — nodes: a, s" in lines
    assert lines[-1] == "artgraph: 2 problems; nothing was run"
