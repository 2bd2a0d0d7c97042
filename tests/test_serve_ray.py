"""``artgraph serve --executor ray``: the server's workers are Ray actors (CPU-only here)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("ray")

from artgraph.jobstore import FAILED, QUEUED, JobStore
from artgraph.worker import Worker, WorkerLost
from tests.conftest import JOB_SEARCH, JOB_SHEET
from tests.serving import Server, cli


def test_a_server_fronting_ray_runs_jobs_side_by_side_and_cancels_one(data):
    server = Server(data, "--executor", "ray", "--workers", "2")
    try:
        assert "2 Ray workers (cpu)" in server.stderr()
        long = server.submit(JOB_SEARCH, id="long")
        server.wait_for_progress(long)
        quick = server.submit(JOB_SHEET, id="quick")  # the other actor takes it at once
        done = server.wait_for(quick, lambda j: j["status"] in ("done", "failed"))
        assert done["status"] == "done" and "out/sheet.png" in done["files"]
        assert server.job(long)["status"] == "running"
        server.http.post(f"/jobs/{long}/cancel")
        ended = server.wait_for(long, lambda j: j["status"] != "running", timeout=60)
        assert ended["status"] == "cancelled" and ended["report"]["cancelled"] is True
        again = server.submit(JOB_SHEET, overrides={"small.size": 4})
        warm = server.wait_for(again, lambda j: j["status"] in ("done", "failed"))
        assert warm["status"] == "done"
        events = server.events(long)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)) and events[-1]["event"] == "run_done"
    finally:
        server.kill(signal.SIGTERM)


def test_ray_flags_are_checked_before_anything_starts(tmp_path):
    local = cli("serve", "--port", "0", "--data", str(tmp_path / "d"), "--workers", "2", timeout=60)
    assert local.returncode == 2 and "--executor ray" in local.stderr
    nowhere = cli(
        "serve", "--port", "0", "--data", str(tmp_path / "d"), "--executor", "ray", "--address", "127.0.0.1:9",
        timeout=60,
    )  # fmt: skip
    assert nowhere.returncode == 2 and "cannot reach the Ray cluster" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr


class _Dies:
    """A runner whose process dies under every job (a Ray actor killed, its node lost)."""

    def run(self, job, stop):
        raise WorkerLost("its Ray worker died: RayActorError")


def test_a_job_whose_worker_dies_is_queued_again_then_failed(tmp_path: Path):
    store = JobStore(tmp_path / "data")
    try:
        job = store.submit(JOB_SHEET, job_id="unlucky")
        worker = Worker(store, tmp_path / "data", runner=_Dies())
        assert worker.run_one().status == QUEUED  # once: it runs again
        ended = worker.run_one()
        assert ended.id == job.id and ended.status == FAILED and "interrupted 2 times" in (ended.error or "")
        assert "Ray worker died" in (ended.error or "")
    finally:
        store.close()
