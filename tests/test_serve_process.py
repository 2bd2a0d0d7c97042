"""``artgraph serve`` as a real process on a free loopback port: streams, restarts, cancels,
the ``submit`` client. Every wait is bounded; a server left behind is killed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from tests.conftest import JOB_SEARCH, JOB_SHEET
from tests.serving import Server, cli


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that need only a running one."""
    from PIL import Image

    data = tmp_path_factory.mktemp("live") / "data"
    (data / "uploads").mkdir(parents=True)
    Image.new("RGB", (12, 8), (30, 90, 200)).save(data / "uploads" / "photo.png")
    (data / "uploads" / "broken.png").write_bytes(b"not a picture at all")
    server = Server(data)
    yield server
    server.kill(signal.SIGTERM)


def test_a_running_jobs_events_stream_live_in_order_and_resume_without_gaps(live):
    job = live.submit(JOB_SEARCH, overrides={"search.generations": 150})
    first = live.events(job, limit=4)  # hang up early, as a dropped connection does
    assert [e["seq"] for e in first] == [1, 2, 3, 4] and first[0]["event"] == "run_start"
    rest = live.events(job, after=first[-1]["seq"])
    seen = first + rest
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))  # no gap, no repeat
    assert seen[-1]["event"] == "run_done" and seen[-1]["ok"] is True
    assert {e["event"] for e in seen} >= {"node_start", "progress", "node_done"}
    assert all(e["run"] == job for e in seen)
    previews = [e for e in seen if e["event"] == "preview"]
    for preview in previews:  # a name the files route serves, not a path of the server
        assert preview["path"].startswith("previews/")
        assert live.http.get(f"/jobs/{job}/files/{preview['path']}").status_code == 200
    assert live.job(job)["status"] == "done"
    assert live.http.get("/health").status_code == 200  # the hung-up stream harmed nothing


def test_cancel_stops_a_running_style_transfer_quickly_and_the_next_job_runs_warm(live):
    transfer = live.submit("style_transfer", overrides={"transfer.steps": 100000, "content.size": 48})
    after = live.submit("style_transfer", overrides={"transfer.steps": 2, "content.size": 48})
    live.wait_for_progress(transfer)
    asked = time.monotonic()
    assert live.http.post(f"/jobs/{transfer}/cancel").json()["status"] == "running"
    ended = live.wait_for(transfer, lambda j: j["status"] != "running", timeout=60)
    took = time.monotonic() - asked
    assert ended["status"] == "cancelled" and ended["report"]["cancelled"] is True
    assert ended["report"]["nodes"]["vgg"]["status"] == "executed"  # what finished is kept
    assert took < 10, f"cancel took {took:.1f}s"  # a sanity bound; it is a fraction of a second here
    nxt = live.wait_for(after, lambda j: j["status"] in ("done", "failed"))
    assert nxt["status"] == "done" and "out/stylized.png" in nxt["files"]
    nodes = nxt["report"]["nodes"]
    # The model was loaded once for the server, not once per job; only the changed node ran.
    assert (nodes["vgg"]["status"], nodes["content"]["status"], nodes["transfer"]["status"]) == (
        "cached",
        "cached",
        "executed",
    )


def test_submit_waits_follows_and_downloads_like_run(live, tmp_path):
    graph = tmp_path / "sheet.yaml"
    graph.write_text(JOB_SHEET)
    done = cli(
        "submit",
        str(graph),
        "--server",
        live.url,
        "--set",
        "small.size=5",
        "--wait",
        "--download",
        str(tmp_path / "got"),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got" / "sheet.png").is_file()
    assert "done save" in done.stderr  # the run's lines, as run prints them

    broken = tmp_path / "broken.yaml"
    broken.write_text(JOB_SHEET.replace("size: 6", "size: -6"))
    invalid = cli("submit", str(broken), "--server", live.url)
    assert invalid.returncode == 2 and f"{broken}:5: node 'small'" in invalid.stderr

    missing = cli("submit", str(graph), "--server", live.url, "--set", "photo.path=uploads/missing.png")
    assert missing.returncode == 2 and "missing.png" in missing.stderr  # checked when submitted
    failing = cli("submit", str(graph), "--server", live.url, "--set", "photo.path=uploads/broken.png", "--wait")
    assert failing.returncode == 1 and "FAILED photo" in failing.stderr and "job" in failing.stderr
    unreachable = cli("submit", str(graph), "--server", "http://127.0.0.1:9", "--wait")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_a_second_server_on_the_same_data_folder_is_refused(live):
    second = cli("serve", "--port", "0", "--data", str(live.data), timeout=120)
    assert second.returncode == 2
    assert f"{live.data} is in use by artgraph serve (pid {live.proc.pid})" in second.stderr
    assert live.http.get("/health").status_code == 200


def test_listening_off_this_machine_needs_a_token(tmp_path):
    refused = cli("serve", "--host", "0.0.0.0", "--port", "0", "--data", str(tmp_path / "d"))
    assert refused.returncode == 2 and "--token" in refused.stderr
    assert "Traceback" not in refused.stderr
    odd = cli("serve", "--port", "0", "--data", str(tmp_path / "d"), "--allow-origin", "art.example.org/x")
    assert odd.returncode == 2 and "--allow-origin" in odd.stderr and "Traceback" not in odd.stderr


def test_kill_9_with_a_running_and_a_queued_job_loses_neither(data):
    server = Server(data)
    try:
        running = server.submit(JOB_SEARCH, overrides={"search.generations": 400}, id="running")
        queued = server.submit(JOB_SHEET, id="queued")
        server.wait_for_progress(running)
    finally:
        server.kill(signal.SIGKILL)  # no chance to tidy up
    again = Server(data)
    try:
        first = again.wait_for(running, lambda j: j["status"] in ("done", "failed", "cancelled"))
        second = again.wait_for(queued, lambda j: j["status"] in ("done", "failed", "cancelled"))
        assert (first["status"], first["attempts"]) == ("done", 2)
        assert (second["status"], second["attempts"]) == ("done", 1)
        assert "out/best.png" in first["files"] and "out/sheet.png" in second["files"]
        events = again.events(running)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert [e["event"] for e in events].count("run_start") == 2  # the interruption shows
        assert events[-1]["event"] == "run_done" and events[-1]["ok"] is True
    finally:
        again.kill(signal.SIGTERM)


def test_a_stopped_server_puts_its_running_job_back_and_runs_it_on_restart(data):
    server = Server(data, "--token", "tok")
    server.http.headers["Authorization"] = "Bearer tok"
    try:
        job = server.submit(JOB_SEARCH, overrides={"search.generations": 100000}, id="paused")
        server.wait_for_progress(job)
    finally:
        server.kill(signal.SIGTERM)
    # uvicorn raises the signal again once it has shut down: the exit status says SIGTERM.
    assert server.proc.returncode == -signal.SIGTERM and "goes back to the queue" in server.stderr()
    again = Server(data, env={"ARTGRAPH_TOKEN": "tok"})
    try:
        assert again.http.get("/jobs").status_code == 401
        again.http.headers["Authorization"] = "Bearer tok"
        resumed = again.wait_for(job, lambda j: j["status"] == "running")
        assert resumed["attempts"] == 1  # a pause on purpose is no interruption
        again.http.post(f"/jobs/{job}/cancel")
        assert again.wait_for(job, lambda j: j["status"] != "running")["status"] == "cancelled"
    finally:
        again.kill(signal.SIGTERM)
