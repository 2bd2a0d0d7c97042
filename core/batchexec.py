"""Handing items to workers, with retries: :func:`drive`, and the ``local`` executor's process pool.

:func:`drive` is the part every executor shares: it keeps each idle worker fed
with the next item, takes outcomes back as they finish, re-queues an item
that failed (or whose worker died under it) until it has had ``retries`` more
tries, and yields each item once, when it is final. A *pool* is what it drives:
the ``local`` one here (worker processes on this machine), the ``ray`` one in
:mod:`artgraph.rayexec` (actors on a cluster). A pool replaces a worker that
died by itself, and raises :class:`BatchError` when workers cannot start at all.

The local pool starts one process per worker with multiprocessing's *spawn*
(a fresh interpreter: no CUDA state or locks copied from this one), pinned to
one GPU with ``CUDA_VISIBLE_DEVICES`` where there are GPUs, else given its share
of the cores (``torch.set_num_threads``). Each runs an :class:`ItemRunner` for
its whole life. Workers ignore Ctrl-C (the batch decides what to do with it)
and exit as soon as the batch process is gone, even killed with ``kill -9``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection
from typing import Any, Protocol

from .batchitems import Item
from .batchrun import BatchError, ItemRunner, WorkerSetup
from .manifest import DONE, FAILED

#: A worker that has not started after this long (seconds), while none is working, stops the batch.
START_TIMEOUT = 600.0
#: Workers that die while starting, one after the other, before the batch gives up.
START_DEATHS = 3


class Pool(Protocol):
    """Workers that run items; what :func:`drive` needs of an executor."""

    def idle(self) -> list[int]:
        """Workers ready for an item (each is handed at most one at a time)."""
        ...

    def submit(self, worker: int, item: Item) -> None: ...

    def wait(self, timeout: float) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        """What finished within ``timeout``: (worker, outcome, None) for an item run, or
        (worker, None, why) for a worker that died with an item (it is replaced)."""
        ...

    def drain(self) -> list[tuple[int, dict[str, Any]]]:
        """Outcomes already finished, without waiting (when stopping)."""
        ...

    def worker_name(self, worker: int) -> str: ...

    def close(self, *, now: bool = False) -> None: ...


def drive(pool: Pool, items: Iterable[Item], retries: int) -> Iterator[tuple[Item, dict[str, Any]]]:
    """Run ``items`` on ``pool``; yield each (item, outcome) once it is final, with its ``attempts``.

    On Ctrl-C (KeyboardInterrupt) the outcomes already back are yielded, then it is raised
    again: what finished is never lost, what was running is not recorded and runs next time."""
    pending: deque[tuple[Item, int]] = deque((item, 0) for item in items)
    busy: dict[int, tuple[Item, int]] = {}
    try:
        while pending or busy:
            for worker in pool.idle():
                if not pending:
                    break
                if worker in busy:
                    continue
                item, tries = pending.popleft()
                pool.submit(worker, item)
                busy[worker] = (item, tries + 1)
            for worker, outcome, died in pool.wait(0.5):
                item, tries = busy.pop(worker)
                if outcome is None:
                    outcome = {
                        "item": item.id,
                        "status": FAILED,
                        "seconds": None,
                        "worker": pool.worker_name(worker),
                        "outputs": [],
                        "error": died,
                    }
                if outcome["status"] != DONE and tries <= retries:
                    pending.append((item, tries))  # again, after the others waiting
                    continue
                yield item, {**outcome, "attempts": tries}
    except KeyboardInterrupt:
        for worker, outcome in pool.drain():
            item, tries = busy.pop(worker)
            if outcome["status"] == DONE or tries > retries:
                yield item, {**outcome, "attempts": tries}
        raise


# --- the local executor -------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """Where one local worker runs: the GPUs it sees, its device, its CPU threads."""

    cuda_visible_devices: str | None
    device: str | None
    threads: int


def local_slots(device: str, workers: int | None, threads: int | None = None) -> list[Slot]:
    """One slot per GPU when there are GPUs (and the device allows them), else a few CPU
    processes sharing the cores; ``workers`` overrides how many (GPUs are then shared round-robin),
    ``threads`` the CPU threads of each (default: the cores shared out)."""
    cores = os.cpu_count() or 1
    gpus: list[str] = []
    if device in ("auto", "cuda") or device.startswith("cuda:"):
        import torch

        if torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            names = [v.strip() for v in visible.split(",") if v.strip()] if visible else None
            count = torch.cuda.device_count()
            indexes = [int(device.partition(":")[2])] if device.startswith("cuda:") else list(range(count))
            gpus = [names[i] if names and i < len(names) else str(i) for i in indexes]
    if gpus:
        n = workers or len(gpus)
        return [Slot(gpus[i % len(gpus)], "cuda", threads or max(1, cores // n)) for i in range(n)]
    n = workers or max(1, min(4, cores // 2))
    return [Slot(None, None, threads or max(1, cores // n)) for _ in range(n)]


@dataclass
class _Process:
    name: str
    slot: Slot
    process: Any
    conn: Any
    state: str = "starting"  # starting, idle, busy
    since: float = field(default_factory=time.monotonic)
    info: dict[str, Any] = field(default_factory=dict)


_SPAWN_LOCK = threading.Lock()


class LocalPool:
    """Worker processes on this machine (see the module's text)."""

    kind = "local"

    def __init__(self, setup: WorkerSetup, slots: Sequence[Slot], *, start_timeout: float = START_TIMEOUT) -> None:
        import multiprocessing

        if not slots:
            raise BatchError("no workers", "give --workers 1 or more")
        self.setup, self.start_timeout = setup, start_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, _Process] = {}
        self._names: dict[int, str] = {}  # every worker ever started, dead ones too
        self._infos: dict[int, dict[str, Any]] = {}
        self._next = 0
        self._start_deaths = 0
        try:
            for slot in slots:
                self._start(slot)
        except BaseException:
            self.close(now=True)
            raise

    # -- workers -------------------------------------------------------------

    def _start(self, slot: Slot) -> None:
        key = self._next
        self._next += 1
        name = f"local-{key}"
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main,
            args=(child, self.setup, name, slot, os.getpid()),
            daemon=True,
            name=f"artgraph-batch-{name}",
        )
        with _SPAWN_LOCK, _sigint_blocked(), _environ("CUDA_VISIBLE_DEVICES", slot.cuda_visible_devices):
            process.start()
        child.close()
        self._procs[key] = _Process(name, slot, process, parent)
        self._names[key] = name

    @property
    def workers(self) -> list[dict[str, Any]]:
        """What each worker that started said about itself (name, host, pid, device, GPUs, threads),
        those that died or were stopped too."""
        return [dict(info) for info in self._infos.values()]

    @property
    def started(self) -> list[str]:
        """The name of every worker started so far, replacements included."""
        return list(self._names.values())

    def worker_name(self, worker: int) -> str:
        return self._names[worker]

    def busy(self) -> dict[str, str]:
        """Worker name -> the item it runs now."""
        return {p.name: p.info.get("item", "") for p in self._procs.values() if p.state == "busy"}

    def idle(self) -> list[int]:
        return [k for k, p in self._procs.items() if p.state == "idle"]

    def submit(self, worker: int, item: Item) -> None:
        proc = self._procs[worker]
        proc.state, proc.since = "busy", time.monotonic()
        proc.info["item"] = item.id
        try:
            proc.conn.send((item.id, item.overrides))
        except OSError:  # it died just now: wait() sees its sentinel and reports the item
            pass

    def wait(self, timeout: float) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        by_conn = {p.conn: k for k, p in self._procs.items()}
        by_sentinel = {p.process.sentinel: k for k, p in self._procs.items()}
        ready = connection.wait([*by_conn, *by_sentinel], timeout)
        events: list[tuple[int, dict[str, Any] | None, str | None]] = []
        dead: list[int] = []
        for obj in ready:
            if obj in by_conn:
                key = by_conn[obj]
                message = self._receive(key)
                if message is None:
                    dead.append(key)
                elif message is not _NOTHING:
                    events.append((key, message, None))
            else:
                dead.append(by_sentinel[obj])
        for key in dict.fromkeys(dead):
            events.extend(self._died(key))
        self._check_start()
        return events

    def _receive(self, key: int) -> Any:
        """The outcome a worker sent, ``_NOTHING`` for other messages, None if its pipe is gone."""
        proc = self._procs[key]
        try:
            kind, body = proc.conn.recv()
        except (EOFError, OSError):
            return None
        if kind == "ready":
            proc.state, proc.info = "idle", dict(body)
            self._infos[key] = dict(body)
            self._start_deaths = 0
            return _NOTHING
        if kind == "fatal":
            raise BatchError(body)
        proc.state = "idle"
        proc.info.pop("item", None)
        return body

    def _died(self, key: int) -> list[tuple[int, dict[str, Any] | None, str | None]]:
        proc = self._procs.pop(key)
        # An outcome sent just before dying still counts.
        outcome = None
        with contextlib.suppress(EOFError, OSError):
            while proc.conn.poll(0):
                kind, body = proc.conn.recv()
                if kind == "fatal":
                    raise BatchError(body)
                if kind == "done":
                    outcome = body
        proc.process.join(5)
        if proc.process.is_alive():  # its pipe broke but it lingers: it must not run on unseen
            proc.process.kill()
            proc.process.join(5)
        proc.conn.close()
        code = proc.process.exitcode
        why = f"worker {proc.name} (pid {proc.process.pid}) died: {describe_exit(code)}"
        if proc.state == "starting":
            self._start_deaths += 1
            if self._start_deaths >= START_DEATHS:
                raise BatchError(f"worker processes die as they start ({why})", "run with --debug -v to see why")
        self._start(proc.slot)
        if outcome is not None:
            return [(key, outcome, None)]
        return [(key, None, why)] if proc.state == "busy" else []

    def _check_start(self) -> None:
        now = time.monotonic()
        if any(p.state != "starting" for p in self._procs.values()):
            return
        if self._procs and all(now - p.since > self.start_timeout for p in self._procs.values()):
            raise BatchError(f"no worker process started within {self.start_timeout:.0f} s", "is the machine busy?")

    def drain(self) -> list[tuple[int, dict[str, Any]]]:
        found = []
        for key, proc in self._procs.items():
            if proc.state != "busy":
                continue
            with contextlib.suppress(EOFError, OSError):
                if proc.conn.poll(0):
                    kind, body = proc.conn.recv()
                    if kind == "done":
                        proc.state = "idle"
                        found.append((key, body))
        return found

    def close(self, *, now: bool = False) -> None:
        """Stop every worker: politely (after its item) or, ``now``, at once."""
        procs = list(self._procs.values())
        self._procs.clear()
        for proc in procs:
            if now or proc.state == "busy":
                proc.process.terminate()
            else:
                with contextlib.suppress(OSError):
                    proc.conn.send(None)
        deadline = time.monotonic() + 10
        for proc in procs:
            proc.process.join(max(0.0, deadline - time.monotonic()))
            if proc.process.is_alive():
                proc.process.kill()
                proc.process.join(5)
            proc.conn.close()


_NOTHING: Any = object()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        extra = " (killed: out of memory, or by someone)" if -code == signal.SIGKILL else ""
        return f"{name}{extra}"
    return f"exit code {code}"


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block Ctrl-C while starting a worker, so that it starts with SIGINT blocked (a mask
    survives exec) and never sees the Ctrl-C meant for the batch; it then ignores it."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = mask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _environ(name: str, value: str | None) -> Iterator[None]:
    """``os.environ[name] = value`` (a spawned child inherits it) for the duration."""
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def worker_main(conn: Any, setup: WorkerSetup, name: str, slot: Slot, parent: int) -> None:
    """A local worker process: start an :class:`ItemRunner`, then run what the batch sends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with_parent(parent)
    if slot.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.cuda_visible_devices
    try:
        runner = ItemRunner(setup, name, threads=slot.threads, device=slot.device)
    except Exception as exc:
        conn.send(("fatal", f"worker {name} could not start: {type(exc).__name__}: {exc}"))
        return
    if runner.problem is not None:
        conn.send(("fatal", runner.problem))
        return
    conn.send(("ready", runner.info()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        item, overrides = message
        conn.send(("done", runner.run(item, overrides)))


def _exit_with_parent(parent: int) -> None:
    """End this process within half a second of the batch's (killed, its pipe is not closed
    until then, and an item left running would write beside the next run's)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="artgraph-parent-watch").start()
