"""Run events: one vocabulary, in order, for the API, the CLI's --events file and previews."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import Cache, Context, Image, Input, Int, Param, load_graph, node
from artgraph.events import EVENT_TYPES, JsonLines, RunEvents, read_events
from artgraph.plugins import build_registry
from tests.conftest import _Pack


@node("ev.steps", params={"n": Param(Int, 500)}, outputs={"out": Int})
def steps(ctx: Context, n: int) -> int:
    with ctx.progress(n, "stepping") as bar:
        for i in range(n):
            bar.update(1, loss=1.0 / (i + 1))
    return n


@node("ev.paint", inputs={"a": Input(Int)}, params={"calls": Param(Int, 50)}, outputs={"image": Image})
def paint(ctx: Context, a: int, calls: int) -> torch.Tensor:
    made: list[int] = []

    def picture() -> torch.Tensor:
        made.append(1)
        return torch.rand(1, 3, 600, 900, generator=torch.Generator().manual_seed(a))

    for _ in range(calls):
        ctx.preview(picture)
    PAINTED.append(len(made))
    return picture()


PAINTED: list[int] = []


class _Events:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [steps, paint]


@pytest.fixture
def reg() -> artgraph.Registry:
    PAINTED.clear()
    return build_registry(plugins=[("testpack", "artgraph-tests", _Pack()), ("events", "event-tests", _Events())])


def _collect() -> tuple[list[dict[str, Any]], Any]:
    seen: list[dict[str, Any]] = []
    return seen, seen.append


CHAIN = {
    "artgraph": 1,
    "nodes": {
        "a": {"type": "t.source", "params": {"value": 2}},
        "b": {"type": "t.add", "inputs": {"a": "a"}, "params": {"b": 3}},
        "c": {"type": "t.sink", "inputs": {"a": "b"}},
    },
}


def test_a_run_tells_its_story_in_order(reg):
    seen, sink = _collect()
    graph = load_graph(CHAIN, registry=reg)
    cache = Cache()
    graph.run(device="cpu", cache=cache, events=[sink])
    kinds = [e["event"] for e in seen]
    assert kinds == ["run_start"] + ["node_start", "node_done"] * 3 + ["run_done"]
    assert all(e["event"] in EVENT_TYPES for e in seen)
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert len({e["run"] for e in seen}) == 1
    assert all(later["time"] >= earlier["time"] for earlier, later in itertools.pairwise(seen))
    start = seen[0]
    assert start["graph"] == "<dict>" or (
        start["graph"] and start["nodes"] == ["a", "b", "c"] and start["device"] == "cpu"
    )
    assert start["types"] == {"a": "t.source", "b": "t.add", "c": "t.sink"}
    assert start["edges"] == [
        {"from": "a", "output": "out", "to": "b", "input": "a", "type": "Int"},
        {"from": "b", "output": "out", "to": "c", "input": "a", "type": "Int"},
    ]
    done_b = next(e for e in seen if e["event"] == "node_done" and e["node"] == "b")
    assert done_b["status"] == "executed" and done_b["outputs"] == {"out": 5} and done_b["reason"] == "no cached result"
    end = seen[-1]
    assert end["ok"] is True and end["counts"] == {"executed": 3}
    json.dumps(seen)  # every event is JSON as it is

    again, sink2 = _collect()
    graph.run(device="cpu", cache=cache, events=[sink2])
    cached = [e for e in again if e["event"] == "node_cached"]
    assert [e["node"] for e in cached] == ["a", "b"]  # c is an output node: it always runs
    assert cached[1]["reason"].startswith("same key as a cached result")
    assert again[0]["run"] != seen[0]["run"]


def test_a_failure_is_one_line_with_its_traceback_apart(reg):
    seen, sink = _collect()
    spec = {
        "artgraph": 1,
        "nodes": {
            "a": {"type": "t.source"},
            "boom": {"type": "t.boom", "inputs": {"a": "a"}},
            "after": {"type": "t.add", "inputs": {"a": "boom"}},
        },
    }
    load_graph(spec, registry=reg).run(device="cpu", cache=False, events=[sink], raise_on_failure=False)
    error = next(e for e in seen if e["event"] == "node_error")
    assert error["node"] == "boom" and error["message"] == "t.boom: ValueError: kaboom"
    assert "Traceback" in error["traceback"] and "Traceback" not in error["message"]
    skipped = next(e for e in seen if e["event"] == "node_done" and e["node"] == "after")
    assert skipped["status"] == "skipped" and "upstream node 'boom' failed" in skipped["reason"]
    assert seen[-1]["event"] == "run_done" and seen[-1]["ok"] is False


def test_progress_becomes_a_few_events_and_always_the_last(reg):
    seen, sink = _collect()
    spec = {"artgraph": 1, "nodes": {"s": {"type": "ev.steps", "params": {"n": 2000}}}}
    load_graph(spec, registry=reg).run(device="cpu", cache=False, events=RunEvents([sink], progress_every=10.0))
    progress = [e for e in seen if e["event"] == "progress"]
    assert 1 <= len(progress) <= 3  # 2,000 updates, rate-limited
    assert progress[-1]["value"] == 2000 and progress[-1]["max"] == 2000
    assert progress[-1]["metrics"]["loss"] == pytest.approx(1 / 2000)
    assert all(e["node"] == "s" for e in progress)


def test_previews_are_small_rate_limited_and_made_only_when_due(reg, tmp_path):
    seen, sink = _collect()
    spec = {"artgraph": 1, "nodes": {"a": {"type": "t.source"}, "p": {"type": "ev.paint", "inputs": {"a": "a"}}}}
    events = RunEvents([sink], preview_dir=tmp_path / "previews", preview_every=60.0)
    load_graph(spec, registry=reg).run(device="cpu", cache=False, events=events)
    previews = [e for e in seen if e["event"] == "preview"]
    assert len(previews) == 1 and previews[0]["node"] == "p"
    assert PAINTED == [1]  # 50 calls, one picture made: the function form is lazy
    with PILImage.open(previews[0]["path"]) as img:
        assert img.format == "JPEG" and max(img.size) == 512 and img.size == (512, 341)
    # Nobody watching (no preview folder): nothing is made or written.
    PAINTED.clear()
    load_graph(spec, registry=reg).run(device="cpu", cache=False, events=[sink])
    assert PAINTED == [0]


def test_a_failing_sink_is_dropped_and_the_run_goes_on(reg, caplog):
    calls: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        calls.append(event["event"])
        raise RuntimeError("the client went away")

    seen, sink = _collect()
    result = load_graph(CHAIN, registry=reg).run(device="cpu", cache=False, events=[broken, sink])
    assert result.ok and calls == ["run_start"] and seen[-1]["event"] == "run_done"
    assert "dropped an event sink" in caplog.text


def test_the_events_file_holds_whole_lines(tmp_path):
    path = tmp_path / "run" / "events.jsonl"
    log = JsonLines(path)
    RunEvents([log]).emit("run_start", graph="g", nodes=[], device="cpu")
    RunEvents([log]).emit("progress", "n", value=1, max=None, metrics={"loss": float("nan")})
    log.close()
    with open(path, "a") as fh:
        fh.write('{"event": "node_sta')  # a line still being written
    events = read_events(path)
    assert [e["event"] for e in events] == ["run_start", "progress"]
    assert events[1]["metrics"] == {"loss": "nan"}  # valid JSON for any reader


def test_artgraph_run_events_writes_the_log_and_previews(tmp_path, tiny_png):
    from artgraph.cli import main

    (tmp_path / "photo.png").write_bytes(tiny_png.read_bytes())
    (tmp_path / "g.yaml").write_text(
        "artgraph: 1\nname: little-search\nnodes:\n"
        "  photo: {type: image.load, params: {path: photo.png}}\n"
        "  shapes: {type: genome.triangles, params: {count: 4}}\n"
        "  likeness: {type: objective.pixel, inputs: {target: photo.image}}\n"
        "  search: {type: evolve.genetic, inputs: {genome: shapes.genome, objective: likeness.objective},"
        " params: {population: 6, generations: 30, size: 12}}\n"
        "  save: {type: image.save, inputs: {image: search.image}, params: {path: best.png}}\n"
    )
    log = tmp_path / "run" / "events.jsonl"
    args = [
        "run",
        str(tmp_path / "g.yaml"),
        "--no-cache",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
        "--events",
        str(log),
    ]
    assert main(args) == 0
    events = read_events(log)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_done"
    assert events[0]["graph"] == "little-search"
    assert {"node_start", "node_done", "progress", "preview"} <= set(kinds)
    preview = next(e for e in events if e["event"] == "preview")
    assert preview["node"] == "search" and Path(preview["path"]) == tmp_path / "run" / "previews" / "search.jpg"
    assert Path(preview["path"]).is_file()
    assert log.read_text().endswith("\n")


def test_optimize_image_previews_its_pixels(tmp_path, tiny_png):
    seen, sink = _collect()
    (tmp_path / "t.png").write_bytes(tiny_png.read_bytes())
    spec = {
        "artgraph": 1,
        "nodes": {
            "t": {"type": "image.load", "params": {"path": "t.png"}},
            "goal": {"type": "objective.pixel", "inputs": {"target": "t.image"}},
            "paint": {"type": "optimize.image", "inputs": {"objective": "goal"}, "params": {"size": 8, "steps": 5}},
        },
    }
    events = RunEvents([sink], preview_dir=tmp_path / "previews", preview_every=0.0)
    load_graph(spec, base_dir=tmp_path).run(device="cpu", cache=False, events=events, outputs=["paint.image"])
    assert [e["node"] for e in seen if e["event"] == "preview"] == ["paint"] * 5
    assert (tmp_path / "previews" / "paint.jpg").is_file()


# -- cancelling ----------------------------------------------------------------------


def test_cancel_stops_the_running_node_at_its_next_step_and_keeps_what_finished(reg):
    import threading

    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def watch(event: dict[str, Any]) -> None:
        seen.append(event)
        if event["event"] == "progress" and event["value"] >= 100:
            stop.set()  # a client presses "cancel" while the long node runs

    spec = {
        "artgraph": 1,
        "nodes": {
            "first": {"type": "t.source", "params": {"value": 4}},
            "long": {"type": "ev.steps", "params": {"n": 1_000_000}},
            "after": {"type": "t.add", "inputs": {"a": "long"}},
        },
    }
    events = RunEvents([watch], progress_every=0.0)
    result = load_graph(spec, registry=reg).run(device="cpu", cache=False, events=events, cancel=stop, outputs=None)
    assert result.cancelled and not result.ok and result.failures == []
    assert result.nodes["first"].status == "executed"  # what finished before is kept
    assert result.nodes["long"].status == "cancelled" and "the run was cancelled" in (result.nodes["long"].error or "")
    assert result.nodes["after"].status == "cancelled"
    last = [e for e in seen if e["event"] == "progress"][-1]
    assert last["value"] <= 101  # stopped at the next step, not at the end of a million
    assert seen[-1]["event"] == "run_done" and seen[-1]["cancelled"] is True
    assert result.to_json()["cancelled"] is True


def test_a_cancel_before_a_node_starts_skips_it(reg):
    result = load_graph(CHAIN, registry=reg).run(device="cpu", cache=False, cancel=lambda: True)
    assert [r.status for r in result.nodes.values()] == ["cancelled"] * 3 and result.cancelled
    assert all(r.reason == "the run was cancelled before it started" for r in result.nodes.values())


def test_a_running_style_transfer_stops_soon_after_cancel(tmp_path, tiny_png):
    import threading

    (tmp_path / "c.png").write_bytes(tiny_png.read_bytes())
    spec = {
        "artgraph": 1,
        "nodes": {
            "c": {"type": "image.load", "params": {"path": "c.png", "size": 48}},
            "vgg": {"type": "vgg.model", "params": {"weights": "random", "arch": "vgg16"}},
            "st": {
                "type": "style.transfer",
                "inputs": {"content": "c", "style": ["c"], "model": "vgg"},
                "params": {"steps": 100_000, "optimizer": "adam"},
            },
        },
    }
    stop = threading.Event()
    steps: list[int] = []

    def watch(event: dict[str, Any]) -> None:
        if event["event"] == "progress" and event["node"] == "st":
            steps.append(event["value"])
            if event["value"] >= 5:
                stop.set()

    graph = load_graph(spec, base_dir=tmp_path)
    result = graph.run(device="cpu", cache=False, events=RunEvents([watch], progress_every=0.0), cancel=stop)
    assert result.nodes["st"].status == "cancelled" and max(steps) <= 6
    # The next run is normal.
    again = graph.run(device="cpu", cache=False, overrides={"st.steps": 3})
    assert again.ok and again.nodes["st"].status == "executed"
