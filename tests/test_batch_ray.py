"""The ray executor, on the CPU: one Ray instance for the session with two logical GPUs.

``ray.init(num_cpus=2, num_gpus=2)`` gives two ``num_gpus=1`` actors different
``CUDA_VISIBLE_DEVICES`` on a machine without any GPU. Every wait is bounded:
the batch's own waits (``ray.wait`` with a timeout, a start-up limit) and the
few loops here.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

import artgraph
from artgraph.batchexec import drive
from artgraph.batchitems import Item
from artgraph.batchrun import BatchError, GraphSource, WorkerSetup, write_marker
from artgraph.cli import main
from artgraph.manifest import read_manifest
from artgraph.rayexec import BatchActor, RayPool
from tests.test_batch_local import kill_mid_item, make_folder, model_loads


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_one_actor_per_gpu_each_loading_the_model_once(ray_session, tmp_path, monkeypatch, capsys):
    folder = make_folder(tmp_path, 5)
    monkeypatch.chdir(folder)
    argv = ["batch", "graph.yaml", "--over", "photo.path=photos/*.png", "--executor", "ray", "--no-cache", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["done"] == 5 and report["failed"] == 0
    workers = report["workers"]
    assert len(workers) == 2  # one per GPU of the cluster
    assert sorted(w["cuda_visible_devices"] for w in workers) == ["0", "1"]
    records = read_manifest(folder / "out" / "manifest.jsonl")
    assert len(records) == 5 and len({r["item"] for r in records}) == 5
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in records)
    assert all((folder / "out" / r["item"] / "styled.png").is_file() for r in records)
    loads = model_loads(folder / "out", records)
    assert set(loads) == {r["worker"] for r in records} and set(loads.values()) == {1}
    assert ray_session.is_initialized()  # a batch leaves a Ray it joined running


def test_an_actor_killed_mid_batch_is_replaced_and_its_item_runs_elsewhere(ray_session, tmp_path, monkeypatch):
    folder = make_folder(tmp_path, 4)
    monkeypatch.chdir(folder)
    items = [{"photo.path": f"photos/p{i}.png", "transfer.steps": 8} for i in range(4)]
    killed: dict[str, str] = {}
    results = []
    with artgraph.batch("graph.yaml", items, executor="ray", workers=2, out="out", retries=1) as run:
        pool = run.pool
        assert isinstance(pool, RayPool)

        def kill(name: str) -> None:
            ray_session.kill(pool.handle(name), no_restart=True)

        for result in run:
            results.append(result)
            if not killed:
                killed = kill_mid_item(folder / "out", pool.busy, kill)
    assert killed, "no actor was caught running an item"
    records = read_manifest(folder / "out" / "manifest.jsonl")
    assert len(records) == 4 and len({r["item"] for r in records}) == 4  # nothing lost, nothing twice
    assert all(r["status"] == "done" for r in records)
    again = next(r for r in records if r["item"] == killed["item"])
    assert again["attempts"] == 2 and again["worker"] != killed["name"]
    assert pool.started == ["ray-0", "ray-1", "ray-2"]  # the replacement
    assert [r.item for r in results] == [r["item"] for r in records]


def test_a_batch_stops_at_once_when_a_worker_cannot_see_out(ray_session, tmp_path):
    folder = make_folder(tmp_path, 1)
    graph = artgraph.load_graph(folder / "graph.yaml", validate=False)
    out = tmp_path / "out"
    out.mkdir()
    write_marker(out, "the batch's own")
    setup = WorkerSetup(GraphSource.of(graph), str(out), "another batch's", "cpu", None)
    pool = RayPool(setup, 1, start_timeout=120)
    try:
        item = Item("a", {"photo.path": str(folder / "photos" / "p0.png")})
        with pytest.raises(BatchError, match=r"sees another folder at --out .* must be shared storage"):
            for _ in drive(pool, [item], retries=0):
                pass
    finally:
        pool.close()


def test_the_actor_checks_out_in_its_constructor(tmp_path):
    folder = make_folder(tmp_path, 1)
    graph = artgraph.load_graph(folder / "graph.yaml", validate=False)
    missing = WorkerSetup(GraphSource.of(graph), str(tmp_path / "not-mounted"), "t", "cpu", None)
    error, _ = BatchActor(missing, "ray-0", 1).ready()
    assert error is not None and "cannot see --out" in error and "shared storage" in error
    out = tmp_path / "out"
    write_marker(out, "t")
    error, info = BatchActor(WorkerSetup(GraphSource.of(graph), str(out), "t", "cpu", None), "ray-0", 1).ready()
    assert error is None and info["name"] == "ray-0" and info["device"] == "cpu"


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    folder = make_folder(tmp_path, 1)
    monkeypatch.chdir(folder)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert main(["batch", "graph.yaml", "--over", "transfer.steps=1", "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "artgraph batch: error: the ray executor needs Ray, which is not installed — pip install 'artgraph[ray]'"
    )
    assert not (folder / "out").exists()


def test_an_address_nothing_answers_at_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    folder = make_folder(tmp_path, 1)
    monkeypatch.chdir(folder)
    started = time.monotonic()
    argv = ["batch", "graph.yaml", "--over", "transfer.steps=1", "--executor", "ray", "--address", "127.0.0.1:1"]
    assert main(argv) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err and "ray start --head" in err
    assert not (folder / "out").exists()
