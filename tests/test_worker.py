"""The worker: runs queued jobs in order with a warm cache, records how each ended."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from artgraph.events import read_events
from artgraph.jobstore import CANCELLED, DONE, FAILED, JobStore
from artgraph.worker import Worker
from tests.conftest import JOB_SEARCH as SEARCH
from tests.conftest import JOB_SHEET as SHEET


@pytest.fixture
def store(data: Path):
    jobs = JobStore(data)
    yield jobs
    jobs.close()


def test_jobs_run_in_order_and_the_second_finds_the_cache_warm(store, data):
    worker = Worker(store, data, device="cpu")
    first = store.submit(SHEET)
    second = store.submit(SHEET, {"small.size": 4})
    done = worker.run_one()
    assert done is not None and done.id == first.id and done.status == DONE
    assert (data / "jobs" / first.id / "out" / "sheet.png").is_file()
    events = read_events(data / "jobs" / first.id / "events.jsonl")
    assert events[0]["event"] == "run_start" and events[0]["run"] == first.id and events[-1]["event"] == "run_done"
    again = worker.run_one()
    assert again is not None and again.id == second.id and again.status == DONE
    assert again.report is not None
    nodes = again.report["nodes"]
    assert nodes["photo"]["status"] == "cached"  # loaded once, kept warm across jobs
    assert nodes["small"]["reason"] == "param 'size' changed: 6 -> 4"
    assert worker.run_one() is None


def test_a_job_reading_outside_the_data_folder_fails_without_reading(store, data, tiny_png):
    outside = tiny_png  # a file of the machine, outside the data folder
    job = store.submit(SHEET.replace("uploads/photo.png", str(outside)))
    ended = Worker(store, data, device="cpu").run_one()
    assert ended is not None and ended.id == job.id and ended.status == FAILED
    assert ended.report is not None and ended.report["ok"] is False
    assert "outside the folder this graph may read" in ended.report["problems"][0]["message"]


def test_a_failing_node_fails_its_job_and_keeps_the_report(store, data):
    job = store.submit(SHEET, {"photo.path": "uploads/not-an-image.png"})
    (data / "uploads" / "not-an-image.png").write_text("text, not pixels")
    ended = Worker(store, data, device="cpu").run_one()
    assert ended is not None and ended.status == FAILED
    assert ended.report is not None and ended.report["nodes"]["photo"]["status"] == "failed"
    assert "cannot read image" in (ended.error or "")
    assert job.id == ended.id


def test_cancel_stops_the_running_job_and_the_next_runs(store, data):
    worker = Worker(store, data, device="cpu")
    long = store.submit(SEARCH, job_id="long")
    after = store.submit(SHEET, job_id="after")
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(worker.run_one()))
    thread.start()
    events = data / "jobs" / "long" / "events.jsonl"
    for _ in range(600):  # wait (bounded) until the search reports progress
        if events.exists() and any(e["event"] == "progress" for e in read_events(events)):
            break
        thread.join(0.05)
    assert store.cancel(long.id) == "running"
    thread.join(30)
    assert not thread.is_alive()
    ended = store.get("long")
    assert ended is not None and ended.status == CANCELLED
    assert ended.report is not None and ended.report["cancelled"] is True
    assert store.get("after").status == "queued"  # untouched
    nxt = worker.run_one()
    assert nxt is not None and nxt.id == after.id and nxt.status == DONE


def test_a_job_run_again_appends_to_its_events_numbering_on(store, data):
    """After a crash the job's log keeps the first attempt (its cut-off last line dropped)
    and the second attempt's events follow with higher numbers: a client resuming "after N"
    neither misses nor repeats an event."""
    job = store.submit(SHEET, job_id="again")
    store.claim()  # the first attempt ... whose process died while writing a line
    log = data / "jobs" / "again" / "events.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text(
        '{"event": "run_start", "run": "again", "seq": 1, "time": 0, "graph": "sheet", "nodes": [], "device": "cpu"}\n'
        '{"event": "node_start", "run": "again", "seq": 2, "time": 0, "node": "photo", "type": "image.load", '
        '"index": 1, "total": 3}\n{"event": "node_do'
    )
    assert store.recover() == [job.id]
    ended = Worker(store, data, device="cpu").run_one()
    assert ended is not None and ended.status == DONE and ended.attempts == 2
    events = read_events(log)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["event"] for e in events].count("run_start") == 2 and events[-1]["event"] == "run_done"


def test_a_stopping_worker_puts_its_running_job_back_in_the_queue(store, data):
    worker = Worker(store, data, device="cpu")
    store.submit(SEARCH, job_id="paused")
    thread = threading.Thread(target=worker.run_one)
    thread.start()
    events = data / "jobs" / "paused" / "events.jsonl"
    for _ in range(600):
        if events.exists() and any(e["event"] == "progress" for e in read_events(events)):
            break
        thread.join(0.05)
    worker.stopping.set()  # the server shuts down on purpose
    thread.join(30)
    assert not thread.is_alive()
    paused = store.get("paused")
    assert paused is not None and paused.status == "queued" and paused.attempts == 0
    assert store.claim().id == "paused"  # first in line when the server starts again
