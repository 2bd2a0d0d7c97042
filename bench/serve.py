"""``artgraph serve`` under load, and what a warm server saves over a fresh ``artgraph run``.

Everything runs on loopback: each server is a real ``artgraph serve --port 0``
process on a fresh data folder, its address read from the first line it prints
(as tests/test_serve_process.py starts one). Every wait has a timeout, and every
server the bench starts is stopped (SIGTERM, then SIGKILL) whatever happens.

Load (one server). A small PNG is uploaded with ``POST /files``; the job is the
tests' sheet graph: ``image.load`` of the upload -> ``image.resize`` -> ``image.save``,
job i with ``small.size = 4 + i`` so that resize and save run in every job (the
warm worker keeps the loaded photo cached). First the reference, on the idle
server: 10 jobs submitted one at a time, each waited for (their submit
latency), then 50 ``GET /jobs/{id}`` and 50 ``GET /health``. Then 200 jobs from
8 client threads (their own httpx client each), released together: a client
submits a job, asks its status once, and once all of its jobs are in it polls
their status (one request every 0.1 s) until each has ended. 20 listener
threads take the submitted ids in turn and follow each job's
``GET /jobs/{id}/events`` stream to its end, so every job is followed by one
listener while the jobs queue and run. Checked afterwards (a failed check is
reported and the bench exits 1, after printing its line):

* none lost: every submitted id is ``done``, ran once (``attempts == 1``) and wrote
  ``out/sheet.png``; none duplicated: the ids the server gave are distinct, and
  ``GET /jobs`` lists each exactly once and nothing else;
* every event: the listener of each job saw seq 1..N with no gap or repeat, one
  ``run_start``, ``run_done`` (ok) last, every event naming the job; and N is the
  number of events in the job's ``events.jsonl`` (fetched through the files route).

Warm-server gain (repeated, each time with a fresh server and data folder).
The shipped ``style_transfer`` example at a small size: a first job
(``transfer.steps=2``) loads VGG and the images into the warm worker; then the
same graph with one param changed (``transfer.steps=5``), timed from ``POST /jobs``
to the status ``done`` (polled every 20 ms). The reference is the same graph and
overrides as a fresh process, ``artgraph run style_transfer --set ... --no-cache``
(imports, VGG weights, images, the transfer, the PNG: really cold). Both run while
nothing else of the bench does, in alternating order from one repeat to the next.

Prints exactly one JSON line on stdout; progress goes to stderr. Timings are
reported, never asserted. See docs/benchmarks.md for what each figure means.

Run: ``.venv/bin/python bench/serve.py`` (about 2 minutes on 2 cores; ``--quick``:
40 jobs, 4 clients, 5 listeners, one warm-server repeat).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from machine import load, machine  # bench/machine.py: where a bench ran

from artgraph.client import parse_sse

#: Seconds for a server to print its address (it imports torch and the node library).
START_TIMEOUT = 120.0
#: Seconds for any one HTTP request but an event stream.
REQUEST_TIMEOUT = 30.0
#: Seconds the event streams may stay silent (a queued job sends nothing for a while).
STREAM_READ_TIMEOUT = 120.0
#: Seconds for the whole load phase, and for one style-transfer job or run.
LOAD_TIMEOUT = 180.0
STYLE_TIMEOUT = 240.0
#: How often a client polls the status of its jobs once they are all submitted (seconds).
CLIENT_POLL = 0.1
#: How often the warm-server measurement polls its job's status (seconds).
WARM_POLL = 0.02

SHEET = """\
artgraph: 1
name: sheet
nodes:
  photo: {{type: image.load, params: {{path: {path}}}}}
  small: {{type: image.resize, inputs: {{image: photo.image}}, params: {{size: 6}}}}
  save: {{type: image.save, inputs: {{image: small.image}}, params: {{path: sheet.png}}}}
"""

#: The warm-server graph: the shipped example, small; ``steps`` is the one param changed.
STYLE = "style_transfer"
STYLE_SIZE = 96
FIRST_STEPS, TIMED_STEPS = 2, 5

FULL = {"jobs": 200, "clients": 8, "listeners": 20, "reference_jobs": 10, "repeats": 3}
QUICK = {"jobs": 40, "clients": 4, "listeners": 5, "reference_jobs": 3, "repeats": 1}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1e3, 2)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, linearly interpolated."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = (len(ordered) - 1) * q
    lo = int(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)


def latency(seconds: list[float]) -> dict[str, Any]:
    """p50, p95 and max of request times, in milliseconds, and how many there were."""
    return {
        "n": len(seconds),
        "p50_ms": ms(percentile(seconds, 0.5)),
        "p95_ms": ms(percentile(seconds, 0.95)),
        "max_ms": ms(max(seconds)) if seconds else None,
    }


def health_on_a_new_connection(url: str) -> float:
    """Seconds for ``GET /health`` on a connection of its own (connect, ask, read, close).

    The reference for the kept-alive requests: a first exchange on a TCP connection
    never waits for a delayed acknowledgement, a later one can.
    """
    import http.client

    host, port = url.removeprefix("http://").rsplit(":", 1)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", "/health")
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET /health answered {answer.status}")
    finally:
        connection.close()
    return time.perf_counter() - start


def tiny_png() -> bytes:
    """A 12x8 RGB gradient PNG (the tests' ``tiny_png``)."""
    from PIL import Image

    img = Image.new("RGB", (12, 8))
    img.putdata([(x * 20, y * 30, 100) for y in range(8) for x in range(12)])
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


# -- one server ------------------------------------------------------------------------


class Server:
    """One ``artgraph serve --port 0`` on a data folder of its own; :meth:`stop` always ends it."""

    def __init__(self, data: Path, device: str) -> None:
        self.data = data
        data.mkdir(parents=True)
        self.stderr_path = data.parent / f"{data.name}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "artgraph.cli", "serve", "--port", "0", "--data", str(data), "--device", device],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=data.parent,
            start_new_session=True,  # a Ctrl-C of the bench reaches the bench; it stops the server itself
        )
        try:
            line = self._first_line(started + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - started
        if not line.startswith("artgraph serve: http://127.0.0.1:"):
            self.stop()
            raise SystemExit(f"the server did not start: {line!r}\n{self.stderr_tail()}")
        self.url = line.split()[-1]
        self.http = httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT)

    def _first_line(self, deadline: float) -> str:
        assert self.proc.stdout is not None
        fd, got = self.proc.stdout.fileno(), b""
        while b"\n" not in got:
            left = deadline - time.perf_counter()
            if left <= 0 or self.proc.poll() is not None:
                break
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                got += chunk
        return got.decode(errors="replace").split("\n", 1)[0].strip()

    def stderr_tail(self, chars: int = 2000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (a running job goes back to the queue), SIGKILL if it is still there after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        if hasattr(self, "http"):
            self.http.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, http: httpx.Client, graph: str, overrides: dict[str, Any]) -> tuple[str, float]:
        """The new job's id and the seconds ``POST /jobs`` took."""
        start = time.perf_counter()
        answer = http.post("/jobs", json={"graph": graph, "overrides": overrides})
        took = time.perf_counter() - start
        if answer.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text[:500]}")
        return str(answer.json()["id"]), took

    def wait_done(self, job_id: str, timeout: float, poll: float) -> dict[str, Any]:
        """The job once it has ended (done, failed or cancelled); RuntimeError after ``timeout``."""
        deadline = time.perf_counter() + timeout
        while True:
            job = self.http.get(f"/jobs/{job_id}").json()
            if job["status"] in ("done", "failed", "cancelled"):
                return dict(job)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"job {job_id} still {job['status']} after {timeout:.0f}s")
            time.sleep(poll)


# -- load: many small jobs, clients and listeners --------------------------------------


class Load:
    """The shared record of one load run (lists and dicts: appends are atomic under the GIL)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[int, str]] = []  # (job number, id)
        self.submit_s: list[float] = []
        self.status_s: list[float] = []
        self.final: dict[str, str] = {}  # id -> the status its client last saw
        self.events: dict[str, list[dict[str, Any]]] = {}  # id -> what its listener saw
        self.followed_by: collections.Counter[str] = collections.Counter()
        self.listener_jobs: list[int] = []
        self.errors: list[str] = []
        self.to_follow: queue.Queue[str | None] = queue.Queue()


def client_thread(
    server: Server, graph: str, numbers: list[int], record: Load, start: threading.Barrier, deadline: float
) -> None:
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        try:
            start.wait(timeout=60)
            mine: list[str] = []
            for i in numbers:
                job_id, took = server.submit(http, graph, {"small.size": 4 + i})
                record.submit_s.append(took)
                record.submitted.append((i, job_id))
                record.to_follow.put(job_id)
                mine.append(job_id)
                status(http, job_id, record)
            pending = collections.deque(mine)
            while pending:
                if time.perf_counter() > deadline:
                    record.errors.append(f"client: {len(pending)} jobs had not ended by the deadline")
                    return
                job_id = pending.popleft()
                job = status(http, job_id, record)
                if job["status"] in ("done", "failed", "cancelled"):
                    record.final[job_id] = job["status"]
                else:
                    pending.append(job_id)
                time.sleep(CLIENT_POLL)
        except Exception as exc:  # reported with the figures, not a traceback per thread
            record.errors.append(f"client: {type(exc).__name__}: {exc}")


def status(http: httpx.Client, job_id: str, record: Load) -> dict[str, Any]:
    start = time.perf_counter()
    answer = http.get(f"/jobs/{job_id}")
    record.status_s.append(time.perf_counter() - start)
    if answer.status_code != 200:
        raise RuntimeError(f"GET /jobs/{job_id} answered {answer.status_code}: {answer.text[:300]}")
    return dict(answer.json())


def listener_thread(server: Server, record: Load, deadline: float) -> None:
    timeout = httpx.Timeout(REQUEST_TIMEOUT, read=STREAM_READ_TIMEOUT)
    followed = 0
    with httpx.Client(base_url=server.url, timeout=timeout) as http:
        while True:
            try:
                job_id = record.to_follow.get(timeout=max(1.0, deadline - time.perf_counter()))
            except queue.Empty:
                record.errors.append("listener: no job and no end of the queue by the deadline")
                break
            if job_id is None:
                break
            followed += 1
            record.followed_by[job_id] += 1
            seen: list[dict[str, Any]] = []
            record.events[job_id] = seen
            try:
                with http.stream("GET", f"/jobs/{job_id}/events") as response:
                    if response.status_code != 200:
                        raise RuntimeError(f"answered {response.status_code}")
                    for event in parse_sse(response.iter_lines()):
                        seen.append(event)
                        if time.perf_counter() > deadline:
                            raise RuntimeError("still streaming at the deadline")
            except Exception as exc:
                record.errors.append(f"listener of {job_id}: {type(exc).__name__}: {exc}")
    record.listener_jobs.append(followed)


def check_events(job_id: str, seen: list[dict[str, Any]], logged: list[int]) -> list[str]:
    """What is wrong with the events a listener saw of one job ([] when nothing)."""
    problems = []
    seqs = [e.get("seq") for e in seen]
    if seqs != list(range(1, len(seen) + 1)):
        problems.append(f"{job_id}: seq {seqs} is not 1..{len(seen)}")
    if seqs != logged:
        problems.append(f"{job_id}: the stream gave seq {seqs}, events.jsonl holds {logged}")
    names = [e.get("event") for e in seen]
    if names.count("run_start") != 1 or not seen or names[-1] != "run_done" or seen[-1].get("ok") is not True:
        problems.append(f"{job_id}: events {names} are not one run_start ... run_done (ok)")
    if any(e.get("run") != job_id for e in seen):
        problems.append(f"{job_id}: an event names another run")
    return problems


def load_run(folder: Path, device: str, plan: dict[str, int]) -> dict[str, Any]:
    """The load figures and their checks, from one fresh server."""
    jobs, clients, listeners = plan["jobs"], plan["clients"], plan["listeners"]
    with Server(folder / "load", device) as server:
        upload = server.http.post("/files", files={"file": ("photo.png", tiny_png(), "image/png")})
        if upload.status_code != 201:
            raise SystemExit(f"POST /files answered {upload.status_code}: {upload.text}")
        graph = SHEET.format(path=upload.json()["path"])

        # Reference, on the idle server: one job at a time, then plain reads.
        log(f"serve: reference, {plan['reference_jobs']} jobs one at a time on the idle server ...")
        reference_ids, reference_submit = [], []
        for n in range(plan["reference_jobs"]):
            job_id, took = server.submit(server.http, graph, {"small.size": 3 + n % 2})
            reference_submit.append(took)
            reference_ids.append(job_id)
            job = server.wait_done(job_id, 60, 0.05)
            if job["status"] != "done":
                raise SystemExit(f"the reference job {job_id} ended {job['status']}: {job.get('error')}")
        idle_status, idle_health, idle_health_new = [], [], []
        for _ in range(50):
            start = time.perf_counter()
            server.http.get(f"/jobs/{reference_ids[-1]}").raise_for_status()
            idle_status.append(time.perf_counter() - start)
            start = time.perf_counter()
            server.http.get("/health").raise_for_status()
            idle_health.append(time.perf_counter() - start)
            idle_health_new.append(health_on_a_new_connection(server.url))

        log(f"serve: {jobs} jobs from {clients} clients, {listeners} listeners ...")
        record = Load()
        deadline = time.perf_counter() + LOAD_TIMEOUT
        start_all = threading.Barrier(clients + 1)
        submitters = [
            threading.Thread(
                target=client_thread,
                args=(server, graph, list(range(c, jobs, clients)), record, start_all, deadline),
                name=f"client-{c}",
                daemon=True,
            )
            for c in range(clients)
        ]
        followers = [
            threading.Thread(target=listener_thread, args=(server, record, deadline), name=f"listener-{n}", daemon=True)
            for n in range(listeners)
        ]
        for thread in followers + submitters:
            thread.start()
        start_all.wait(timeout=60)
        began, began_clock = time.perf_counter(), time.time()
        for thread in submitters:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()) + 5)
        for _ in followers:
            record.to_follow.put(None)  # no more jobs: each listener ends after its current one
        for thread in followers:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()) + 5)
        wall = time.perf_counter() - began
        stuck = [t.name for t in submitters + followers if t.is_alive()]
        if stuck:
            record.errors.append(f"threads still running at the deadline: {', '.join(stuck)}")
        log(f"  {wall:.1f}s; checking ...")

        # Checks: from the server's own records, after the run.
        ids = [job_id for _, job_id in record.submitted]
        problems = list(record.errors)
        listing = server.http.get("/jobs", params={"limit": 1000}).json()["jobs"]
        listed = collections.Counter(j["id"] for j in listing)
        by_id = {j["id"]: j for j in listing}
        expected = set(ids) | set(reference_ids)
        lost = [i for i in ids if by_id.get(i, {}).get("status") != "done"]
        not_once = [i for i in ids if by_id.get(i, {}).get("attempts") != 1]
        no_png = [i for i in ids if "out/sheet.png" not in by_id.get(i, {}).get("files", ())]
        if len(ids) != jobs:
            problems.append(f"{len(ids)} jobs were submitted, not {jobs}")
        if len(set(ids)) != len(ids):
            problems.append("the server gave one id to two jobs")
        if any(n != 1 for n in listed.values()) or set(listed) != expected:
            extra = sorted(set(listed) - expected)[:5]
            missing = sorted(expected - set(listed))[:5]
            twice = sorted(i for i, n in listed.items() if n != 1)[:5]
            problems.append(f"GET /jobs: missing {missing}, not ours {extra}, listed more than once {twice}")
        for label, bad in (("not done", lost), ("not run exactly once", not_once), ("without out/sheet.png", no_png)):
            if bad:
                problems.append(f"{len(bad)} jobs {label}: {bad[:5]}")
        if [i for i in ids if record.final.get(i) != "done"]:
            problems.append("a client did not see all of its jobs done")
        if any(record.followed_by[i] != 1 for i in ids):
            problems.append("not every job was followed by exactly one listener")
        out_of_order = 0
        for job_id in ids:
            lines = server.http.get(f"/jobs/{job_id}/files/events.jsonl").text.splitlines()
            logged = [json.loads(line).get("seq") for line in lines if line.strip()]
            wrong = check_events(job_id, record.events.get(job_id, []), logged)
            out_of_order += bool(wrong)
            problems += wrong
        events_per_job = [len(record.events.get(i, [])) for i in ids]

        # Server-side times of the loaded jobs (the server's clock, this machine's).
        ran = [by_id[i] for i in ids if by_id.get(i, {}).get("finished")]
        run_s = [j["finished"] - j["started"] for j in ran]
        queued_s = [j["started"] - j["created"] for j in ran]
        ended = max((j["finished"] for j in ran), default=began_clock)
        return {
            "jobs": jobs,
            "clients": clients,
            "listeners": listeners,
            "server_start_s": round(server.start_s, 2),
            "wall_s": round(wall, 2),
            "jobs_per_s": round(jobs / wall, 1),
            "submit": latency(record.submit_s),
            "status": latency(record.status_s),
            "job_run": latency(run_s),
            "job_queued": latency(queued_s),
            "worker_busy_share": round(sum(run_s) / max(ended - began_clock, 1e-9), 2),
            "events_per_job": [min(events_per_job, default=0), max(events_per_job, default=0)],
            "events_checked": sum(events_per_job),
            "jobs_per_listener": [min(record.listener_jobs, default=0), max(record.listener_jobs, default=0)],
            "reference_idle": {
                "jobs": len(reference_ids),
                "submit": latency(reference_submit),
                "status": latency(idle_status),
                "health": latency(idle_health),
                "health_new_connection": latency(idle_health_new),
            },
            "checks": {
                "submitted": len(ids),
                "distinct_ids": len(set(ids)),
                "listed": sum(listed[i] for i in ids),
                "done_once": len(ids) - len(set(lost) | set(not_once)),
                "events_complete_in_order": len(ids) - out_of_order,
                "problems": problems[:20],
                "problem_count": len(problems),
                "ok": not problems,
            },
        }


# -- the warm server against a fresh process -------------------------------------------


def artgraph_command() -> list[str]:
    """The ``artgraph`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("artgraph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "artgraph.cli"]


def style_overrides(steps: int) -> dict[str, Any]:
    return {"transfer.steps": steps, "content.size": STYLE_SIZE}


def cold_run(folder: Path, device: str) -> tuple[float, dict[str, Any], list[str]]:
    """Wall seconds of ``artgraph run`` of the timed graph in a new process, its report, its problems."""
    out = folder / "out"
    cmd = [*artgraph_command(), "run", STYLE, "--no-cache", "--json", "--device", device, "--out", str(out)]
    for key, value in style_overrides(TIMED_STEPS).items():
        cmd += ["--set", f"{key}={value}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=STYLE_TIMEOUT, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        return took, {}, [f"artgraph run exited {done.returncode}: {done.stderr[-1000:]}"]
    report = json.loads(done.stdout)
    problems = []
    if not report.get("ok") or not (out / "stylized.png").is_file():
        problems.append("artgraph run did not write stylized.png")
    return took, report, problems


def warm_job(server: Server, steps: int) -> tuple[float, dict[str, Any]]:
    """Seconds from ``POST /jobs`` to the status ``done`` seen, and the job."""
    start = time.perf_counter()
    job_id, _ = server.submit(server.http, STYLE, style_overrides(steps))
    job = server.wait_done(job_id, STYLE_TIMEOUT, WARM_POLL)
    return time.perf_counter() - start, job


def statuses(report: dict[str, Any] | None) -> dict[str, str]:
    return {name: str(n.get("status")) for name, n in ((report or {}).get("nodes") or {}).items()}


def same_picture(server: Server, job_id: str, cold_png: Path) -> float | None:
    """The largest difference of one 8-bit channel between the server's stylized.png and the cold run's."""
    import numpy as np
    from PIL import Image

    answer = server.http.get(f"/jobs/{job_id}/files/out/stylized.png")
    if answer.status_code != 200 or not cold_png.is_file():
        return None
    with Image.open(io.BytesIO(answer.content)) as warm, Image.open(cold_png) as cold:
        if warm.size != cold.size:
            return None
        a = np.asarray(warm.convert("RGB"), dtype=np.int16)
        b = np.asarray(cold.convert("RGB"), dtype=np.int16)
    return float(np.abs(a - b).max())


def warm_repeat(folder: Path, device: str, repeat: int) -> dict[str, Any]:
    """One fresh server: a first style job, then the timed one and the cold process (order alternating)."""
    problems: list[str] = []
    cold_folder = folder / f"cold-{repeat}"
    cold_folder.mkdir()
    with Server(folder / f"warm-{repeat}", device) as server:
        log(f"serve: warm server {repeat + 1}: first job (transfer.steps={FIRST_STEPS}) ...")
        first_s, first = warm_job(server, FIRST_STEPS)
        if first["status"] != "done":
            problems.append(f"the first style job ended {first['status']}: {first.get('error')}")
        order = ("cold", "warm") if repeat % 2 == 0 else ("warm", "cold")
        for which in order:
            log(f"  {which} (transfer.steps={TIMED_STEPS}) ...")
            if which == "cold":
                cold_s, cold_report, wrong = cold_run(cold_folder, device)
                problems += wrong
            else:
                warm_s, job = warm_job(server, TIMED_STEPS)
        nodes = statuses(job.get("report"))
        if job["status"] != "done":
            problems.append(f"the timed style job ended {job['status']}: {job.get('error')}")
        elif any(nodes.get(n) != "cached" for n in ("content", "style", "vgg")) or nodes.get("transfer") != "executed":
            problems.append(f"the timed style job did not find its model and images cached: {nodes}")
        if statuses(cold_report).get("vgg") not in (None, "executed"):
            problems.append(f"artgraph run --no-cache did not load VGG: {statuses(cold_report)}")
        difference = same_picture(server, job["id"], cold_folder / "out" / "stylized.png")
    return {
        "order": list(order),
        "server_start_s": round(server.start_s, 2),
        "first_job_s": round(first_s, 2),
        "warm_job_s": round(warm_s, 3),
        "cold_run_s": round(cold_s, 2),
        "ratio": round(cold_s / warm_s, 1),
        "warm_nodes": nodes,
        "warm_node_s": {n: r.get("seconds") for n, r in (job.get("report") or {}).get("nodes", {}).items()},
        "cold_node_s": {n: r.get("seconds") for n, r in (cold_report.get("nodes") or {}).items()},
        "max_pixel_difference": difference,
        "problems": problems,
    }


def warm_figures(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    warm = min(r["warm_job_s"] for r in repeats)
    cold = min(r["cold_run_s"] for r in repeats)
    return {
        "graph": STYLE,
        "overrides_first": style_overrides(FIRST_STEPS),
        "overrides_timed": style_overrides(TIMED_STEPS),
        "warm_job_s": warm,
        "cold_run_s": cold,
        "ratio": round(cold / warm, 1),
        "saved_s": round(cold - warm, 2),
        "repeats": repeats,
        "ok": not any(r["problems"] for r in repeats),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 jobs, 4 clients, 5 listeners, one warm repeat")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--no-load", action="store_true", help="skip the load run")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-server measurement")
    args = parser.parse_args(argv)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    plan = QUICK if args.quick else FULL
    # A SIGTERM ends the bench through its finally blocks, which stop the servers it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    load_start = load()
    figures: dict[str, Any] = {"bench": "serve", "mode": "quick" if args.quick else "full"}
    with tempfile.TemporaryDirectory(prefix="artgraph-bench-serve-") as tmp:
        folder = Path(tmp)
        if not args.no_load:
            figures["load"] = load_run(folder, device, plan)
            figures["load_after_load_run"] = load()
        if not args.no_warm:
            figures["warm"] = warm_figures([warm_repeat(folder, device, r) for r in range(plan["repeats"])])
    ok = figures.get("load", {}).get("checks", {}).get("ok", True) and figures.get("warm", {}).get("ok", True)
    figures.update(
        {
            "ok": ok,
            "machine": machine(device),
            "load_start": load_start,
            "load_end": load(),
            "units": {
                "*_ms": "milliseconds per HTTP request, measured by the client (p50, p95, max)",
                "*_s": "wall seconds",
                "load.submit / load.status": "POST /jobs, GET /jobs/{id} while load.clients clients and load.listeners "
                "streams run",
                "load.reference_idle": "the same requests on the idle server, one at a time "
                "(health_new_connection: a new TCP connection per request, the others keep theirs alive)",
                "load.job_run / job_queued": "server records: started->finished, created->started (ms)",
                "load.worker_busy_share": "the loaded jobs' run time / (first submit -> last finished)",
                "warm.warm_job_s": "POST /jobs -> status done seen, second job on a warm server (best of repeats)",
                "warm.cold_run_s": "a fresh artgraph run --no-cache of the same graph (best of repeats)",
                "warm.ratio": "cold_run_s / warm_job_s; warm.saved_s: cold_run_s - warm_job_s",
            },
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(figures))
    if not ok:
        log("serve: a check failed; see 'problems' in the JSON line")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
