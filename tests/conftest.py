"""Shared test nodes, fixtures and helpers.

One pack of test nodes, registered without entry points (``registry``):

* ``t.*``: small Int/Tensor nodes for the executor and the cache; every call is
  recorded in ``CALLS`` (the ``calls`` fixture).
* ``vt.*``: nodes the built-ins lack, for validation: two outputs, Float, Int and
  Model outputs, a required param, a list of Floats.

Helpers for tests (import them: ``from tests.conftest import dedent, line_no``):
``make_ctx`` builds the context for calling a node function directly;
``dedent``/``line_no`` for graph text; ``graphs`` (a fixture) writes graphs into
``tmp_path`` and loads them with ``registry``; ``only_problem``, ``the_problem``,
``check``, ``assert_shape`` and ``Has`` check the problems a graph has.
"""

from __future__ import annotations

import textwrap
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import (
    REQUIRED,
    Context,
    Float,
    GraphError,
    Image,
    Input,
    Int,
    List,
    Model,
    Param,
    Problem,
    Tensor,
    node,
)
from artgraph.plugins import build_registry
from artgraph.progress import ProgressFactory

#: Every call of a test node appends its node type here (cleared per test).
CALLS: list[str] = []
#: Weak references to tensors made by t.tensor, to check they are released.
MADE: list[weakref.ref[torch.Tensor]] = []
#: What t.probe saw: whether the earlier tensors were still alive when it ran.
SEEN_ALIVE: list[bool] = []


# --- t.*: the executor's nodes ------------------------------------------------------


@node("t.source", params={"value": Param(Int, 1)}, outputs={"out": Int})
def source(value: int) -> int:
    CALLS.append("t.source")
    return value


@node("t.add", inputs={"a": Input(Int)}, params={"b": Param(Int, 1, min=-1000, max=1000)}, outputs={"out": Int})
def add(a: int, b: int) -> int:
    CALLS.append("t.add")
    return a + b


@node("t.sum", inputs={"items": Input(List(Int))}, outputs={"out": Int})
def total(items: list[int]) -> int:
    CALLS.append("t.sum")
    return sum(items)


@node("t.boom", inputs={"a": Input(Int)}, outputs={"out": Int})
def boom(a: int) -> int:
    CALLS.append("t.boom")
    raise ValueError("kaboom")


@node("t.random", deterministic=False, outputs={"out": Int})
def random_int(ctx: artgraph.Context) -> int:
    CALLS.append("t.random")
    return int(torch.randint(0, 1_000_000, (1,), generator=torch.Generator().manual_seed(torch.seed())))


@node("t.tensor", inputs={"a": Input(Int, optional=True)}, params={"n": Param(Int, 4)}, outputs={"out": Tensor})
def make_tensor(a: int | None, n: int) -> torch.Tensor:
    CALLS.append("t.tensor")
    t = torch.full((n,), float(a or 0))
    MADE.append(weakref.ref(t))
    return t


@node("t.reduce", inputs={"x": Input(Tensor)}, outputs={"out": Int})
def reduce_tensor(x: torch.Tensor) -> int:
    CALLS.append("t.reduce")
    return int(x.sum())


@node("t.probe", inputs={"a": Input(Int)}, outputs={"out": Int})
def probe(a: int) -> int:
    CALLS.append("t.probe")
    SEEN_ALIVE.extend(ref() is not None for ref in MADE)
    return a


@node("t.liar", outputs={"out": Tensor})
def liar() -> Any:
    CALLS.append("t.liar")
    return "not a tensor"


@node("t.sink", output_node=True, inputs={"a": Input(Int)}, outputs={"out": Int})
def sink(a: int) -> int:
    CALLS.append("t.sink")
    return a


# --- vt.*: the validation tests' nodes ------------------------------------------------


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
def total_floats(values: list[float]) -> float:
    CALLS.append("vt.total")
    return sum(values)


class _Pack:
    """The test pack: every t.* and vt.* node."""

    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [
            *(source, add, total, boom, random_int, make_tensor, reduce_tensor, probe, liar, sink),
            *(int_source, float_source, model_source, split, scale, count, apply_model, total_floats),
        ]


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture
def registry() -> artgraph.Registry:
    """Built-in nodes (via entry points) plus the test pack."""
    CALLS.clear()
    MADE.clear()
    SEEN_ALIVE.clear()
    return build_registry(plugins=[("testpack", "artgraph-tests", _Pack())])


@pytest.fixture
def calls() -> list[str]:
    return CALLS


@pytest.fixture
def seen_alive() -> list[bool]:
    return SEEN_ALIVE


@pytest.fixture
def tiny_png(tmp_path: Path) -> Path:
    """A 12x8 RGB gradient PNG."""
    path = tmp_path / "tiny.png"
    img = PILImage.new("RGB", (12, 8))
    img.putdata([(x * 20, y * 30, 100) for y in range(8) for x in range(12)])
    img.save(path)
    return path


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A 4x3 RGB PNG, ``in.png``, beside the graph files."""
    path = tmp_path / "in.png"
    PILImage.new("RGB", (4, 3), (200, 10, 10)).save(path)
    return path


@pytest.fixture
def graphs(tmp_path: Path, registry: artgraph.Registry) -> Graphs:
    """Graph files in ``tmp_path``, loaded with ``registry``."""
    return Graphs(tmp_path, registry)


# --- jobs for the worker and the server ---------------------------------------------

#: A quick job: reads the data folder's uploads/photo.png, writes out/sheet.png.
JOB_SHEET = """\
artgraph: 1
name: sheet
nodes:
  photo: {type: image.load, params: {path: uploads/photo.png}}
  small: {type: image.resize, inputs: {image: photo.image}, params: {size: 6}}
  save: {type: image.save, inputs: {image: small.image}, params: {path: sheet.png}}
"""

#: A job that runs until cancelled (or for ``search.generations`` generations), reporting progress.
JOB_SEARCH = """\
artgraph: 1
name: long-search
nodes:
  photo: {type: image.load, params: {path: uploads/photo.png}}
  shapes: {type: genome.triangles, params: {count: 4}}
  likeness: {type: objective.pixel, inputs: {target: photo.image}}
  search:
    type: evolve.genetic
    inputs: {genome: shapes.genome, objective: likeness.objective}
    params: {population: 6, generations: 1000000, size: 12}
  save: {type: image.save, inputs: {image: search.image}, params: {path: best.png}}
"""


@pytest.fixture
def data(tmp_path: Path, tiny_png: Path) -> Path:
    """A server's data folder holding ``uploads/photo.png``."""
    folder = tmp_path / "data"
    (folder / "uploads").mkdir(parents=True)
    (folder / "uploads" / "photo.png").write_bytes(tiny_png.read_bytes())
    return folder


# --- the searches' small cases -------------------------------------------------------


def paint_target(size: int = 16) -> torch.Tensor:
    """A picture a few shapes can approximate: a dark disc on a light ramp, ``[1, 3, size, size]``."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    disc = ((x - 0.4) ** 2 + (y - 0.5) ** 2 < 0.08).float()
    return torch.stack([0.9 - 0.5 * disc, 0.3 + 0.6 * x * (1 - disc), 0.8 * y]).unsqueeze(0).clamp(0, 1)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small_genomes(count: int = 6) -> list[Any]:
    """One genome of each kind, ``count`` shapes each."""
    from artgraph.nodes.search import genomes

    return [
        genomes.triangles(count, 0.8, "white", "auto"),
        genomes.circles(count, 0.8, "black", "auto", 0.4),
        genomes.strokes(count, 0.9, "#808080", "auto", 0.6, 0.2),
    ]


# --- calling nodes directly -----------------------------------------------------------


def make_ctx(
    node_id: str = "n",
    node_type: str = "test",
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: ProgressFactory | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Context:
    """The context a graph run would give a node, for calling its function by hand:
    ``image.load(make_ctx(), path=..., size=None, mode="RGB")``. The node id only
    prefixes log lines (``[n] ...``); ``seed`` seeds ``ctx.rng``."""
    return Context(node_id, node_type, seed=seed, device=device, progress=progress, provenance=provenance)


# --- graph text -----------------------------------------------------------------------


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_no(text: str, needle: str) -> int:
    """The 1-based line of the only line of ``text`` containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


#: A valid two-node graph (needs ``in.png`` beside it): the base of the --set tests.
VALID_GRAPH = """
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


# --- problems ---------------------------------------------------------------------------


class Has:
    """An expected text that contains each of ``parts`` (where a plain string must be equal)."""

    def __init__(self, *parts: str) -> None:
        assert parts, "Has() needs a part to look for"
        self.parts = parts

    def __repr__(self) -> str:
        return f"Has{self.parts!r}"


def expect_text(actual: str | None, expected: str | Has | None) -> None:
    """``actual`` equals ``expected``, or contains every part of a ``Has``; ``None`` expects nothing more."""
    if isinstance(expected, Has):
        for part in expected.parts:
            assert part in (actual or ""), f"{part!r} not in {actual!r}"
    elif expected is not None:
        assert actual == expected


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
    """``problem`` is at ``path:line`` on node ``node_id``, and its text starts with that."""
    assert (problem.file, problem.line, problem.node) == (str(path), line, node_id), str(problem)
    if node_id is not None:
        assert str(problem).startswith(f"{path}:{line}: node '{node_id}': " if line else f"{path}: node '{node_id}': ")


class Graphs:
    """Writes graph files into a folder and loads them with a registry."""

    def __init__(self, folder: Path, registry: artgraph.Registry) -> None:
        self.folder = folder
        self.registry = registry

    def write(self, text: str, name: str = "graph.yaml") -> tuple[Path, str]:
        """Write ``text`` (dedented) to ``name``: its path and the text as written."""
        text = dedent(text)
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path, text

    def load(self, path: Path, **kwargs: Any) -> artgraph.Graph:
        return artgraph.load_graph(path, registry=self.registry, **kwargs)

    def plan(self, path: Path, overrides: list[str] | None = None) -> Any:
        """Load without validating, then plan (which validates) with ``overrides`` into ``out/``."""
        return self.load(path, validate=False).plan(overrides, out_dir=path.parent / "out")

    def problems(self, path: Path, overrides: list[str] | None = None, *, shape: bool = True) -> list[Problem]:
        """Every problem of the graph at ``path``; each checked for shape unless told not to."""
        with pytest.raises(GraphError) as info:
            if overrides is None:
                self.load(path)
            else:
                self.plan(path, overrides)
        problems = info.value.problems
        assert problems, "a GraphError always lists its problems"
        if shape:
            for problem in problems:
                assert_shape(problem)
        # the exception text lists every problem
        for problem in problems:
            assert str(problem) in str(info.value)
        return problems

    def expect(
        self,
        graph: str,
        line: int | str,
        node_id: str | None,
        message: str | Has | None,
        hint: str | Has | None = None,
        *,
        among: str | None = None,
    ) -> Problem:
        """Write ``graph`` and check its only problem (or, given ``among``, the only one whose
        message contains that): at ``line`` (a number, or text found on exactly one line) on
        ``node_id``, with ``message`` and ``hint`` (see :func:`expect_text`)."""
        path, text = self.write(graph)
        problems = self.problems(path)
        problem = only_problem(problems) if among is None else the_problem(problems, among)
        check(problem, path, line if isinstance(line, int) else line_no(text, line), node_id)
        expect_text(problem.message, message)
        expect_text(problem.hint, hint)
        return problem
