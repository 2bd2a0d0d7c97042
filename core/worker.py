"""The worker behind ``artgraph serve``: runs queued jobs one at a time, keeping caches warm.

One worker per device claims the oldest queued job from the :class:`JobStore`,
runs its graph in this process — so models (VGG, a generator) and results stay
in the in-memory cache from one job to the next — and records how it ended.
Each job has a folder under the data folder::

    DATA/jobs/ID/events.jsonl   the run's events (artgraph.events), one JSON line each
    DATA/jobs/ID/previews/      the newest preview of each node
    DATA/jobs/ID/out/           what the graph writes (its --out)

A job's graph is someone else's: its input paths resolve inside the data folder
and may not leave it (``uploads/NAME`` for uploaded files); a shipped example
reads only its own folder. A job asked to stop (:meth:`JobStore.cancel`) stops
at its running node's next progress step. A job run again (after the server
died, or stopped on purpose) appends to its events, numbering on, so a client
following them sees the interruption and misses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cache import Cache
from .errors import GraphError
from .events import RunEvents, appended_log
from .jobstore import CANCELLED, DONE, FAILED, Job, JobStore
from .plugins import Registry

_log = logging.getLogger("artgraph.worker")

#: How often a running job asks the store whether it was cancelled, at most (seconds).
CANCEL_POLL = 0.2


#: What a job's run ends as: (status, the run --json report, an error line).
Outcome = tuple[str, "dict[str, Any] | None", "str | None"]


class WorkerLost(Exception):
    """The process running a job went away (a Ray actor killed, out of memory, its node lost)."""


class JobRunner:
    """Runs jobs of one data folder on one device, one at a time; one :class:`Cache` for its
    whole life. It lives in the server's process (the ``local`` executor) or inside a Ray
    actor (artgraph.rayjobs), which then writes into the same, shared, data folder."""

    def __init__(
        self, data: str | Path, *, device: str = "auto", registry: Registry | None = None, cache: Cache | None = None
    ) -> None:
        self.data, self.device, self.registry = Path(data), device, registry
        self.cache = cache if cache is not None else Cache(disk=self.data / "cache")

    def job_dir(self, job_id: str) -> Path:
        return self.data / "jobs" / job_id

    def run(self, job: Job, stop: Callable[[], bool]) -> Outcome:
        """Run ``job`` to its end, or until ``stop()`` says so; never raises for the job's faults."""
        folder = self.job_dir(job.id)
        try:
            with appended_log(folder / "events.jsonl", run_id=job.id, preview_dir=folder / "previews") as events:
                return self._run(job, folder, events, stop)
        except Exception as exc:  # a bug of ours: the job fails, the worker goes on
            _log.exception("job %s crashed the worker's run", job.id)
            return FAILED, None, f"internal error: {type(exc).__name__}: {exc}"

    def _run(self, job: Job, folder: Path, events: RunEvents, stop: Callable[[], bool]) -> Outcome:
        try:
            graph = job_graph(job.graph, job.example, self.data, self.registry)
            result = graph.run(
                device=self.device,
                overrides=job.overrides,
                cache=self.cache,
                out_dir=folder / "out",
                events=events,
                cancel=stop,
                raise_on_failure=False,
            )
        except GraphError as exc:  # validated when submitted; a file may have gone since
            problems = [p.to_dict() for p in exc.problems]
            return FAILED, {"ok": False, "problems": problems}, "; ".join(str(p) for p in exc.problems)
        report = result.to_json()
        if result.cancelled:
            return CANCELLED, report, None
        return (DONE, report, None) if result.ok else (FAILED, report, "; ".join(result.failures))


class Worker:
    """Claims jobs from the store one at a time and has its runner run them."""

    def __init__(
        self,
        store: JobStore,
        data: str | Path,
        *,
        device: str = "auto",
        registry: Registry | None = None,
        cache: Cache | None = None,
        runner: Any = None,
    ) -> None:
        self.store, self.data = store, Path(data)
        #: Has ``run(job, stop) -> Outcome``: a :class:`JobRunner` here, or a Ray actor's proxy.
        self.runner = runner if runner is not None else JobRunner(data, device=device, registry=registry, cache=cache)
        #: Set to stop: the running job pauses at its next step and goes back to the queue.
        self.stopping = threading.Event()
        #: Set when a job is queued, so an idle worker starts it at once rather than at its next look.
        self.wake = threading.Event()

    def run_one(self) -> Job | None:
        """Run the oldest queued job to its end; None when none waits."""
        job = self.store.claim()
        if job is None:
            return None
        try:
            status, report, error = self.runner.run(job, _Poll(self.store, job.id, self.stopping))
        except WorkerLost as exc:
            self.store.interrupted(job.id, str(exc))  # queued again, or failed if it keeps happening
            return self.store.get(job.id)
        if status == CANCELLED and self.stopping.is_set() and not self.store.cancel_requested(job.id):
            self.store.release(job.id)  # paused by a shutdown, not cancelled by anyone
        else:
            self.store.finish(job.id, status, report, error)
        return self.store.get(job.id)

    def run_forever(self, idle: float = 1.0) -> None:
        """Run jobs until :attr:`stopping` is set; with none queued, wait until woken (or
        ``idle`` seconds, for jobs queued by someone who does not wake it)."""
        while not self.stopping.is_set():
            if self.run_one() is None:
                self.wake.wait(idle)
                self.wake.clear()


def job_graph(text: str, example: str | None, data: Path, registry: Registry | None) -> Any:
    """A job's graph, loaded as someone else's: a submitted one reads only inside the data
    folder, a shipped example only its own folder. Not validated (``plan`` does that)."""
    from .api import examples_folder, load_graph

    return load_graph(
        # One name for every submitted graph: problems read "graph.yaml:LINE", and jobs of
        # the same graph share the ledger, so a report says why a node re-ran.
        example or "graph.yaml",
        text=text,
        base_dir=examples_folder() if example else data,
        validate=False,
        confine_inputs=True,
        registry=registry,
    )


class _Poll:
    """Whether a job should stop: cancelled (asking the store at most every ``CANCEL_POLL``
    seconds) or the worker stopping."""

    def __init__(self, store: JobStore, job_id: str, stopping: threading.Event) -> None:
        self.store, self.job_id, self.stopping = store, job_id, stopping
        self._asked, self._answer = 0.0, False

    def __call__(self) -> bool:
        if self.stopping.is_set():
            return True
        now = time.monotonic()
        if not self._answer and now - self._asked >= CANCEL_POLL:
            self._asked = now
            self._answer = self.store.cancel_requested(self.job_id)
        return self._answer
