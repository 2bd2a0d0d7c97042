"""The persistent job queue: order, ids, cancel, and what survives a dead process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from artgraph.jobstore import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobStore, JobStoreError

GRAPH = "artgraph: 1\nnodes:\n  a: {type: image.load, params: {path: uploads/a.png}}\n"


@pytest.fixture
def store(tmp_path: Path):
    jobs = JobStore(tmp_path / "data")
    yield jobs
    jobs.close()


def test_jobs_queue_in_order_and_say_where_they_are(store):
    first = store.submit(GRAPH, {"a.size": 32})
    second = store.submit(GRAPH, job_id="mine-2")
    assert first.status == QUEUED and first.overrides == {"a.size": 32} and first.attempts == 0
    assert (store.position(first.id), store.position("mine-2")) == (0, 1)
    claimed = store.claim()
    assert claimed is not None and claimed.id == first.id and claimed.status == RUNNING and claimed.attempts == 1
    assert store.position(first.id) is None and store.position("mine-2") == 0
    store.finish(first.id, DONE, {"ok": True})
    done = store.get(first.id)
    assert done is not None and done.status == DONE and done.report == {"ok": True} and done.finished is not None
    assert [j.id for j in store.find()] == [first.id, second.id]
    assert [j.id for j in store.find(QUEUED)] == ["mine-2"]
    assert store.get("nobody") is None  # unknown is never confused with queued


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 65, "dot.dot", "sp ace", "é"])
def test_client_ids_are_plain_names(store, bad):
    with pytest.raises(JobStoreError) as info:
        store.submit(GRAPH, job_id=bad)
    assert info.value.kind == "invalid"


def test_duplicates_and_a_full_queue_are_refused(store):
    store.submit(GRAPH, job_id="same")
    with pytest.raises(JobStoreError) as dup:
        store.submit(GRAPH, job_id="same")
    assert dup.value.kind == "duplicate"
    store.submit(GRAPH, max_queue=2)
    with pytest.raises(JobStoreError) as full:
        store.submit(GRAPH, max_queue=2)
    assert full.value.kind == "full" and len(store.find(QUEUED)) == 2


def test_cancel_hits_only_its_job(store):
    running = store.submit(GRAPH, job_id="running")
    waiting = store.submit(GRAPH, job_id="waiting")
    other = store.submit(GRAPH, job_id="other")
    assert store.claim().id == running.id
    assert store.cancel(waiting.id) == CANCELLED
    assert store.cancel(running.id) == RUNNING and store.cancel_requested(running.id)
    assert not store.cancel_requested(other.id) and store.get(other.id).status == QUEUED
    assert store.claim().id == other.id  # the cancelled one left the queue
    with pytest.raises(JobStoreError) as unknown:
        store.cancel("nobody")
    assert unknown.value.kind == "unknown"


def test_only_finished_jobs_are_deleted(store):
    job = store.submit(GRAPH)
    with pytest.raises(JobStoreError) as busy:
        store.delete(job.id)
    assert busy.value.kind == "busy"
    store.cancel(job.id)
    store.delete(job.id)
    assert store.get(job.id) is None


def test_a_second_store_on_the_same_folder_is_refused(store, tmp_path):
    with pytest.raises(JobStoreError) as info:
        JobStore(tmp_path / "data")
    assert info.value.kind == "locked" and f"pid {__import__('os').getpid()}" in str(info.value)


def test_jobs_survive_a_restart_and_a_twice_interrupted_job_fails(tmp_path):
    folder = tmp_path / "data"
    jobs = JobStore(folder)
    a = jobs.submit(GRAPH, job_id="a")
    jobs.submit(GRAPH, job_id="b")
    jobs.claim()  # a runs ... and the process "dies"
    jobs.close()
    jobs = JobStore(folder)
    assert jobs.recover() == ["a"]
    assert [(j.id, j.status, j.attempts) for j in jobs.find()] == [("a", QUEUED, 1), ("b", QUEUED, 0)]
    assert jobs.claim().id == a.id  # it keeps its place in the queue
    jobs.close()
    jobs = JobStore(folder)
    assert jobs.recover() == []
    failed = jobs.get("a")
    assert failed is not None and failed.status == FAILED and "interrupted 2 times" in (failed.error or "")
    assert jobs.claim().id == "b"
    jobs.close()


def test_kill_9_leaves_the_queue_whole(tmp_path):
    folder = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import time
        from artgraph.jobstore import JobStore
        jobs = JobStore({str(folder)!r})
        jobs.submit("g", job_id="first")
        jobs.submit("g", job_id="second")
        jobs.claim()
        print("claimed", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    jobs = JobStore(folder)  # the dead process's lock went with it
    try:
        assert jobs.recover() == ["first"]
        assert [(j.id, j.status) for j in jobs.find()] == [("first", QUEUED), ("second", QUEUED)]
    finally:
        jobs.close()


def test_concurrent_submitters_lose_and_duplicate_nothing(store):
    def submit(worker: int) -> None:
        for i in range(25):
            store.submit(GRAPH, job_id=f"w{worker}-{i}")

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(8)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert time.monotonic() - start < 60
    ids = [j.id for j in store.find(limit=1000)]
    assert len(ids) == 200 == len(set(ids))
    claimed = set()
    while (job := store.claim()) is not None:
        claimed.add(job.id)
    assert claimed == set(ids)


def test_find_gives_the_newest_jobs_in_submission_order(store):
    for n in range(5):
        store.submit(GRAPH, job_id=f"j{n}")
    assert [j.id for j in store.find(limit=2)] == ["j3", "j4"]
    assert store.count(QUEUED) == 5


def test_release_puts_a_running_job_back_without_counting_the_attempt(store):
    store.submit(GRAPH, job_id="a")
    store.submit(GRAPH, job_id="b")
    assert store.claim().id == "a"
    store.release("a")
    again = store.get("a")
    assert again is not None and (again.status, again.attempts, again.started) == (QUEUED, 0, None)
    assert store.claim().id == "a"
    store.cancel("a")  # asked to stop by a client: a release must not undo that
    store.release("a")
    assert store.get("a").status == "running" and store.cancel_requested("a")
