"""What the viewer's page is fed, without a browser: layouts, run folders, coalesced events."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from artgraph.jobstore import JobStoreError
from artgraph.layout import layout
from artgraph.runfolder import RUN_ID, RunFolder


def _edges(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"from": a, "output": "out", "to": b, "input": "in", "type": "Tensor"} for a, b in pairs]


def test_nodes_sit_in_columns_by_their_longest_path_from_a_source():
    drawn = layout(["a", "b", "c", "d"], {"a": "t.src"}, _edges([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]))
    at = {n["id"]: n for n in drawn["nodes"]}
    assert [at[i]["layer"] for i in "abcd"] == [0, 1, 1, 2]
    assert at["a"]["type"] == "t.src" and at["b"]["type"] == ""
    assert at["b"]["y"] != at["c"]["y"] and at["b"]["x"] == at["c"]["x"]
    assert drawn["width"] == at["d"]["x"] + at["d"]["w"] and len(drawn["edges"]) == 4


def test_a_thousand_node_graph_lays_out_with_every_wire_going_forward():
    rng = random.Random(0)
    ids = [f"n{i}" for i in range(1000)]
    pairs = [(ids[rng.randrange(i)], ids[i]) for i in range(1, 1000) for _ in range(rng.randint(1, 2))]
    drawn = layout(ids, {}, _edges(pairs))
    at = {n["id"]: n for n in drawn["nodes"]}
    assert len(at) == 1000
    assert all(at[e["from"]]["layer"] < at[e["to"]]["layer"] for e in drawn["edges"])
    spots = {(n["x"], n["y"]) for n in drawn["nodes"]}
    assert len(spots) == 1000  # no two boxes on one spot


def test_wires_to_unknown_nodes_are_left_out():
    drawn = layout(["a"], {}, _edges([("a", "ghost")]))
    assert drawn["edges"] == [] and len(drawn["nodes"]) == 1


def _write(folder: Path, *events: dict[str, object], tail: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"run": "r", "time": 1.0, **e}) + "\n" for e in events)
    (folder / "events.jsonl").write_text(lines + tail)


START = {"event": "run_start", "seq": 1, "graph": "g", "nodes": ["a", "b"], "device": "cpu",
         "types": {"a": "t.src", "b": "t.sink"}, "edges": _edges([("a", "b")])}  # fmt: skip


@pytest.mark.parametrize(
    ("done", "status"),
    [
        (None, "running"),
        ({"ok": True, "cancelled": False}, "done"),
        ({"ok": False, "cancelled": False}, "failed"),
        ({"ok": False, "cancelled": True}, "cancelled"),
    ],
)
def test_a_run_folder_reads_as_a_job(tmp_path, done, status):
    events = [START] + ([{"event": "run_done", "seq": 2, **done}] if done else [])
    _write(tmp_path / "run", *events, tail='{"event": "progress", "se')  # a line still being written
    (tmp_path / "run" / "out.png").write_bytes(b"png")
    runs = RunFolder(tmp_path / "run")
    view = runs.job_view(RUN_ID)
    assert (view["id"], view["name"], view["status"]) == ("run", "g", status)
    assert view["files"] == ["events.jsonl", "out.png"]
    assert runs.finished(RUN_ID) is (done is not None)
    assert [n["id"] for n in runs.layout(RUN_ID)["nodes"]] == ["a", "b"]


def test_a_run_folder_before_its_run_waits_and_knows_one_job_only(tmp_path):
    runs = RunFolder(tmp_path)
    assert runs.job_view(RUN_ID)["status"] == "queued" and runs.layout(RUN_ID)["nodes"] == []
    with pytest.raises(JobStoreError):
        runs.job_view("other")
    assert runs.job_views("done", 10) == []


def test_a_run_folder_serves_plain_files_inside_it_only(tmp_path):
    run = tmp_path / "run"
    _write(run, START)
    (tmp_path / "secret.txt").write_text("outside")
    (run / "link.txt").symlink_to(tmp_path / "secret.txt")
    (run / ".hidden.png").write_bytes(b"x")
    runs = RunFolder(run)
    assert runs.file(RUN_ID, "events.jsonl") == (run / "events.jsonl").resolve()
    for name in ["../secret.txt", "link.txt", ".hidden.png", "/etc/passwd", "", "a//b", "./events.jsonl"]:
        assert runs.file(RUN_ID, name) is None, name
    assert "link.txt" not in runs.job_view(RUN_ID)["files"]


def test_coalescing_keeps_the_newest_progress_and_preview_of_each_node():
    pytest.importorskip("fastapi")
    from artgraph.server import newest_only

    events = [
        {"event": "progress", "node": "a", "seq": 1},
        {"event": "progress", "node": "b", "seq": 2},
        {"event": "preview", "node": "a", "seq": 3},
        {"event": "progress", "node": "a", "seq": 4},
        {"event": "node_done", "node": "b", "seq": 5},
        {"event": "preview", "node": "a", "seq": 6},
    ]
    assert [e["seq"] for e in newest_only(events)] == [2, 4, 5, 6]
