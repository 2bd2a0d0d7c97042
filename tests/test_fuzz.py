"""Fuzzing the way in: every shipped graph, mutated, must load to a plan or a GraphError.

A user's typo and a stranger's hostile file travel the same road — YAML text,
spec, plan — and every step of it must answer with problems (file, line, fix),
never with some other exception. Hypothesis mutates the packaged example graphs
two ways: the parsed data (dropped keys, values of the wrong kind, odd references,
unicode ids, huge numbers, deep nesting) and the raw text (truncation, duplicated
lines, stray YAML punctuation).

Profiles: the default one (a few hundred examples in all, derandomized, quick)
runs with the suite; ``ARTGRAPH_FUZZ_PROFILE=nightly`` runs many more, randomly.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import artgraph
from artgraph import GraphError
from artgraph.api import packaged_graphs

_COMMON = {
    "deadline": None,
    "database": None,  # leave no .hypothesis folder in the working tree
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("artgraph-fuzz", max_examples=1, derandomize=True, **_COMMON)
settings.register_profile("nightly", max_examples=1, derandomize=False, print_blob=True, **_COMMON)
PROFILE = os.environ.get("ARTGRAPH_FUZZ_PROFILE", "artgraph-fuzz")
#: How many times more examples each test runs under a profile than its default count.
_SCALE = {"artgraph-fuzz": 1, "nightly": 50}


def fuzz(examples: int) -> Callable[[Any], Any]:
    """Settings for a test: ``examples`` in the default profile, scaled for the others."""
    if PROFILE not in _SCALE:
        raise ValueError(f"ARTGRAPH_FUZZ_PROFILE={PROFILE!r}: use one of {sorted(_SCALE)}")
    return settings(settings.get_profile(PROFILE), max_examples=examples * _SCALE[PROFILE])


GRAPHS: list[Path] = [path for _, path in sorted(packaged_graphs().items())]


def test_every_shipped_graph_is_fuzzed_and_loads_as_shipped(out_dir: Path) -> None:
    assert len(GRAPHS) >= 10, GRAPHS
    for path in GRAPHS:
        artgraph.load_graph(str(path), text=path.read_text(encoding="utf-8"), validate=False).plan(out_dir=out_dir)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-out")


def load_and_plan(path: Path, text: str, out: Path) -> None:
    """What every mutation must survive: a plan, or a GraphError that says where."""
    try:
        graph = artgraph.load_graph(str(path), text=text, validate=False)
        graph.plan(out_dir=out)
    except GraphError as exc:
        assert exc.problems, "a GraphError lists its problems"
        for problem in exc.problems:
            assert isinstance(problem.message, str) and problem.message
            assert problem.line is None or (isinstance(problem.line, int) and problem.line >= 1), problem
            str(problem)
            problem.to_dict()


# --- values of every wrong kind ------------------------------------------------------------


class Deep:
    """A placeholder for ``levels`` of nesting, written into the text after dumping
    (PyYAML's emitter would recurse that deep itself)."""

    def __init__(self, levels: int, kind: str) -> None:
        self.levels, self.kind = levels, kind
        self.marker = f"DEEP_{id(self)}_"

    def text(self) -> str:
        if self.kind == "list":
            return "[" * self.levels + "1" + "]" * self.levels
        return "{a: " * self.levels + "1" + "}" * self.levels


ODD_TEXT = [
    "",
    " ",
    "a.b.c",
    "a.",
    ".b",
    "a..b",
    "nowhere",
    "nowhere.image",
    "ノード",
    "é",
    "\u202e",
    "🎨",
    "x" * 300,
    "../../outside.png",
    "/absolute/file.png",
    "~",
    "-",
    "null",
    "1e308",
    "a\x00b",
    "\t",
    "assets",
    "assets/",
    ".",
    "List[Int]",
]
#: Nesting around the limit (64), where recursion gave out (~500) and libyaml's own bound (1000).
DEPTHS = [63, 64, 65, 300, 500, 999, 1000, 1001, 3000]
HUGE = [
    10**30,
    -(10**30),
    2**63,
    2**64 + 1,
    10**400,
    -(10**400),
    1e308,
    -1e308,
    5e-324,
    float("inf"),
    float("-inf"),
    float("nan"),
    0,
    -1,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HUGE),
    st.floats(),
    st.sampled_from(ODD_TEXT),
    st.text(max_size=12),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=6), st.integers()), scalars, max_size=3),
    st.builds(Deep, st.one_of(st.sampled_from(DEPTHS), st.integers(1, 1000)), st.sampled_from(["list", "map"])),
)
odd_keys = st.one_of(st.sampled_from(ODD_TEXT), st.text(min_size=1, max_size=12), st.integers(), st.none())


def slots(data: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a parsed document, without recursion."""
    found: list[tuple[Any, Any]] = []
    todo = [data]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                found.append((item, key))
                todo.append(value)
        elif isinstance(item, list):
            for index, value in enumerate(item):
                found.append((item, index))
                todo.append(value)
    return found


def dump(data: Any) -> str:
    deep: list[Deep] = []

    class Dumper(yaml.SafeDumper):
        pass

    def represent_deep(dumper: yaml.SafeDumper, value: Deep) -> yaml.Node:
        deep.append(value)
        return dumper.represent_str(value.marker)

    Dumper.add_representer(Deep, represent_deep)
    text = yaml.dump(data, Dumper=Dumper, allow_unicode=True, sort_keys=False)
    for value in deep:
        text = text.replace(value.marker, value.text())
    return text


@st.composite
def mutated_data(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(GRAPHS))
    data = copy.deepcopy(yaml.safe_load(path.read_text(encoding="utf-8")))
    if draw(st.sampled_from(range(12))) == 0:  # now and then, not a graph at all
        return path, dump(draw(values))
    for _ in range(draw(st.integers(1, 4))):
        places = slots(data)
        if not places:
            break
        op = draw(st.sampled_from(["drop", "replace", "replace", "replace", "rename", "add", "insert"]))
        container, key = draw(st.sampled_from(places))
        if op == "drop":
            del container[key]
        elif op == "replace":
            container[key] = draw(values)
        elif isinstance(container, list):  # "rename", "add" and "insert" all insert an item
            container.insert(key, draw(values))
        elif op == "rename":  # odd node ids, odd param names
            container[draw(odd_keys)] = container.pop(key)
        else:
            container[draw(odd_keys)] = draw(values)
    return path, dump(data)


# --- edits of the text itself -----------------------------------------------------------------

TOKENS = [
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*nope ",
    "!!python/name:os.system ",
    "!!int ",
    "!!float ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!custom ",
    "'",
    '"',
    "\t",
    "#",
    "|",
    ">",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "? ",
    "<<: *a\n",
    "\ufeff",
    "\x85",
    "\u2028",
    "\x00",
    "\x1b[31m",
    "1e308",
    "1" * 40,
    "2001-02-30",
    "0x_",
    "\n",
    "\n  ",
    "    ",
]


@st.composite
def edited_text(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(GRAPHS))
    text = path.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        lines = text.splitlines(keepends=True) or [""]
        op = draw(st.sampled_from(["truncate", "duplicate", "delete", "insert", "insert", "indent"]))
        # Counted from the end: Hypothesis favours small numbers, and a graph file
        # starts with comments while its nodes come last.
        at = len(lines) - 1 - draw(st.integers(0, len(lines) - 1))
        if op == "truncate":
            text = text[: len(text) - draw(st.integers(0, len(text)))]
        elif op == "duplicate":  # the same key twice, or the same node id twice
            lines.insert(at, lines[at])
            text = "".join(lines)
        elif op == "delete":
            del lines[at]
            text = "".join(lines)
        elif op == "insert":
            pos = len(text) - draw(st.integers(0, len(text)))
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            shift = draw(st.integers(-4, 4))
            line = lines[at]
            lines[at] = " " * shift + line if shift >= 0 else line[min(-shift, len(line) - len(line.lstrip(" "))) :]
            text = "".join(lines)
    return path, text


# --- the tests -------------------------------------------------------------------------------


@fuzz(150)
@given(case=mutated_data())
def test_mutated_graphs_plan_or_report_problems(case: tuple[Path, str], out_dir: Path) -> None:
    load_and_plan(*case, out_dir)


@fuzz(150)
@given(case=edited_text())
def test_edited_text_plans_or_reports_problems(case: tuple[Path, str], out_dir: Path) -> None:
    load_and_plan(*case, out_dir)


@fuzz(30)
@given(
    path=st.sampled_from(GRAPHS),
    levels=st.one_of(st.sampled_from(DEPTHS), st.integers(1, 1000)),
    kind=st.sampled_from(["list", "map", "block"]),
    where=st.sampled_from(["root", "nodes", "params", "inputs"]),
)
def test_deep_nesting_anywhere_is_a_problem_or_fine(path: Path, levels: int, kind: str, where: str, out_dir: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    node = next(iter(data["nodes"].values()))
    if kind == "block":
        levels = min(levels, 1000)  # each line indented more: 1000 levels is a megabyte
        deep = "".join(f"\n{'  ' * (k + 1)}k{k}:" for k in range(levels)) + " 1"
    else:
        deep = Deep(levels, kind).text()
    marker = "DEEP_MARKER"
    target = {"root": data, "nodes": data["nodes"], "params": node.setdefault("params", {}) or {}}.get(where)
    if target is None:
        node["inputs"] = {**(node.get("inputs") or {}), "extra": marker}
    else:
        target["extra"] = marker
    text = dump(data)
    text = text.replace(marker, deep) if kind != "block" else _block_replace(text, marker, levels)
    load_and_plan(path, text, out_dir)


def _block_replace(text: str, marker: str, levels: int) -> str:
    """Put ``levels`` nested block mappings where ``marker`` is, indented below its line."""
    out = []
    for line in text.splitlines():
        if marker not in line:
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        out.append(line.replace(marker, "").rstrip())
        out.extend(f"{' ' * (indent + 2 * (k + 1))}k{k}:" for k in range(levels))
        out[-1] += " 1"
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def graph_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where mutated graphs find the shipped assets at their usual relative path."""
    folder = tmp_path_factory.mktemp("fuzz-graphs")
    (folder / "assets").symlink_to(GRAPHS[0].parent / "assets", target_is_directory=True)
    return folder


@fuzz(15)
@given(cases=st.lists(st.one_of(mutated_data(), edited_text()), min_size=1, max_size=3))
def test_validate_command_exits_0_or_2_without_an_internal_error(
    cases: list[tuple[Path, str]], graph_folder: Path, out_dir: Path
) -> None:
    from artgraph import cli

    files = []
    for index, (path, text) in enumerate(cases):
        file = graph_folder / f"{index}-{path.name}"
        file.write_text(text, encoding="utf-8", errors="surrogatepass")
        files.append(str(file))
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["validate", *files])
    err = stderr.getvalue()
    assert code in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err, err
    # Every file is reported on: an ok line, or at least one problem naming it.
    for file in files:
        assert f"ok: {file} " in stdout.getvalue() or f"{file}" in err, (file, err)


# --- the server's way in: any JSON body, any file name ----------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_SHEET = "artgraph: 1\nnodes:\n  photo: {type: image.load, params: {path: uploads/photo.png}}\n"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from PIL import Image

    from artgraph.server import create_app
    from artgraph.service import Service

    data = tmp_path_factory.mktemp("fuzz-server")
    (data / "uploads").mkdir()
    Image.new("RGB", (4, 4)).save(data / "uploads" / "photo.png")
    service = Service(data, devices=("cpu",), max_queue=10_000)
    with TestClient(create_app(service), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client


@fuzz(examples=60)
@given(
    graph=st.one_of(_JSON, st.just(_SHEET), st.sampled_from(["style_transfer", "x", "", "a:b"])),
    overrides=st.one_of(_JSON, st.dictionaries(st.sampled_from(["photo.path", "photo.size", "x.y", "photo"]), _JSON)),
    job_id=st.one_of(st.none(), st.text(max_size=70)),
)
def test_any_job_request_gets_an_answer_never_a_crash(http: Any, graph: Any, overrides: Any, job_id: Any) -> None:
    body: dict[str, Any] = {"graph": graph, "overrides": overrides}
    if job_id is not None:
        body["id"] = job_id
    answer = http.post("/jobs", json=body)
    assert answer.status_code in (201, 400, 409, 422), (answer.status_code, answer.text[:300])
    assert "detail" in answer.json() or answer.status_code == 201


@fuzz(examples=60)
@given(name=st.text(max_size=40), job=st.text(min_size=1, max_size=20))
def test_any_file_name_is_a_file_of_the_job_or_404(http: Any, name: str, job: str) -> None:
    from urllib.parse import quote

    answer = http.get(f"/jobs/{quote(job, safe='')}/files/{quote(name, safe='/')}")
    assert answer.status_code in (404, 405), (answer.status_code, name)
