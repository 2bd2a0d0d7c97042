"""The node contract: declarations, their errors, outputs, class nodes, progress."""

from __future__ import annotations

import io

import pytest

import artgraph
from artgraph import Cache, Float, Image, Input, Int, List, Model, Param, PluginError, Str, Tensor, node
from artgraph.plugins import build_registry
from artgraph.progress import LineProgress, SilentProgress, make_progress_factory
from artgraph.types import can_connect


def test_a_decorated_function_stays_a_plain_function():
    @node("x.double", inputs={"a": Input(Int)}, outputs={"out": Int})
    def double(a: int) -> int:
        """Double a number."""
        return 2 * a

    assert double(a=4) == 8
    spec = artgraph.spec_of(double)
    assert (spec.type_name, spec.category, spec.description, spec.version) == ("x.double", "x", "Double a number.", 1)
    assert not spec.wants_ctx


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type_name": "NoDots"}, "lowercase dotted words"),
        ({"inputs": {"a": Input(Int)}, "params": {"a": Param(Int, 1)}}, "declared both as input and param"),
        ({"params": {"missing": Param(Int, 1)}}, "does not accept ['missing']"),
        ({"params": {"n": Param(Int, 0, min=1)}}, "default of param 'n': 0 is below the minimum 1"),
        ({"params": {"s": Param(Str, "a", min=1)}}, "has min/max but is not a number"),
        ({"params": {"p": Param(Str, "a", file="input")}}, "has file= but is not a Path"),
        ({"version": 0}, "version must be a positive int"),
    ],
)
def test_bad_declarations_fail_at_import_time(kwargs, message):
    type_name = kwargs.pop("type_name", "x.bad")

    def fn(a=None, n=None, s=None, p=None):
        return 1

    with pytest.raises(PluginError, match=message.replace("[", r"\[").replace("]", r"\]")):
        node(type_name, outputs={"out": Int}, **kwargs)(fn)


def test_outputs_may_be_a_value_a_tuple_or_a_dict():
    @node("x.two", outputs={"a": Int, "b": Int})
    def two():
        return 1, 2

    spec = artgraph.spec_of(two)
    assert spec.normalise_outputs((1, 2)) == {"a": 1, "b": 2}
    assert spec.normalise_outputs({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(TypeError, match="must return a dict with keys"):
        spec.normalise_outputs([1, 2])


def test_class_nodes_are_set_up_once_per_process():
    made = []

    @node("x.counter", params={"step": Param(Int, 1)}, outputs={"out": Int})
    class Counter:
        """Counts calls; setup (the constructor) runs once."""

        def __init__(self) -> None:
            made.append(self)
            self.count = 0

        def __call__(self, step: int) -> int:
            self.count += step
            return self.count

    class Pack:
        @artgraph.hookimpl
        def artgraph_register_nodes(self):
            return [Counter]

    registry = build_registry(plugins=[("p", "p-dist", Pack())])
    graph = artgraph.load_graph({"artgraph": 1, "nodes": {"c": {"type": "x.counter"}}}, registry=registry)
    assert graph.run(device="cpu", cache=False)["c.out"] == 1
    assert graph.run(device="cpu", cache=False, overrides={"c.step": 5})["c.out"] == 6
    assert len(made) == 1


def test_ctx_gives_device_seeded_rng_and_progress():
    seen = {}

    @node("x.ctx", params={"seed": Param(Int, 3)}, outputs={"out": Float})
    def with_ctx(ctx: artgraph.Context, seed: int) -> float:
        seen["device"] = str(ctx.device)
        with ctx.progress(4, "work") as bar:
            for _ in range(4):
                bar.update(1, loss=0.5)
        import torch

        return float(torch.rand(1, generator=ctx.rng))

    class Pack:
        @artgraph.hookimpl
        def artgraph_register_nodes(self):
            return [with_ctx]

    registry = build_registry(plugins=[("p", "p-dist", Pack())])
    graph = artgraph.load_graph({"artgraph": 1, "nodes": {"n": {"type": "x.ctx"}}}, registry=registry)
    a = graph.run(device="cpu", cache=False)["n.out"]
    b = graph.run(device="cpu", cache=Cache())["n.out"]
    assert a == b
    assert seen["device"] == "cpu"


def test_line_progress_prints_about_ten_lines_and_silent_prints_none():
    stream = io.StringIO()
    bar = LineProgress(100, "steps", stream)
    for _ in range(100):
        bar.update(1, loss=1.0)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("  steps: 100/100 loss=1")
    quiet = make_progress_factory("quiet", io.StringIO())(10, "x")
    assert isinstance(quiet, SilentProgress)
    assert isinstance(make_progress_factory("auto", io.StringIO())(10, "x"), LineProgress)  # not a TTY


def test_connection_rules_live_in_one_place():
    assert can_connect(Int, Float)
    assert not can_connect(Float, Int)
    assert can_connect(Image, Tensor)
    assert not can_connect(Tensor, Image)
    assert not can_connect(Image, Model)
    assert can_connect(Image, List(Image))
    assert can_connect(List(Image), List(Tensor))
    assert can_connect(Str, artgraph.Path) and can_connect(artgraph.Path, Str)
    assert can_connect(Model, artgraph.AnyType)


def test_plugin_types_connect_through_declared_parents():
    palette = artgraph.PortType("Palette", parents=("Tensor",))
    assert can_connect(palette, Tensor)
    assert not can_connect(palette, Image)


# -- declarative constraints, seeds and defaults declared once --------------------------------


def _colour(value: object) -> str | None:
    return None if value in ("red", "white") else f"'{value}' is not a colour I know (red, white)"


@node(
    "x.paint",
    params={
        "path": Param(artgraph.Path, "out.gif", suffixes=(".gif",)),
        "ink": Param(Str, "red", rule=_colour),
        "paper": Param(Str, "white", rule=_colour),
    },
    outputs={"out": Str},
)
def paint(path: str, ink: str, paper: str) -> str:
    return f"{ink} on {paper} to {path}"


@node("x.noise", seeded=True, outputs={"out": Tensor})
def noise(ctx: artgraph.Context) -> object:
    import torch

    return torch.rand(3, generator=ctx.rng)


@node("x.count", seeded=True, params={"n": Param(Int, 2)}, outputs={"out": Int})
def count(n: int, seed: int) -> int:
    return n + seed


@node("x.name", params={"text": Param(Str)}, outputs={"out": Str})
def name(text: str) -> str:
    return text


class _Paints:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [paint, noise, count, name]


@pytest.fixture
def paints() -> artgraph.Registry:
    return build_registry(plugins=[("paints", "paint-tests", _Paints())])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "movie.mp4"}, "param 'path': 'movie.mp4' should end in .gif"),
        ({"ink": "blue"}, "param 'ink': 'blue' is not a colour I know"),
        ({"paper": "mauve"}, "param 'paper': 'mauve' is not a colour I know"),
    ],
)
def test_suffixes_and_rules_are_checked_on_literals(paints, params, message):
    graph = artgraph.load_graph(
        {"artgraph": 1, "nodes": {"p": {"type": "x.paint", "params": params}}}, registry=paints, validate=False
    )
    with pytest.raises(artgraph.GraphError) as info:
        graph.plan()
    assert message in str(info.value)


def test_suffixes_and_rules_are_checked_on_wired_values(paints, tmp_path):
    spec = {
        "artgraph": 1,
        "nodes": {
            "n": {"type": "x.name", "params": {"text": "blue"}},
            "p": {"type": "x.paint", "inputs": {"ink": "n"}},
        },
    }
    result = artgraph.load_graph(spec, registry=paints).run(cache=False, out_dir=tmp_path, raise_on_failure=False)
    assert result.nodes["p"].error == "x.paint: wired param 'ink': 'blue' is not a colour I know (red, white)"
    assert artgraph.spec_of(paint).describe()["params"]["path"]["suffixes"] == [".gif"] or (
        artgraph.spec_of(paint).describe()["params"]["path"]["suffixes"] == (".gif",)
    )


def test_seeded_declares_the_seed_and_seeds_the_context(paints):
    spec = artgraph.spec_of(noise)
    assert spec.seeded and spec.params["seed"].default == 0 and spec.params["seed"].min == 0
    graph = artgraph.load_graph({"artgraph": 1, "nodes": {"r": {"type": "x.noise"}}}, registry=paints)
    first = graph.run(cache=False)["r.out"]
    again = graph.run(cache=False)["r.out"]
    other = graph.run(cache=False, overrides={"r.seed": 7})["r.out"]
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()
    counted = artgraph.load_graph(
        {"artgraph": 1, "nodes": {"c": {"type": "x.count", "params": {"seed": 5}}}}, registry=paints
    )
    assert counted.run(cache=False)["c.out"] == 7  # a seeded function may still take the number


def test_a_seed_param_is_only_a_seed_when_declared_so(paints):
    @node("x.plain", params={"seed": Param(Int, 0)}, outputs={"out": Int})
    def plain(ctx: artgraph.Context, seed: int) -> int:
        return ctx.seed

    assert not artgraph.spec_of(plain).seeded


def test_a_default_is_declared_once():
    with pytest.raises(PluginError, match=r"param 'k' defaults to 3 in its Param but to 4 in the function"):

        @node("x.drift", params={"k": Param(Int, 3)}, outputs={"out": Int})
        def drift(k: int = 4) -> int:
            return k

    @node("x.same", params={"k": Param(List(Float), [0.0, 0.9])}, outputs={"out": Int})
    def same(k: tuple[float, ...] = (0.0, 0.9)) -> int:  # a tuple spells a list default
        return len(k)

    with pytest.raises(PluginError, match="suffixes are endings of a Path or Str"):
        node("x.badsuffix", params={"n": Param(Int, 1, suffixes=(".png",))}, outputs={"out": Int})(lambda n: n)
