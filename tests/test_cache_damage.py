"""The disk cache survives damage; a finished run's report is never lost; kill -9 leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import artgraph
from artgraph import Cache, Input, Int, Param, PortType, Tensor, load_graph, node
from artgraph.cache import DiskCache
from artgraph.files import atomic_path, is_stale_temp, remove_stale_temps
from artgraph.plugins import build_registry
from tests.conftest import _Pack


def _graph(registry: artgraph.Registry) -> artgraph.Graph:
    # a -> b (a tensor) -> c (an int): b's entry is the one we damage.
    spec = {
        "artgraph": 1,
        "nodes": {
            "a": {"type": "t.source", "params": {"value": 3}},
            "b": {"type": "t.tensor", "inputs": {"a": "a.out"}, "params": {"n": 5}},
            "c": {"type": "t.reduce", "inputs": {"x": "b.out"}},
        },
    }
    return load_graph(spec, registry=registry)


def _entry(root: Path, node_type: str) -> Path:
    for meta in (root / "objects").rglob("meta.json"):
        if json.loads(meta.read_text())["node_type"] == node_type:
            return meta.parent
    raise AssertionError(f"no cache entry of {node_type}")


def _truncate(folder: Path) -> None:
    data = (folder / "tensors.safetensors").read_bytes()
    (folder / "tensors.safetensors").write_bytes(data[: len(data) // 2])


def _nan_bytes(folder: Path) -> None:
    data = bytearray((folder / "tensors.safetensors").read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"  # a float32 NaN in place of the last value
    (folder / "tensors.safetensors").write_bytes(bytes(data))


def _truncate_meta(folder: Path) -> None:
    text = (folder / "meta.json").read_text()
    (folder / "meta.json").write_text(text[: len(text) // 2])


def _edit_meta(folder: Path) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta["outputs"] = {"out": {"codec": "tensor", "list": ["nope"]}}
    (folder / "meta.json").write_text(json.dumps(meta))


def _meta_not_a_mapping(folder: Path) -> None:
    (folder / "meta.json").write_text("[1, 2, 3]")


def _drop_meta(folder: Path) -> None:
    (folder / "meta.json").unlink()


@pytest.mark.parametrize("damage", [_truncate, _nan_bytes, _truncate_meta, _edit_meta, _meta_not_a_mapping, _drop_meta])
def test_a_damaged_entry_is_recomputed_and_reported(registry, tmp_path, calls, damage):
    root = tmp_path / "cache"
    graph = _graph(registry)
    assert graph.run(device="cpu", cache=Cache(disk=root))["c.out"] == 15
    damage(_entry(root, "t.tensor"))
    calls.clear()
    # A fresh Cache sees only the disk, as a new process would. c is cached on disk
    # too, so b is not even needed for c: ask for b itself.
    result = graph.run(device="cpu", cache=Cache(disk=root), outputs=["b"])
    assert result.nodes["b"].status == "executed"
    assert "damaged" in result.nodes["b"].reason
    assert any("damaged" in w for w in result.warnings)
    assert torch.equal(result["b.out"], torch.full((5,), 3.0))
    # ... and the entry was replaced by a good one.
    again = graph.run(device="cpu", cache=Cache(disk=root), outputs=["b"])
    assert again.nodes["b"].status == "cached"
    assert again.warnings == []


def test_a_damaged_entry_feeding_a_node_to_run_is_recomputed(registry, tmp_path):
    root = tmp_path / "cache"
    graph = _graph(registry)
    graph.run(device="cpu", cache=Cache(disk=root))
    # c must run (its entry lost its meta) and needs b, whose entry is truncated: this
    # used to fail every later run with "the cached result of 'b' vanished from the cache".
    (_entry(root, "t.reduce") / "meta.json").unlink()
    _truncate(_entry(root, "t.tensor"))
    result = graph.run(device="cpu", cache=Cache(disk=root))
    assert result.ok and result["c.out"] == 15
    assert result.nodes["b"].status == "executed"
    assert result.nodes["c"].status == "executed"


def test_a_damaged_ledger_only_loses_the_why(registry, tmp_path):
    root = tmp_path / "cache"
    graph = _graph(registry)
    graph.run(device="cpu", cache=Cache(disk=root))
    ledgers = list((root / "runs").glob("*.json"))
    assert len(ledgers) == 1
    for text in ("{", "[]", '{"b": 5, "c": {"params": 7, "inputs": [1], "version": 1}}'):
        ledgers[0].write_text(text)
        result = graph.run(device="cpu", cache=Cache(disk=root), overrides={"b.n": 6})
        assert result.ok, text
        assert result["c.out"] == 18


def test_an_old_format_entry_is_a_miss(registry, tmp_path):
    root = tmp_path / "cache"
    graph = _graph(registry)
    graph.run(device="cpu", cache=Cache(disk=root))
    folder = _entry(root, "t.tensor")
    meta = json.loads((folder / "meta.json").read_text())
    meta["format"] = 2
    (folder / "meta.json").write_text(json.dumps(meta))
    assert graph.run(device="cpu", cache=Cache(disk=root), outputs=["b"]).nodes["b"].status == "executed"


# -- params no JSON can hold ---------------------------------------------------------


def _tensor_literal(t: PortType, raw: object) -> torch.Tensor:
    return torch.tensor(raw, dtype=torch.float32)


WEIGHTS = PortType("Weights", literal=_tensor_literal)


@node("h.weighted", params={"w": Param(WEIGHTS)}, outputs={"out": Tensor})
def weighted(w: torch.Tensor) -> torch.Tensor:
    return w * 2


class _Literal:
    @artgraph.hookimpl
    def artgraph_register_types(self) -> list[PortType]:
        return [WEIGHTS]

    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [weighted]


def test_a_literal_that_is_a_tensor_is_keyed_and_ledgered(tmp_path):
    reg = build_registry(plugins=[("lit", "literal-tests", _Literal())])
    spec = {"artgraph": 1, "nodes": {"n": {"type": "h.weighted", "params": {"w": [1.0, 2.0]}}}}
    graph = load_graph(spec, registry=reg)
    first = graph.run(device="cpu", cache=Cache(disk=tmp_path))
    assert first.ok and torch.equal(first["n.out"], torch.tensor([2.0, 4.0]))
    assert first.warnings == []
    # Same literal: cached. Another literal (its text as a tensor would abbreviate alike): runs.
    assert graph.run(device="cpu", cache=Cache(disk=tmp_path)).nodes["n"].status == "cached"
    changed = graph.run(device="cpu", cache=Cache(disk=tmp_path), overrides={"n.w": [1.0, 3.0]})
    assert changed.nodes["n"].status == "executed"
    assert "param 'w' changed" in changed.nodes["n"].reason


def test_a_disk_that_cannot_be_written_costs_the_cache_not_the_run(registry, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = _graph(registry).run(device="cpu", cache=Cache(disk=blocker / "cache"))
    assert result.ok and result["c.out"] == 15
    assert any("not stored in the disk cache" in w for w in result.warnings)
    assert any("ledger" in w for w in result.warnings)
    assert "warnings" in result.to_json()


# -- out of memory -------------------------------------------------------------------


@node("h.greedy", inputs={"a": Input(Int)}, outputs={"out": Tensor})
def greedy(a: int) -> torch.Tensor:
    return torch.empty(2**45, dtype=torch.uint8)  # passes any validation, no machine has it


class _Greedy:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [greedy]


def test_out_of_memory_is_one_clear_line():
    reg = build_registry(plugins=[("testpack", "artgraph-tests", _Pack()), ("greedy", "greedy-tests", _Greedy())])
    spec = {"artgraph": 1, "nodes": {"a": {"type": "t.source"}, "g": {"type": "h.greedy", "inputs": {"a": "a"}}}}
    result = load_graph(spec, registry=reg).run(device="cpu", cache=False, raise_on_failure=False)
    error = result.nodes["g"].error or ""
    assert error.startswith("h.greedy: out of memory (it asked for 32.0 TiB)"), error
    assert "\n" not in error
    assert result.nodes["a"].status == "executed"


# -- temporary files of killed processes ------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_dead_process_are_removed_and_live_ones_kept(tmp_path):
    from artgraph.files import _HOST

    dead = tmp_path / f".result~{_HOST}~{_dead_pid()}~abc123.png"
    live = tmp_path / f".result~{_HOST}~{os.getpid()}~def456.png"
    foreign = tmp_path / f".result~otherhost~{_dead_pid()}~ghi789.png"
    for path in (dead, live, foreign):
        path.write_text("partial")
    assert is_stale_temp(dead) and not is_stale_temp(live) and not is_stale_temp(foreign)
    with atomic_path(tmp_path / "result.png") as tmp:
        tmp.write_text("whole")
    assert not dead.exists() and live.exists() and foreign.exists()
    old = time.time() - 2 * 24 * 3600
    os.utime(foreign, (old, old))
    assert remove_stale_temps(tmp_path) == 1
    assert not foreign.exists()


KILL_GRAPH = """\
artgraph: 1
name: long-search
nodes:
  photo:
    type: image.load
    params: {path: tiny.png}
  shapes:
    type: genome.triangles
    params: {count: 8}
  likeness:
    type: objective.pixel
    inputs: {target: photo.image}
  search:
    type: evolve.genetic
    inputs: {genome: shapes.genome, objective: likeness.objective}
    params: {population: 8, generations: GENERATIONS, size: 12, checkpoint_every: 1, seed: 3}
  save:
    type: image.save
    inputs: {image: search.image}
    params: {path: painted.png}
"""


def _temps(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if "~" in p.name]


def test_kill_9_during_a_run_then_a_clean_rerun(tmp_path, tiny_png):
    (tmp_path / "long.yaml").write_text(KILL_GRAPH.replace("GENERATIONS", "1000000"))
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = [sys.executable, "-m", "artgraph.cli", "run", "long.yaml", "--out", str(out), "--cache", str(cache)]
    proc = subprocess.Popen([*cmd, "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = out / "checkpoints" / "evolve.safetensors"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the checkpoint loop: writes are in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert checkpoint.exists(), proc.stderr.read().decode() if proc.stderr else ""
    proc.stderr.close() if proc.stderr else None
    # Whatever the kill left half-written, plant the worst case too: a temporary file of a
    # dead process beside the checkpoint, and a half-made cache entry.
    from artgraph.files import _HOST

    dead = _dead_pid()
    (checkpoint.parent / f".evolve~{_HOST}~{dead}~zz.safetensors").write_bytes(b"half")
    shard = cache / "objects" / "ab"
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f".ab12~{_HOST}~{dead}~zz").mkdir()
    (tmp_path / "long.yaml").write_text(KILL_GRAPH.replace("GENERATIONS", "3"))
    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "painted.png").is_file()
    assert _temps(out, cache) == []
    assert DiskCache(cache).root.is_dir()


def test_the_cli_prints_the_warnings_and_puts_them_in_the_json_report(tmp_path, tiny_png, monkeypatch):
    import artgraph.api
    from artgraph.cli import main

    (tmp_path / "g.yaml").write_text(
        "artgraph: 1\nnodes:\n  img: {type: image.load, params: {path: tiny.png}}\n"
        "  small: {type: image.resize, inputs: {image: img.image}, params: {size: 4}}\n"
    )
    cache = tmp_path / "cache"
    args = ["run", str(tmp_path / "g.yaml"), "--cache", str(cache), "--out", str(tmp_path / "out")]
    assert main([*args, "--quiet"]) == 0
    for meta in (cache / "objects").rglob("meta.json"):
        _truncate(meta.parent)
    monkeypatch.setattr(artgraph.api, "_PROCESS_CACHES", {})  # as a new process: only the disk
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main([*args, "--json"]) == 0
    report = json.loads(out.getvalue())
    assert report["ok"] and any("damaged" in w for w in report["warnings"])
    assert "artgraph: warning: node 'small': its cached result was damaged" in err.getvalue()
