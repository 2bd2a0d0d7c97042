"""A real ``artgraph serve`` (or ``artgraph view``) process for tests: started on a free loopback
port, its address read from its first line, every wait bounded, killed at the end."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from artgraph.client import parse_sse
from tests.conftest import JOB_SHEET

START_TIMEOUT = 60.0


class Server:
    """One ``artgraph serve --port 0`` process; ``url`` is read from its first line."""

    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None, port: int = 0) -> None:
        self.data = data
        data.parent.mkdir(parents=True, exist_ok=True)
        # A file, not a pipe nobody reads while the server runs (a full pipe would block it).
        self._stderr = tempfile.TemporaryFile("w+", dir=data.parent)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "artgraph.cli",
                "serve",
                "--port",
                str(port),
                "--data",
                str(data),
                "--device",
                "cpu",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("artgraph serve: http://127.0.0.1:"):
            self.kill()
            raise AssertionError(f"the server did not start: {line!r} {self.stderr()}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def stderr(self) -> str:
        """What the server printed on stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read()

    def submit(self, graph: Any = JOB_SHEET, **body: Any) -> str:
        answer = self.http.post("/jobs", json={"graph": graph, **body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/jobs/{job_id}").json())

    def wait_for(self, job_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if check(job):
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not get there in {timeout}s: {self.job(job_id)}")

    def wait_for_progress(self, job_id: str, timeout: float = 120) -> None:
        log = self.data / "jobs" / job_id / "events.jsonl"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and '"event": "progress"' in log.read_text():
                return
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} reported no progress in {timeout}s")

    def events(self, job_id: str, after: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The job's events as a client streams them (the first ``limit`` only, then hang up)."""
        params = {"after": after} if after is not None else {}
        seen: list[dict[str, Any]] = []
        timeout = httpx.Timeout(30, read=60)
        with self.http.stream("GET", f"/jobs/{job_id}/events", params=params, timeout=timeout) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            for event in parse_sse(response.iter_lines()):
                seen.append(event)
                if limit is not None and len(seen) >= limit:
                    break
        return seen

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if hasattr(self, "http"):
            self.http.close()


def cli(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artgraph.cli", *argv], capture_output=True, text=True, timeout=timeout
    )
