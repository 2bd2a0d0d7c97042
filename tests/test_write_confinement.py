"""Writes stay where they belong: under --out (real paths), never onto the graph's own inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artgraph
from artgraph import Cache, GraphError, Param, Str, atomic_path, load_graph, node
from artgraph import Path as PathT
from artgraph.plugins import build_registry
from tests.conftest import _Pack


@node("h.text", params={"value": Param(Str)}, outputs={"out": PathT})
def text(value: str) -> str:
    """A path made by a node: validation cannot see where it points."""
    return value


@node(
    "h.writer",
    params={"path": Param(PathT, "written/default.txt", file="output"), "body": Param(Str, "x")},
    outputs={"out": PathT},
)
def writer(path: str, body: str) -> str:
    """A cacheable node with a side file (like a search's checkpoint)."""
    WRITES.append(path)
    with atomic_path(path) as tmp:
        tmp.write_text(body)
    return path


@node("h.sneaky", params={"target": Param(Str)}, outputs={"out": Str})
def sneaky(target: str) -> str:
    """Writes wherever it is told, with no file param: only the write guard stops it."""
    with atomic_path(target) as tmp:
        tmp.write_text("owned")
    return target


WRITES: list[str] = []


class _Hostile:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [text, writer, sneaky]


@pytest.fixture
def reg() -> artgraph.Registry:
    WRITES.clear()
    return build_registry(plugins=[("testpack", "artgraph-tests", _Pack()), ("hostile", "hostile-tests", _Hostile())])


def _save_graph(path: object, wired: bool = False) -> dict[str, object]:
    nodes: dict[str, object] = {
        "img": {"type": "image.load", "params": {"path": "tiny.png"}},
    }
    if wired:
        nodes["where"] = {"type": "h.text", "params": {"value": path}}
        nodes["save"] = {"type": "image.save", "inputs": {"image": "img.image", "path": "where.out"}}
    else:
        nodes["save"] = {"type": "image.save", "inputs": {"image": "img.image"}, "params": {"path": path}}
    return {"artgraph": 1, "nodes": nodes}


def _problems(exc: pytest.ExceptionInfo[GraphError]) -> str:
    return "\n".join(str(p) for p in exc.value.problems)


def test_a_symlink_inside_out_cannot_carry_a_write_outside(reg, tiny_png, tmp_path):
    out, outside = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    graph = load_graph(_save_graph("link/stolen.png"), registry=reg, base_dir=tiny_png.parent, validate=False)
    with pytest.raises(GraphError) as exc:
        graph.plan(out_dir=out)
    assert "symbolic link" in _problems(exc)
    assert list(outside.iterdir()) == []


def test_a_wired_path_obeys_the_same_rules(reg, tiny_png, tmp_path):
    out, outside = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside, target_is_directory=True)
    for bad, why in (("link/stolen.png", "symbolic link"), ("../stolen.png", "escapes"), ("/tmp/x.png", "escapes")):
        graph = load_graph(_save_graph(bad, wired=True), registry=reg, base_dir=tiny_png.parent)
        result = graph.run(device="cpu", cache=False, out_dir=out, raise_on_failure=False)
        assert result.nodes["save"].status == "failed"
        assert why in (result.nodes["save"].error or ""), result.nodes["save"].error
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "stolen.png").exists()
    good = load_graph(_save_graph("sub/fine.png", wired=True), registry=reg, base_dir=tiny_png.parent)
    assert good.run(device="cpu", cache=False, out_dir=out).ok
    assert (out / "sub" / "fine.png").is_file()


def test_a_node_writing_anywhere_is_stopped_at_write_time(reg, tmp_path):
    target = tmp_path / "outside.txt"
    graph = load_graph(
        {"artgraph": 1, "nodes": {"s": {"type": "h.sneaky", "params": {"target": str(target)}}}}, registry=reg
    )
    result = graph.run(device="cpu", cache=False, out_dir=tmp_path / "out", raise_on_failure=False)
    assert result.nodes["s"].status == "failed"
    assert "outside the output folder" in (result.nodes["s"].error or "")
    assert not target.exists()
    # Outside a run nothing is confined: the helper is an ordinary atomic writer.
    with atomic_path(target) as tmp:
        tmp.write_text("fine")
    assert target.read_text() == "fine"


def test_default_output_paths_land_under_out(reg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = load_graph({"artgraph": 1, "nodes": {"w": {"type": "h.writer"}}}, registry=reg)
    graph.run(device="cpu", cache=False, out_dir=tmp_path / "results")
    assert (tmp_path / "results" / "written" / "default.txt").read_text() == "x"
    assert not (tmp_path / "written").exists()


def test_the_builtin_checkpoint_defaults_land_under_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, param in (("evolve.genetic", "checkpoint"), ("evolve.anneal", "checkpoint"), ("gan.train", "checkpoint")):
        spec = artgraph.default_registry().get(name)
        assert spec is not None and spec.params[param].file == "output"
    graph = load_graph("evolve_triangles", validate=False)
    plan = graph.plan(out_dir=tmp_path / "o")
    assert plan.nodes["search"].params["checkpoint"] == str(tmp_path / "o" / "checkpoints" / "evolve.safetensors")


def test_changing_out_does_not_invalidate_the_cache(reg, tmp_path, calls):
    graph = load_graph(
        {"artgraph": 1, "nodes": {"w": {"type": "h.writer", "params": {"path": "state.txt"}}}}, registry=reg
    )
    cache = Cache(disk=tmp_path / "cache")
    first = graph.run(device="cpu", cache=cache, out_dir=tmp_path / "a", outputs=["w"])
    assert first.nodes["w"].status == "executed"
    second = graph.run(device="cpu", cache=Cache(disk=tmp_path / "cache"), out_dir=tmp_path / "b", outputs=["w"])
    assert second.nodes["w"].status == "cached"


def test_a_run_never_overwrites_a_file_the_graph_reads(reg, tiny_png):
    graph = load_graph(_save_graph("tiny.png"), registry=reg, base_dir=tiny_png.parent, validate=False)
    before = tiny_png.read_bytes()
    with pytest.raises(GraphError) as exc:
        graph.plan(out_dir=tiny_png.parent)  # --out set to the graph's own folder
    assert "is read by node 'img'" in _problems(exc)
    # Wired, the write guard catches it at run time.
    wired = load_graph(_save_graph("tiny.png", wired=True), registry=reg, base_dir=tiny_png.parent)
    result = wired.run(device="cpu", cache=False, out_dir=tiny_png.parent, raise_on_failure=False)
    assert "this graph reads that file" in (result.nodes["save"].error or "")
    assert tiny_png.read_bytes() == before


def test_two_nodes_writing_one_file_is_a_problem(reg, tiny_png, tmp_path):
    spec = _save_graph("same.png")
    spec["nodes"]["again"] = {"type": "image.save", "inputs": {"image": "img.image"}, "params": {"path": "./same.png"}}  # type: ignore[index]
    graph = load_graph(spec, registry=reg, base_dir=tiny_png.parent, validate=False)
    with pytest.raises(GraphError) as exc:
        graph.plan(out_dir=tmp_path / "out")
    assert "writes the same file" in _problems(exc)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (".", "names a folder"),
        ("sub/", "names a folder"),
        ("a\x00b.png", "NUL byte"),
        ("x" * 300 + ".png", "at most 255 bytes"),
        ("~/x.png", "escapes"),
    ],
)
def test_output_paths_that_name_no_file_are_refused_before_anything_is_made(reg, tiny_png, tmp_path, path, message):
    out = tmp_path / "out"
    graph = load_graph(_save_graph(path), registry=reg, base_dir=tiny_png.parent, validate=False)
    with pytest.raises(GraphError) as exc:
        graph.plan(out_dir=out)
    assert message in _problems(exc)
    assert sorted(os.listdir(tmp_path)) == ["tiny.png"]  # no temporary file beside --out


@pytest.mark.parametrize(("path", "message"), [("a\x00b.png", "NUL byte"), ("y" * 300 + ".png", "at most 255 bytes")])
def test_input_paths_no_file_system_can_name_are_problems(reg, tiny_png, path, message):
    spec = {"artgraph": 1, "nodes": {"img": {"type": "image.load", "params": {"path": path}}}}
    graph = load_graph(spec, registry=reg, base_dir=tiny_png.parent, validate=False)
    with pytest.raises(GraphError) as exc:
        graph.plan()
    assert message in _problems(exc)


def test_confined_graphs_read_only_inside_their_folder(reg, tiny_png, tmp_path):
    elsewhere = tmp_path / "private"
    elsewhere.mkdir()
    secret = elsewhere / "secret.png"
    secret.write_bytes(tiny_png.read_bytes())
    base = tmp_path / "shared"
    base.mkdir()
    (base / "inside.png").write_bytes(tiny_png.read_bytes())
    (base / "link.png").symlink_to(secret)
    for path in (str(secret), "../private/secret.png", "link.png", "~/secret.png"):
        spec = {"artgraph": 1, "nodes": {"img": {"type": "image.load", "params": {"path": path}}}}
        graph = load_graph(spec, registry=reg, base_dir=base, validate=False, confine_inputs=True)
        with pytest.raises(GraphError) as exc:
            graph.plan()
        assert "outside the folder this graph may read" in _problems(exc), path
    ok = {"artgraph": 1, "nodes": {"img": {"type": "image.load", "params": {"path": "inside.png"}}}}
    load_graph(ok, registry=reg, base_dir=base, confine_inputs=True)
    # Unconfined (a graph file of one's own), the same absolute path is fine.
    mine = {"artgraph": 1, "nodes": {"img": {"type": "image.load", "params": {"path": str(secret)}}}}
    load_graph(mine, registry=reg, base_dir=base)


def test_a_path_resolving_to_a_folder_is_refused(reg, tiny_png, tmp_path):
    out = tmp_path / "out"
    (out / "taken.png").mkdir(parents=True)
    graph = load_graph(_save_graph("taken.png"), registry=reg, base_dir=tiny_png.parent, validate=False)
    with pytest.raises(GraphError) as exc:
        graph.plan(out_dir=out)
    assert "is a folder" in _problems(exc)
    assert Path(out / "taken.png").is_dir()


def test_an_output_under_a_file_is_a_problem(reg, tiny_png, tmp_path):
    (tmp_path / "out").write_text("a file where the output folder should be")
    for out, path in ((tmp_path / "out", "x.png"), (tmp_path, "tiny.png/x.png")):
        graph = load_graph(_save_graph(path), registry=reg, base_dir=tiny_png.parent, validate=False)
        with pytest.raises(GraphError) as exc:
            graph.plan(out_dir=out)
        assert "is a file, not a folder" in _problems(exc)


def test_names_from_a_graph_cannot_drive_the_terminal(reg, tmp_path):
    text = (
        'artgraph: 1\nnodes:\n  a:\n    type: "x\\e[2Jy"\n'
        '  b:\n    type: h.sneaky\n    params: {target: "/\\e]0;owned\\a"}\n'
    )
    with pytest.raises(GraphError) as exc:
        load_graph("g.yaml", text=text, registry=reg)
    assert "\x1b" not in _problems(exc) and "x\\x1b[2Jy" in _problems(exc)
    graph = load_graph("g.yaml", text=text.replace('"x\\e[2Jy"', "t.source"), registry=reg)
    result = graph.run(device="cpu", cache=False, out_dir=tmp_path, raise_on_failure=False)
    error = result.nodes["b"].error or ""
    assert "\x1b" not in error and "\x07" not in error and "\\x1b]0;owned" in error


def test_two_searches_may_share_a_default_checkpoint_but_not_write_it_both(tmp_path, tiny_png):
    (tmp_path / "photo.png").write_bytes(tiny_png.read_bytes())
    spec = {
        "artgraph": 1,
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "photo.png"}},
            "shapes": {"type": "genome.triangles", "params": {"count": 3}},
            "likeness": {"type": "objective.pixel", "inputs": {"target": "photo.image"}},
            "ga": {
                "type": "evolve.genetic",
                "inputs": {"genome": "shapes.genome", "objective": "likeness.objective"},
                "params": {"population": 6, "generations": 2, "size": 8},
            },
            "sa": {
                "type": "evolve.anneal",
                "inputs": {"genome": "shapes.genome", "objective": "likeness.objective"},
                "params": {"steps": 2, "size": 8},
            },
        },
    }
    graph = load_graph(spec, base_dir=tmp_path)  # both default to checkpoints/evolve.safetensors: valid
    assert graph.run(device="cpu", cache=False, out_dir=tmp_path / "out").ok
    both = graph.run(
        device="cpu",
        cache=False,
        out_dir=tmp_path / "out",
        overrides={"ga.checkpoint_every": 1, "sa.checkpoint_every": 1},
        raise_on_failure=False,
    )
    assert both.nodes["ga"].status == "executed"
    assert "node 'ga' wrote that file earlier in this run" in (both.nodes["sa"].error or "")
    with pytest.raises(GraphError) as exc:
        graph.plan({"sa.checkpoint": "checkpoints/evolve.safetensors"}, out_dir=tmp_path / "out")
    assert "node 'ga' writes the same file" in _problems(exc)
