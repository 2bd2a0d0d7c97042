"""``artgraph serve --executor ray``: the server's workers run their jobs on Ray actors.

A server then fronts a cluster: the queue, the HTTP API and the event streams stay
in the server's process; each of its workers hands the job it claimed to its own
actor — one per GPU (``num_gpus=1``), or a share of the CPUs on a CPU-only
cluster, created once and holding a warm :class:`JobRunner` (models and results
stay in its memory from one job to the next, as in a local worker). The actor
writes the job's events, previews and outputs into the data folder itself, which
on a cluster of several machines must be shared storage mounted at the same path
everywhere: an actor checks, as it starts, that it sees the server's own folder.

A cancel reaches the running job through the actor (its second thread sets the
flag the job polls). An actor that dies takes no job with it: the job is queued
again (failed after a second interruption, as after a server restart) and the
actor is replaced.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

from .jobstore import Job
from .rayexec import join_ray, placement
from .worker import CANCEL_POLL, JobRunner, Outcome, WorkerLost

#: The file in the data folder that tells an actor it sees the server's own folder.
MARKER = ".artgraph-serve"


class JobActor:
    """What runs inside each Ray actor (two threads: one runs a job, one takes a cancel)."""

    def __init__(self, data: str, token: str, device: str, threads: int) -> None:
        import os
        import socket

        self.cancelled = threading.Event()
        self.error: str | None = None
        where = f"{socket.gethostname()} (pid {os.getpid()})"
        try:
            seen = (Path(data) / MARKER).read_text(encoding="utf-8")
        except OSError as exc:
            seen = None
            self.error = f"the worker on {where} cannot see the data folder {data} ({exc.strerror or exc})"
        if seen is not None and seen != token:
            self.error = f"the worker on {where} sees another folder at {data} than the server's"
        if self.error:
            self.error += "; on a cluster of machines --data must be shared storage, mounted alike on every node"
            return
        import torch

        torch.set_num_threads(max(1, threads))
        from .devices import resolve_device

        self.runner = JobRunner(data, device=resolve_device(device))

    def ready(self) -> str | None:
        return self.error

    def run(self, job: Job) -> Outcome:
        self.cancelled.clear()
        return self.runner.run(job, self.cancelled.is_set)

    def cancel(self) -> None:
        self.cancelled.set()


class RayExecutor:
    """The actors of one server: started (or joined) when the server starts, one per worker."""

    def __init__(self, data: Path, *, workers: int | None, address: str | None, device: str) -> None:
        self.ray, self.owns_ray = join_ray(address)
        self.data, self.device = data, device
        try:
            place = placement(self.ray, workers, device, cpu_workers=lambda cpus: 1)
        except BaseException:
            self.shutdown()
            raise
        self.placement = place
        self.token = secrets.token_hex(16)
        from .files import atomic_path

        with atomic_path(data / MARKER, confined=False) as tmp:
            tmp.write_text(self.token, encoding="utf-8")
        # Two threads per actor: one runs the job, the other takes its cancel.
        self._remote = self.ray.remote(max_concurrency=2)(JobActor)

    def start_actor(self) -> Any:
        """A new actor, once it has said it can work (else WorkerLost saying why not)."""
        place = self.placement
        handle = self._remote.options(max_restarts=0, max_task_retries=0, **place.options).remote(
            str(self.data), self.token, place.device, place.threads
        )
        try:
            error = self.ray.get(handle.ready.remote(), timeout=300)
        except Exception as exc:
            raise WorkerLost(f"a Ray worker could not start: {type(exc).__name__}: {exc}") from None
        if error:
            raise WorkerLost(error)
        return handle

    def runners(self) -> list[ActorRunner]:
        """One runner per worker, its actor started now: a cluster that cannot run the
        server's jobs (no shared data folder) is refused before the server listens."""
        runners = [ActorRunner(self) for _ in range(self.placement.count)]
        for runner in runners:
            runner.handle = self.start_actor()
        return runners

    def shutdown(self) -> None:
        if self.owns_ray:
            self.ray.shutdown()


class ActorRunner:
    """One server worker's actor, seen as a runner: ``run(job, stop)``, replaced when it dies."""

    def __init__(self, executor: RayExecutor) -> None:
        self.executor = executor
        self.handle: Any = None
        self._lock = threading.Lock()

    def run(self, job: Job, stop: Any) -> Outcome:
        ray = self.executor.ray
        with self._lock:
            if self.handle is None:
                self.handle = self.executor.start_actor()
            handle = self.handle
        ref = handle.run.remote(job)
        asked = False
        while True:
            done, _ = ray.wait([ref], timeout=CANCEL_POLL)
            if done:
                try:
                    return tuple(ray.get(ref))
                except ray.exceptions.RayActorError as exc:
                    self.handle = None  # a new one for the next job
                    raise WorkerLost(f"its Ray worker died: {type(exc).__name__}") from None
            if not asked and stop():
                asked = True
                handle.cancel.remote()
