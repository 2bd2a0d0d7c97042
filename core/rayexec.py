"""The ``ray`` executor: one Ray actor per GPU (or per share of the CPUs), each a warm worker.

Each actor holds an :class:`ItemRunner` — the graph loaded once, one cache for
its life — created once and fed one item at a time: at most one item per actor
is in flight, so a batch of 100,000 items never submits more than ``--workers``
tasks to Ray, and outcomes come back (``ray.wait``) as they finish. Outputs are
written by the actors straight into ``--out``, which on a cluster of several
machines must be shared storage: an actor checks, as it starts, that it sees the
batch's own ``--out`` (the marker file the batch wrote) and the batch stops with
that message if it does not.

Resources: on a cluster with GPUs every actor asks for ``num_gpus=1`` (Ray pins
it with ``CUDA_VISIBLE_DEVICES``) and a fraction of a CPU, so that the actors
always fit beside one another; on a CPU-only cluster each asks for its share of
the CPUs (``CPUs / workers``, fractional) and uses that many threads. An actor
that dies (out of memory, its node lost, ``ray.kill``) is replaced by a new one
and its item goes back in the queue, to whichever actor is free first.

``ray`` is imported here only, and only when this executor is used.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .batchexec import START_DEATHS, START_TIMEOUT
from .batchitems import Item
from .batchrun import BatchError, ItemRunner, WorkerSetup

INSTALL = "pip install 'artgraph[ray]'"
#: How long to try reaching a cluster's address before saying it is out of reach (seconds).
CONNECT_TIMEOUT = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or a BatchError with the command that installs it."""
    try:
        import ray
    except ImportError:
        raise BatchError("the ray executor needs Ray, which is not installed", INSTALL) from None
    return ray


def check_address(address: str | None) -> None:
    """Refuse, in a few seconds, an ``--address`` nothing answers at (Ray itself retries for minutes)."""
    if address is None or address in ("auto", "local"):
        return
    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or port is None:
        raise BatchError(f"--address {address} is not HOST:PORT (or ray://HOST:PORT)", "e.g. --address 10.0.0.5:6379")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BatchError(
            f"cannot reach the Ray cluster at {address}: {reason}",
            "start it with 'ray start --head' there, or check the address and the firewall",
        ) from None


def join_ray(address: str | None) -> tuple[Any, bool]:
    """Ray, joined at ``address`` or started here: (the module, whether this process started it)."""
    ray = import_ray()
    check_address(address)
    owns = not ray.is_initialized()
    if owns:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:
            raise BatchError(f"cannot start or join Ray: {type(exc).__name__}: {exc}") from None
    return ray, owns


@dataclass(frozen=True)
class Placement:
    """How many actors, what each asks Ray for, how many threads each uses, on which device."""

    count: int
    options: dict[str, Any]
    threads: int
    device: str


def placement(ray: Any, workers: int | None, device: str, *, cpu_workers: Callable[[float], int]) -> Placement:
    """One actor per GPU of the cluster (``num_gpus=1`` and a share of a CPU, so that they always
    fit beside one another), or on a CPU-only cluster (or ``device`` cpu) ``workers`` actors
    (default ``cpu_workers(cpus)``) sharing the CPUs, fractionally."""
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1.0)), int(resources.get("GPU", 0))
    if gpus > 0 and device in ("auto", "cuda"):
        count = workers or gpus
        if count > gpus:
            raise BatchError(
                f"--workers {count}, but the Ray cluster has {gpus} GPU{'s' if gpus != 1 else ''}",
                f"one actor per GPU: give --workers {gpus} or fewer",
            )
        options: dict[str, Any] = {"num_gpus": 1, "num_cpus": min(1.0, cpus / count)}
        on = "cuda"
    else:
        count = workers or cpu_workers(cpus)
        options = {"num_gpus": 0, "num_cpus": cpus / count}
        on = "cpu" if device in ("auto", "cuda") else device
    return Placement(count, options, max(1, math.floor(cpus / count)), on)


class BatchActor:
    """What runs inside each Ray actor (made remote by :class:`RayPool`)."""

    def __init__(self, setup: WorkerSetup, name: str, threads: int | None) -> None:
        self.runner: ItemRunner | None = None
        self.error: str | None = None
        try:
            self.runner = ItemRunner(setup, name, threads=threads)
            self.error = self.runner.problem  # it cannot see --out: the batch stops with this message
        except Exception as exc:
            self.error = f"worker {name} could not start: {type(exc).__name__}: {exc}"

    def ready(self) -> tuple[str | None, dict[str, Any]]:
        """(why it cannot work, or None; who it is)."""
        return self.error, self.runner.info() if self.runner is not None else {}

    def run(self, item: str, overrides: dict[str, Any]) -> dict[str, Any]:
        assert self.runner is not None and self.error is None
        return self.runner.run(item, overrides)


@dataclass
class _Actor:
    name: str
    handle: Any
    state: str = "starting"  # starting, idle, busy
    since: float = field(default_factory=time.monotonic)
    info: dict[str, Any] = field(default_factory=dict)
    item: str = ""


class RayPool:
    """Actors on a Ray cluster, joined at ``address`` or started here (see the module's text)."""

    kind = "ray"

    def __init__(
        self,
        setup: WorkerSetup,
        workers: int | None,
        *,
        address: str | None = None,
        threads: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        ray, self.owns_ray = join_ray(address)
        self.ray, self.setup, self.start_timeout = ray, setup, start_timeout
        try:
            place = placement(ray, workers, setup.device, cpu_workers=lambda cpus: max(1, int(cpus) // 4))
        except BatchError:
            self._shutdown()
            raise
        count, self._options = place.count, place.options
        self._threads = threads or place.threads
        self._remote = ray.remote(BatchActor)
        self._actors: dict[int, _Actor] = {}
        self._infos: dict[int, dict[str, Any]] = {}
        self._names: dict[int, str] = {}
        self._refs: dict[Any, tuple[int, str]] = {}  # ObjectRef -> (actor, "ready" | "run")
        self._next = 0
        self._start_deaths = 0
        try:
            for _ in range(count):
                self._start()
        except BaseException:
            self.close(now=True)
            raise

    def _start(self) -> None:
        key = self._next
        self._next += 1
        name = f"ray-{key}"
        handle = self._remote.options(max_restarts=0, max_task_retries=0, **self._options).remote(
            self.setup, name, self._threads
        )
        self._actors[key] = _Actor(name, handle)
        self._names[key] = name
        self._refs[handle.ready.remote()] = (key, "ready")

    @property
    def workers(self) -> list[dict[str, Any]]:
        """What each actor that started said about itself (name, host, pid, device, GPUs), dead ones too."""
        return [dict(info) for info in self._infos.values()]

    @property
    def started(self) -> list[str]:
        """The name of every actor started so far, replacements included."""
        return list(self._names.values())

    def handle(self, name: str) -> Any:
        """The actor handle of the worker called ``name`` (to inspect it, or kill it in a test)."""
        return next(a.handle for a in self._actors.values() if a.name == name)

    def busy(self) -> dict[str, str]:
        return {a.name: a.item for a in self._actors.values() if a.state == "busy"}

    def worker_name(self, worker: int) -> str:
        return self._names[worker]

    def idle(self) -> list[int]:
        return [k for k, a in self._actors.items() if a.state == "idle"]

    def submit(self, worker: int, item: Item) -> None:
        actor = self._actors[worker]
        actor.state, actor.since, actor.item = "busy", time.monotonic(), item.id
        self._refs[actor.handle.run.remote(item.id, item.overrides)] = (worker, "run")

    def wait(self, timeout: float) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        ray = self.ray
        events: list[tuple[int, dict[str, Any] | None, str | None]] = []
        if self._refs:
            ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
            if ready and len(self._refs) > 1:
                rest = [r for r in self._refs if r not in ready]
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
            for ref in ready:
                key, kind = self._refs.pop(ref)
                events.extend(self._finished(ref, key, kind))
        else:
            time.sleep(timeout)
        self._check_start()
        return events

    def _finished(self, ref: Any, key: int, kind: str) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        ray = self.ray
        actor = self._actors.get(key)
        if actor is None:
            return []
        try:
            value = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            return self._died(key, exc)
        except ray.exceptions.RayError as exc:  # the call itself failed (not the item: it never raises)
            if kind == "ready":
                raise BatchError(f"worker {actor.name} could not start: {_first_line(exc)}") from None
            actor.state = "idle"
            return [(key, None, f"worker {actor.name}: {_first_line(exc)}")]
        if kind == "ready":
            error, info = value
            if error is not None:
                raise BatchError(error)
            actor.state, actor.info = "idle", dict(info)
            self._infos[key] = dict(info)
            self._start_deaths = 0
            return []
        actor.state, actor.item = "idle", ""
        return [(key, value, None)]

    def _died(self, key: int, exc: Exception) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        actor = self._actors.pop(key)
        for ref, (owner, _) in list(self._refs.items()):
            if owner == key:
                del self._refs[ref]
        why = f"the Ray actor {actor.name} died: {_first_line(exc)}"
        if actor.state == "starting":
            self._start_deaths += 1
            if self._start_deaths >= START_DEATHS:
                raise BatchError(f"Ray actors die as they start ({why})", "see the Ray logs (ray logs, /tmp/ray)")
        self._start()
        return [(key, None, why)] if actor.state == "busy" else []

    def _check_start(self) -> None:
        now = time.monotonic()
        if any(a.state != "starting" for a in self._actors.values()):
            return
        if self._actors and all(now - a.since > self.start_timeout for a in self._actors.values()):
            need = ", ".join(f"{k}={v:g}" for k, v in self._options.items() if v)
            raise BatchError(
                f"no Ray actor started within {self.start_timeout:.0f} s",
                f"each needs {need}: does the cluster have room for them?",
            )

    def drain(self) -> list[tuple[int, dict[str, Any]]]:
        ray = self.ray
        runs = [r for r, (_, kind) in self._refs.items() if kind == "run"]
        if not runs:
            return []
        ready, _ = ray.wait(runs, num_returns=len(runs), timeout=0)
        found = []
        for ref in ready:
            key, _ = self._refs.pop(ref)
            with contextlib.suppress(ray.exceptions.RayError):
                found.append((key, ray.get(ref)))
        return found

    def close(self, *, now: bool = False) -> None:
        """Kill the actors (their items, if any, are not recorded); end Ray if this pool started it."""
        actors = list(self._actors.values())
        self._actors.clear()
        self._refs.clear()
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor.handle, no_restart=True)
        self._shutdown()

    def _shutdown(self) -> None:
        if self.owns_ray and self.ray.is_initialized():
            self.ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
