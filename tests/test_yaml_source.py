"""The YAML layer: safe loading, line numbers, duplicate keys, alias bounds.

These tests call :func:`artgraph.yamlsource.load_yaml` directly (and
``load_graph`` where the user-facing error matters), so they need no node
registry and stay fast.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import artgraph
from artgraph import GraphError, Problem, limits
from artgraph.yamlsource import LineDict, load_yaml, parse_scalar
from tests.conftest import assert_shape, dedent, line_no, only_problem


def one_problem(text: str, filename: str = "g.yaml", *, need_hint: bool = True) -> Problem:
    """The single problem ``load_yaml`` reports for ``text``, checked for shape."""
    data, problems = load_yaml(text, filename)
    problem = only_problem(problems)
    # Duplicate keys are reported while the rest still loads (so other problems show too).
    assert (data is None) != ("duplicate" in problem.message)
    assert problem.file == filename
    assert problem.node is None
    if need_hint:
        # ``FILE:LINE: what — how``, with a hint on how to fix it
        assert_shape(problem)
    return problem


BILLION_LAUGHS = dedent(
    """
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
    """
)


# --- line numbers -------------------------------------------------------------


def test_mappings_remember_their_line_and_the_line_of_each_key() -> None:
    text = dedent(
        """
        # a comment
        artgraph: 1
        nodes:
          load:
            type: image.load
            params: {path: a.png,
                     size: 64}
        """
    )
    data, problems = load_yaml(text, "g.yaml")
    assert problems == []
    assert isinstance(data, LineDict)
    assert data.line_of("artgraph") == line_no(text, "artgraph:")
    assert data.line_of("nodes") == line_no(text, "nodes:")
    nodes = data["nodes"]
    assert nodes.line_of("load") == line_no(text, "load:")
    params = nodes["load"]["params"]
    assert params.line_of("path") == line_no(text, "path: a.png")
    assert params.line_of("size") == line_no(text, "size: 64")
    # an unknown key falls back to the line of the mapping itself
    assert params.line_of("nope") == params.line == line_no(text, "params:")


def test_empty_document_is_none_without_problems() -> None:
    assert load_yaml("", "g.yaml") == (None, [])
    assert load_yaml("# only a comment\n", "g.yaml") == (None, [])


# --- syntax errors --------------------------------------------------------------


def test_syntax_error_reports_the_offending_line() -> None:
    text = dedent(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params: {path: a.png}}
        """
    )
    problem = one_problem(text)
    assert problem.line == line_no(text, "a.png}}")
    assert "YAML syntax error" in problem.message


def test_bad_indentation_reports_the_offending_line() -> None:
    text = dedent(
        """
        artgraph: 1
        nodes:
          a:
            params:
              path: a.png
             size: 3
        """
    )
    problem = one_problem(text)
    assert problem.line == line_no(text, "size: 3")


def test_unclosed_quote_is_a_syntax_error() -> None:
    problem = one_problem('artgraph: 1\nname: "unterminated\n')
    assert "YAML syntax error" in problem.message
    assert problem.line is not None


def test_several_documents_are_refused() -> None:
    text = "artgraph: 1\n---\nartgraph: 1\n"
    problem = one_problem(text)
    assert problem.line == 2
    assert "single document" in problem.message


def test_a_mapping_key_must_be_a_plain_value() -> None:
    text = dedent(
        """
        artgraph: 1
        ? [a, b]
        : 1
        """
    )
    problem = one_problem(text, need_hint=False)
    assert problem.line == line_no(text, "? [a, b]")
    assert "plain value" in problem.message


def test_a_non_plain_mapping_key_says_how_to_fix_it() -> None:
    problem = one_problem("artgraph: 1\n? [a, b]\n: 1\n")
    assert problem.hint


# --- safe loading ------------------------------------------------------------------


def test_the_loader_is_a_safe_loader() -> None:
    from artgraph import yamlsource

    assert issubclass(yamlsource._Loader, yaml.constructor.SafeConstructor)
    assert not issubclass(yamlsource._Loader, yaml.constructor.FullConstructor)


@pytest.mark.parametrize(
    "tagged",
    [
        "!!python/object:collections.OrderedDict {}",
        "!!python/name:os.system",
        "!!python/module:os",
        "!!python/object/apply:os.getcwd []",
    ],
)
def test_python_tags_are_refused(tagged: str) -> None:
    text = f"artgraph: 1\nnodes: {tagged}\n"
    problem = one_problem(text)
    assert problem.line == 2
    assert "python/" in problem.message


def test_python_object_apply_is_never_executed(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    text = f'artgraph: 1\nnodes: !!python/object/apply:os.mkdir ["{target}"]\n'
    problem = one_problem(text)
    assert problem.line == 2
    assert not target.exists()


def test_python_object_tag_is_refused_by_load_graph(tmp_path: Path) -> None:
    text = dedent(
        """
        artgraph: 1
        nodes:
          a: !!python/object:collections.OrderedDict
            type: image.load
        """
    )
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(path, validate=False)
    (problem,) = info.value.problems
    assert problem.line == line_no(text, "!!python/object")
    assert str(problem).startswith(f"{path}:{problem.line}: ")
    assert "python/object" in problem.message


# --- duplicate keys ----------------------------------------------------------------


def test_duplicate_top_level_key_is_refused() -> None:
    text = dedent(
        """
        artgraph: 1
        name: first
        nodes: {}
        name: second
        """
    )
    problem = one_problem(text)
    assert problem.line == line_no(text, "name: second")
    assert "duplicate key 'name'" in problem.message
    assert f"first on line {line_no(text, 'name: first')}" in problem.message


def test_duplicate_nested_key_is_refused() -> None:
    text = dedent(
        """
        artgraph: 1
        nodes:
          a:
            type: image.load
            params:
              size: 3
              path: a.png
              size: 4
        """
    )
    problem = one_problem(text)
    assert problem.line == line_no(text, "size: 4")
    assert "duplicate key 'size'" in problem.message
    assert f"first on line {line_no(text, 'size: 3')}" in problem.message


def test_duplicate_key_in_a_flow_mapping_is_refused() -> None:
    text = "artgraph: 1\nextra: {a: 1, b: 2, a: 3}\n"
    problem = one_problem(text)
    assert problem.line == 2
    assert "duplicate key 'a'" in problem.message


def test_merge_keys_may_be_overridden_explicitly() -> None:
    text = dedent(
        """
        base: &base {size: 64, mode: RGB}
        node:
          <<: *base
          size: 128
        """
    )
    data, problems = load_yaml(text, "g.yaml")
    assert problems == []
    assert data["node"] == {"size": 128, "mode": "RGB"}
    assert data["node"].line_of("size") == line_no(text, "size: 128")


def test_duplicate_explicit_keys_next_to_a_merge_are_still_refused() -> None:
    text = dedent(
        """
        base: &base {size: 64}
        node:
          <<: *base
          mode: RGB
          mode: L
        """
    )
    problem = one_problem(text)
    assert problem.line == line_no(text, "mode: L")
    assert "duplicate key 'mode'" in problem.message


# --- aliases -------------------------------------------------------------------------


def test_billion_laughs_fails_fast_with_a_message_about_aliases() -> None:
    problem = one_problem(BILLION_LAUGHS)
    assert "alias" in problem.message
    assert f"{limits.ALIAS_EXPANSION.value:,}" in problem.message
    assert limits.ALIAS_EXPANSION.env in problem.hint
    assert problem.line is not None and 1 <= problem.line <= len(BILLION_LAUGHS.splitlines())


def test_billion_laughs_is_a_graph_error_from_load_graph(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("artgraph: 1\n" + BILLION_LAUGHS.replace("a: &a", "x: &a", 1))
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(path, validate=False)
    (problem,) = info.value.problems
    assert "alias" in problem.message
    assert problem.file == str(path)


def test_modest_anchors_and_aliases_are_fine() -> None:
    text = dedent(
        """
        common: &common {size: 64, mode: RGB}
        a: *common
        b: [*common, *common]
        """
    )
    data, problems = load_yaml(text, "g.yaml")
    assert problems == []
    assert data["a"] == {"size": 64, "mode": "RGB"}
    assert data["b"] == [data["a"], data["a"]]


def test_recursive_alias_fails_fast() -> None:
    # Run in a child process: today this never returns (and grows its stack list without bound).
    code = dedent(
        """
        from artgraph.yamlsource import load_yaml
        data, problems = load_yaml("a: &x [1, *x]\\n", "g.yaml")
        assert data is None and len(problems) == 1, (data, problems)
        print(problems[0].line, problems[0].message)
        """
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        pytest.fail("load_yaml did not return within 3 s for a recursive alias")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 ")
    assert "alias" in done.stdout or "recursive" in done.stdout


# --- --set values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("50", 50),
        ("1.5e+3", 1500.0),
        ("true", True),
        ("[a, b]", ["a", "b"]),
        ("{x: 1}", {"x": 1}),
        ("hello world", "hello world"),
        ("", ""),
        ("{unclosed", "{unclosed"),
    ],
)
def test_parse_scalar_reads_values_like_yaml(text: str, value: object) -> None:
    assert parse_scalar(text) == value


def test_parse_scalar_never_builds_python_objects(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    text = f'!!python/object/apply:os.mkdir ["{target}"]'
    assert parse_scalar(text) == text
    assert not target.exists()


def test_exponent_floats_without_a_dot_or_sign_are_numbers() -> None:
    data, problems = load_yaml("a: 1.0e6\nb: 1e-3\nc: 2E5\n", "g.yaml")
    assert problems == []
    assert data == {"a": 1.0e6, "b": 1e-3, "c": 2e5}
    assert parse_scalar("1e6") == 1e6


# --- limits: nesting, aliases, size ----------------------------------------------------


def nested_blocks(levels: int) -> str:
    """``levels`` mappings nested in block style; the mapping at level k starts on line k."""
    lines = [f"{'  ' * k}k{k}:" for k in range(levels - 1)]
    return "\n".join(lines) + f"\n{'  ' * (levels - 1)}last: 1\n"


@pytest.mark.parametrize("levels", [65, 300, 5000, 100_000])
def test_deep_flow_nesting_is_a_problem_at_its_line(levels: int) -> None:
    text = "artgraph: 1\nnodes: {}\nextra: " + "[" * levels + "]" * levels + "\n"
    problem = one_problem(text)
    assert problem.line == 3
    assert f"more than {limits.YAML_DEPTH.value} levels" in problem.message
    assert limits.YAML_DEPTH.how_to_raise() in problem.hint


def test_deep_block_mappings_are_a_problem_at_the_first_level_too_many() -> None:
    problem = one_problem(nested_blocks(300))
    assert problem.line == limits.YAML_DEPTH.value + 1
    assert limits.YAML_DEPTH.env in problem.hint


def test_nesting_up_to_the_limit_loads() -> None:
    depth = limits.YAML_DEPTH.value
    data, problems = load_yaml("[" * depth + "]" * depth, "g.yaml")
    assert problems == []
    for _ in range(depth - 1):
        (data,) = data
    assert data == []
    data, problems = load_yaml(nested_blocks(depth), "g.yaml")
    assert problems == []


def test_the_nesting_limit_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTGRAPH_MAX_YAML_DEPTH", "3")
    assert load_yaml("a: [[1]]\n", "g.yaml") == ({"a": [[1]]}, [])
    problem = one_problem("a: [[[1]]]\n")
    assert "more than 3 levels" in problem.message


def test_nesting_made_by_aliases_is_bounded_too() -> None:
    # Each anchor holds the one before it: two levels of events, 101 levels of data.
    text = "x0: &x0 [1]\n" + "".join(f"x{k}: &x{k} [*x{k - 1}]\n" for k in range(1, 100))
    problem = one_problem(text)
    limit = limits.YAML_DEPTH.value
    assert problem.line == line_no(text, f"x{limit}: ")
    assert f"more than {limit} levels" in problem.message


def test_a_recursion_error_is_still_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the limit raised far beyond what the recursive composer can take.
    monkeypatch.setenv("ARTGRAPH_MAX_YAML_DEPTH", "100000")
    problem = one_problem("a: " + "[" * 900 + "]" * 900 + "\n")
    assert "nested too deeply" in problem.message
    assert "ARTGRAPH_MAX_YAML_DEPTH" in problem.hint


def test_deep_nesting_is_a_graph_error_from_load_graph(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("artgraph: 1\nnodes:\n  a: " + "{b: " * 500 + "1" + "}" * 500 + "\n")
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(path, validate=False)
    (problem,) = info.value.problems
    assert str(problem).startswith(f"{path}:3: ")


def big_graph(nodes: int) -> str:
    lines = ["artgraph: 1", "name: big", "nodes:", "  n0:", "    type: t.source", "    params: {value: 1}"]
    for k in range(1, nodes):
        lines += [f"  n{k}:", "    type: t.add", f"    inputs: {{a: n{k - 1}}}", "    params: {b: 1}"]
    return "\n".join(lines) + "\n"


def test_a_large_graph_without_aliases_is_not_refused(tmp_path: Path, registry: artgraph.Registry) -> None:
    # ~200,000 values: more than the old bound on expanded size, though no alias adds any.
    text = big_graph(18_000)
    path = tmp_path / "big.yaml"
    path.write_text(text)
    graph = artgraph.load_graph(path, registry=registry, validate=False)
    plan = graph.plan(out_dir=tmp_path / "out")
    assert len(plan.nodes) == 18_000
    assert plan.nodes["n17999"].line == line_no(text, "n17999:")


def test_the_alias_bound_counts_only_what_aliases_add(monkeypatch: pytest.MonkeyPatch) -> None:
    # 'a' is 4 values (a list of 3); each of the 3 aliases adds those 4 again: 12 added.
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    monkeypatch.setenv("ARTGRAPH_MAX_ALIAS_VALUES", "12")
    assert load_yaml(text, "g.yaml") == ({"a": [1, 2, 3], "b": [[1, 2, 3]] * 3}, [])
    monkeypatch.setenv("ARTGRAPH_MAX_ALIAS_VALUES", "11")
    problem = one_problem(text)
    assert problem.line == 2
    assert "more than 11 values" in problem.message
    assert "ARTGRAPH_MAX_ALIAS_VALUES" in problem.hint


def test_a_recursive_alias_in_a_mapping_is_refused() -> None:
    problem = one_problem("a: &x {b: *x}\n")
    assert "recursive alias" in problem.message


def test_text_over_the_size_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTGRAPH_MAX_GRAPH_BYTES", "1000")
    fits = "a: '" + "x" * 994 + "'\n"  # 1000 bytes
    assert load_yaml(fits, "g.yaml")[1] == []
    # One character more, or one two-byte character instead of an 'x': over.
    for text in (fits + " ", fits.replace("x", "é", 1)):
        problem = one_problem(text)
        assert problem.line is None
        assert "1,001 bytes" in problem.message and "1,000 bytes" in problem.message
        assert "ARTGRAPH_MAX_GRAPH_BYTES" in problem.hint
    # Broken YAML over the limit is refused for its size, without being parsed.
    assert "too large" in one_problem("[" * 2000).message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: 1\nb: 2001-02-30\n", 2, "'2001-02-30' is not a valid timestamp"),
        ("a: !!int abc\n", 1, "'abc' is not a valid int"),
        ("a: !!float ''\n", 1, "'' is not a valid float"),
        ("a: !!timestamp x\n", 1, "'x' is not a valid timestamp"),
        ("a: !!bool maybe\n", 1, "'maybe' is not a valid bool"),
        ("a: 0x_\n", 1, "'0x_' is not a valid int"),
        ("a: 1\nb: c\x00\n", 2, "#x0000 is not allowed"),
        ("a: 1\nb: '\ud800'\n", 2, "not valid Unicode"),
    ],
)
def test_values_yaml_cannot_build_are_problems_at_their_line(text: str, line: int, words: str) -> None:
    problem = one_problem(text)
    assert problem.line == line
    assert words in problem.message


def test_a_graph_file_over_the_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = artgraph.default_registry()  # entry points are read with Path.read_text too
    big = tmp_path / "big.yaml"
    big.write_text("artgraph: 1\n" + "# padding\n" * 20)
    monkeypatch.setenv("ARTGRAPH_MAX_GRAPH_BYTES", "100")

    def never(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_text", never)
    with pytest.raises(GraphError) as info:
        artgraph.load_graph(big, registry=registry)
    assert "too large to be a graph (212 bytes; the limit is 100 bytes)" in str(info.value)
