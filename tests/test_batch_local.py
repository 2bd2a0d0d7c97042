"""The local executor: worker processes that keep their model warm, retries, dead workers, kill -9 and Ctrl-C.

Each test starts worker processes (a fresh interpreter importing torch, a few
seconds on two cores), so the tests are few and each checks several things.
Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image as PILImage

import artgraph
from artgraph.batchexec import LocalPool
from artgraph.cli import main
from artgraph.events import read_events
from artgraph.manifest import read_manifest

#: A style transfer with seeded random VGG16 weights on a tiny photo: the model is the
#: thing a warm worker keeps, ``transfer.steps`` sets how long an item takes.
STYLE = """\
artgraph: 1
name: tiny-style
nodes:
  photo: {type: image.load, params: {path: photos/p0.png, size: 32}}
  vgg: {type: vgg.model, params: {weights: random, arch: vgg16}}
  transfer:
    type: style.transfer
    inputs: {content: photo.image, style: [photo.image], model: vgg.model}
    params: {steps: 2}
  save: {type: image.save, inputs: {image: transfer.image}, params: {path: styled.png}}
"""

ARTGRAPH = [sys.executable, "-m", "artgraph.cli"]


def make_folder(folder: Path, photos: int, *, bad: bool = False) -> Path:
    """``folder/graph.yaml`` (STYLE) and ``photos/p0.png`` ... (tiny), with ``photos/bad.png`` that is text."""
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    for i in range(photos):
        PILImage.new("RGB", (24 + i, 20), (30 * i % 255, 90, 160)).save(folder / "photos" / f"p{i}.png")
    if bad:
        (folder / "photos" / "bad.png").write_text("not pixels", encoding="utf-8")
    (folder / "graph.yaml").write_text(STYLE, encoding="utf-8")
    return folder


def model_loads(out: Path, records: list[dict]) -> Counter[str]:
    """Per worker: how many of its items ran ``vgg`` rather than finding it in the cache."""
    loads: Counter[str] = Counter()
    for r in records:
        for event in read_events(out / r["item"] / "events.jsonl"):
            if event.get("node") == "vgg" and event["event"] == "node_done" and event["status"] == "executed":
                loads[r["worker"]] += 1
    return loads


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting ({seconds:.0f} s) for {what}")
        time.sleep(0.1)


def kill_mid_item(out: Path, busy: Callable[[], dict[str, str]], kill: Callable[[str], None]) -> dict[str, str]:
    """Kill a worker while its item runs ``transfer`` (its events say so, and not yet ``run_done``);
    {name, item} of the one killed, or {} if none was running within a few seconds."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name, item in busy().items():
            path = out / item / "events.jsonl"
            events = read_events(path) if path.exists() else []
            started = any(e["event"] == "node_start" and e.get("node") == "transfer" for e in events)
            if started and events[-1]["event"] != "run_done":
                kill(name)
                return {"name": name, "item": item}
        time.sleep(0.02)
    return {}


def lines(path: Path) -> list[dict]:
    return read_manifest(path) if path.exists() else []


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_glob_on_warm_workers_then_a_bad_file_fails_after_its_retries_then_reruns_skip(tmp_path, monkeypatch, capsys):
    folder = make_folder(tmp_path, 4)
    monkeypatch.chdir(folder)
    argv = ["batch", "graph.yaml", "--over", "photo.path=photos/*.png", "--no-cache"]
    assert main([*argv, "--workers", "2"]) == 0
    assert "4 done, 0 failed" in capsys.readouterr().err
    out = folder / "out"
    records = read_manifest(out / "manifest.jsonl")
    assert len(records) == 4 and len({r["item"] for r in records}) == 4
    for r in records:
        assert (r["status"], r["attempts"], r["error"]) == ("done", 1, None)
        assert r["outputs"] == [f"{r['item']}/styled.png"] and (out / r["item"] / "styled.png").is_file()
        events = read_events(out / r["item"] / "events.jsonl")
        assert {e["run"] for e in events} == {r["item"]}
        assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_done" and events[-1]["ok"]
    # The model: loaded once by each worker, then found in its memory cache, item after item.
    loads = model_loads(out, records)
    assert set(loads) == {r["worker"] for r in records} and set(loads.values()) == {1}

    # A new photo and a file that is not an image join the folder: the same command runs only
    # those two; the bad one fails after its retries, the other finishes; those done are skipped.
    (folder / "photos" / "bad.png").write_text("not pixels", encoding="utf-8")
    PILImage.new("RGB", (30, 20), (10, 200, 10)).save(folder / "photos" / "p4.png")
    assert main([*argv, "--workers", "1", "--threads", "1", "--retries", "2"]) == 1
    err = capsys.readouterr().err
    assert "2 of 6 items to run (4 in the manifest already)" in err and "1 done, 1 failed" in err
    after = read_manifest(out / "manifest.jsonl")
    assert after[:4] == records and len(after) == 6
    (failed,) = [r for r in after if r["status"] == "failed"]
    (new,) = [r for r in after[4:] if r["status"] == "done"]
    assert new["item"].startswith("p4-") and (out / new["item"] / "styled.png").is_file()
    assert failed["item"].startswith("bad-") and failed["status"] == "failed" and failed["attempts"] == 3
    assert failed["overrides"] == {"photo.path": str(folder / "photos" / "bad.png")}
    assert failed["error"].startswith("node 'photo': ") and "cannot read image" in failed["error"]
    assert f"FAILED {failed['item']}: node 'photo'" in err
    assert sum(1 for e in read_events(out / failed["item"] / "events.jsonl") if e["event"] == "run_start") == 3

    # Again: nothing runs (the failed item is remembered as failed) ...
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "0 of 6 items to run" in err and "--retry-failed runs them again" in err
    assert len(read_manifest(out / "manifest.jsonl")) == 6
    # ... unless --retry-failed: that one item only, with its tries again.
    assert main([*argv, "--workers", "1", "--threads", "1", "--retries", "0", "--retry-failed", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(w["name"], w["threads"], w["device"]) for w in report["workers"]] == [("local-0", 1, "cpu")]
    assert (report["done"], report["failed"], report["skipped_done"], report["skipped_failed"]) == (0, 1, 5, 0)
    last = read_manifest(out / "manifest.jsonl")
    assert len(last) == 7 and last[-1]["item"] == failed["item"] and last[-1]["attempts"] == 1


def test_a_worker_that_dies_is_replaced_and_its_item_runs_again(tmp_path, monkeypatch):
    folder = make_folder(tmp_path, 4)
    monkeypatch.chdir(folder)
    graph = artgraph.load_graph("graph.yaml", validate=False)
    items = [{"photo.path": f"photos/p{i}.png", "transfer.steps": 8} for i in range(4)]
    killed: dict[str, str] = {}
    results = []
    with artgraph.batch(graph, items, workers=2, out="out", retries=1) as run:
        pool = run.pool
        assert isinstance(pool, LocalPool)
        pids = {}

        def kill(name: str) -> None:
            pids[name] = next(w["pid"] for w in pool.workers if w["name"] == name)
            os.kill(pids[name], signal.SIGKILL)

        for result in run:
            results.append(result)
            if not killed:
                killed = kill_mid_item(folder / "out", pool.busy, kill)
    assert killed, "no worker was caught running an item"
    records = read_manifest(folder / "out" / "manifest.jsonl")
    assert sorted(r["item"] for r in records) == sorted(r.item for r in results)
    assert len(records) == 4 and all(r["status"] == "done" for r in records)
    again = next(r for r in records if r["item"] == killed["item"])
    assert again["attempts"] == 2 and again["worker"] != killed["name"]
    assert pool.started == ["local-0", "local-1", "local-2"]  # the replacement
    assert gone(pids[killed["name"]])


def test_kill_9_then_ctrl_c_then_a_rerun_does_only_the_rest(tmp_path):
    folder = make_folder(tmp_path, 6)
    out = folder / "out"
    manifest = out / "manifest.jsonl"
    command = [
        *ARTGRAPH,
        "batch",
        "graph.yaml",
        "--over",
        "photo.path=photos/*.png",
        "--over",
        "transfer.steps=8",
        "--workers",
        "1",
        "--threads",
        "1",
        "--no-cache",
    ]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # 1. kill -9 once two items are recorded: they stay recorded, its workers go too.
    first = start()
    try:
        wait_for(lambda: len(lines(manifest)) >= 2, 120, "two items in the manifest")
        workers = children(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
        first.communicate(timeout=10)
    assert workers and all(p != first.pid for p in workers)
    wait_for(lambda: all(gone(p) for p in workers), 10, "the killed batch's workers to exit")
    recorded = lines(manifest)
    assert 2 <= len(recorded) < 6 and all(r["status"] == "done" for r in recorded)
    assert manifest.read_bytes().endswith(b"\n")

    # 2. Ctrl-C once one more item is recorded: a clean stop, exit 130, nothing recorded twice.
    second = start()
    try:
        wait_for(lambda: len(lines(manifest)) > len(recorded) or second.poll() is not None, 120, "one more item")
        workers = children(second.pid)
        second.send_signal(signal.SIGINT)
        _, err = second.communicate(timeout=30)
    finally:
        second.kill()
    assert second.returncode == 130, err
    assert "interrupted" in err and "run the same command again to continue" in err
    assert "Traceback" not in err
    wait_for(lambda: all(gone(p) for p in workers), 10, "the interrupted batch's workers to exit")
    middle = lines(manifest)
    assert middle[: len(recorded)] == recorded and len(middle) > len(recorded)

    # 3. The same command again: only the rest runs, and every item is recorded exactly once.
    third = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=180)
    assert third.returncode == 0, third.stderr
    assert f"{6 - len(middle)} of 6 items to run ({len(middle)} in the manifest already)" in third.stderr
    final = lines(manifest)
    assert final[: len(middle)] == middle
    assert len(final) == 6 and len({r["item"] for r in final}) == 6
    assert all(r["status"] == "done" and (out / r["item"] / "styled.png").is_file() for r in final)


def test_two_batches_on_one_folder_are_refused(tmp_path, monkeypatch, capsys):
    from artgraph.manifest import Manifest

    folder = make_folder(tmp_path, 1)
    monkeypatch.chdir(folder)
    with Manifest(folder / "out"):
        assert main(["batch", "graph.yaml", "--over", "photo.path=photos/p0.png"]) == 2
    assert "another 'artgraph batch' is writing" in capsys.readouterr().err
