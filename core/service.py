"""What ``artgraph serve`` does, without HTTP: accept jobs, keep workers busy, hand out results.

:class:`Service` owns one data folder::

    DATA/jobs.sqlite3   the job queue (:class:`JobStore`), and DATA/server.lock
    DATA/uploads/       files sent with ``POST /files``; graphs read them as ``uploads/NAME``
    DATA/cache/         the disk cache every worker shares
    DATA/jobs/ID/       one job's events.jsonl, previews/ and out/

A submitted graph is validated before it is queued (a client hears every problem
at once, as ``artgraph validate`` prints them), with its inputs confined to the
data folder and its outputs to its job's folder. Whatever is handed back to a
client — reports, events — names files relative to the job's folder
(``out/stylized.png``), never by the server's own paths. The HTTP layer
(:mod:`artgraph.server`) only translates between this and requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .errors import ArtgraphError, GraphError, Problem
from .files import atomic_path
from .jobstore import FINISHED, QUEUED, Job, JobStore, JobStoreError, check_job_id
from .plugins import Registry, default_registry
from .worker import Worker, job_graph

#: What a graph names an uploaded file by: ``uploads/NAME``.
UPLOADS = "uploads"
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UploadError(ArtgraphError):
    """An upload the service refuses (its name), said in one line."""


class Service:
    """Jobs, workers and files of one data folder; one per process (the folder is locked)."""

    def __init__(
        self,
        data: str | os.PathLike[str],
        *,
        devices: tuple[str, ...] = ("auto",),
        max_queue: int | None = None,
        registry: Registry | None = None,
        executor: str = "local",
        address: str | None = None,
        workers: int | None = None,
    ) -> None:
        """``executor="local"`` runs one worker per device in this process; ``"ray"`` runs
        ``workers`` Ray actors (one per GPU of the cluster by default) joined at ``address``
        or started here, the data folder shared with them (artgraph.rayjobs)."""
        self.data = Path(data).resolve()
        self.store = JobStore(self.data)  # refuses a folder another server holds
        self.registry = registry or default_registry()
        self.max_queue = max_queue
        self.ray: Any = None
        if executor == "ray":
            from .rayjobs import RayExecutor

            try:
                self.ray = RayExecutor(self.data, workers=workers, address=address, device=devices[0])
                runners = self.ray.runners()
            except BaseException:
                self.close()
                raise
            self.workers = [Worker(self.store, self.data, runner=r) for r in runners]
        else:
            self.workers = [Worker(self.store, self.data, device=d, registry=self.registry) for d in devices]
        self._threads: list[threading.Thread] = []
        self._uploading = threading.Lock()
        self._stopped = False
        self._layouts: dict[str, dict[str, Any]] = {}
        #: Set when the service stops: event streams end, workers pause their jobs.
        self.stopping = threading.Event()

    # -- life ----------------------------------------------------------------

    def start(self) -> list[str]:
        """Queue again what a dead process left running, then start the workers;
        returns the ids queued again."""
        again = self.store.recover()
        for n, worker in enumerate(self.workers):
            thread = threading.Thread(target=worker.run_forever, name=f"artgraph-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return again

    def stop(self, timeout: float = 30.0) -> None:
        """Pause the running jobs (they go back to the queue, to run on the next start)
        and close the store. Once is enough; again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        for worker in self.workers:
            worker.stopping.set()
            worker.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self.close()

    def close(self) -> None:
        """Let go of the data folder and of Ray (if this service started it)."""
        if self.ray is not None:
            self.ray.shutdown()
            self.ray = None
        self.store.close()

    # -- jobs ----------------------------------------------------------------

    def submit(
        self, graph: str | Mapping[str, Any], overrides: Mapping[str, Any] | None = None, job_id: str | None = None
    ) -> Job:
        """Validate and queue a graph: YAML text, a mapping, or the name of a shipped example.

        GraphError lists its problems; JobStoreError says why the queue refused it
        (``invalid`` id, ``duplicate`` id, ``full`` queue).
        """
        if job_id is not None:
            check_job_id(job_id)
            if self.store.get(job_id) is not None:
                raise JobStoreError("duplicate", f"a job with id {job_id!r} exists already")
        text, example = self._graph_text(graph)
        overrides = dict(overrides or {})
        try:
            loaded = job_graph(text, example, self.data, self.registry)
            # Validated against where it will write: a folder of its own, named once queued.
            loaded.plan(overrides, self.data / "jobs" / "pending" / "out")
        except GraphError as exc:  # the client hears of "the data folder", not of where it lies
            raise GraphError([self._hide_paths(p) for p in exc.problems]) from None
        job = self.store.submit(
            text, overrides, job_id=job_id, max_queue=self.max_queue, example=example, name=loaded.name
        )
        for worker in self.workers:
            worker.wake.set()
        return job

    def _hide_paths(self, problem: Problem) -> Problem:
        def hide(text: str) -> str:
            return text.replace(str(self.data) + os.sep, "").replace(str(self.data), "the data folder")

        message, hint = hide(problem.message), hide(problem.hint)
        return Problem(problem.file, problem.line, problem.node, message, hint)

    @staticmethod
    def _graph_text(graph: str | Mapping[str, Any]) -> tuple[str, str | None]:
        """(YAML text, example name or None) of what a client sent as its graph."""
        from .api import packaged_graphs

        if isinstance(graph, Mapping):
            import yaml

            from .yamlsource import nesting_problem

            too_deep = nesting_problem(dict(graph))
            if too_deep is not None:  # checked before the dump, which would recurse as deep
                raise GraphError([Problem("graph", None, None, *too_deep)])
            return yaml.safe_dump(dict(graph), sort_keys=False, allow_unicode=True), None
        if "\n" in graph or ":" in graph:
            return graph, None
        shipped = packaged_graphs()
        for name in (graph, f"{graph}.yaml"):
            if name in shipped:
                return shipped[name].read_text(encoding="utf-8"), name
        names = ", ".join(sorted(n.removesuffix(".yaml") for n in shipped)) or "none"
        raise GraphError(
            [
                Problem(
                    "graph",
                    None,
                    None,
                    f"{graph!r} is neither a graph nor the name of a shipped example",
                    f"send the graph's YAML text or a mapping; shipped examples: {names}",
                )
            ]
        )

    def job_dir(self, job_id: str) -> Path:
        return self.data / "jobs" / check_job_id(job_id)

    def get(self, job_id: str) -> Job:
        job = self.store.get(check_job_id(job_id))
        if job is None:
            raise JobStoreError("unknown", f"no job {job_id!r}")
        return job

    def describe(self, job: Job) -> dict[str, Any]:
        """What a client is told about a job: its state, place in the queue, report and files."""
        folder = self.job_dir(job.id)
        view = job.to_dict()
        view["report"] = relative_paths(job.report, folder)
        view["position"] = self.store.position(job.id) if job.status == QUEUED else None
        view["files"] = self.files(job.id)
        return view

    # -- what the read routes (and the viewer) ask of any source of runs --------

    def job_view(self, job_id: str) -> dict[str, Any]:
        return self.describe(self.get(job_id))

    def job_views(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return [self.describe(job) for job in self.store.find(status, limit)]

    def tail(self, job_id: str) -> EventTail:
        return EventTail(self.event_log(job_id), self.job_dir(job_id))

    def layout(self, job_id: str) -> dict[str, Any]:
        """Where the viewer draws the job's nodes: from its graph, or (should the graph no
        longer validate, an input gone) from the wiring its run announced."""
        job = self.get(job_id)
        cached = self._layouts.get(job.id)
        if cached is None:
            cached = self._layouts[job.id] = self._compute_layout(job)
        return cached

    def _compute_layout(self, job: Job) -> dict[str, Any]:
        from .layout import layout

        try:
            graph = job_graph(job.graph, job.example, self.data, self.registry)
            plan = graph.plan(job.overrides, self.job_dir(job.id) / "out")
        except GraphError:
            return layout_from_log(self.event_log(job.id))
        return layout(list(plan.nodes), **plan.wiring())

    def cancel(self, job_id: str) -> str:
        return self.store.cancel(check_job_id(job_id))

    def delete(self, job_id: str) -> None:
        """Forget a finished job and delete its files (a queued or running job: cancel it first)."""
        self.store.delete(check_job_id(job_id))
        self._layouts.pop(job_id, None)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # -- files ---------------------------------------------------------------

    def files(self, job_id: str) -> list[str]:
        """A job's files by name relative to its folder: ``out/...``, ``previews/...``, ``events.jsonl``."""
        return list_files(self.job_dir(job_id))

    def file(self, job_id: str, name: str) -> Path | None:
        return find_file(self.job_dir(job_id), name)

    def save_upload(self, name: str | None, stream: IO[bytes]) -> str:
        """Keep an uploaded file (``stream``: seekable) under ``uploads/``; returns the name
        graphs use for it.

        A name already taken by other content gets the content's hash added, so a
        queued job never has its input changed under it.
        """
        if name is None or not _UPLOAD_NAME.match(name) or name.endswith("."):
            raise UploadError(
                f"upload name {name!r} is not a plain file name; use letters, digits, '.', '-' and '_' "
                "(at most 128, no folders)"
            )
        digest = hashlib.sha256()
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
        stream.seek(0)
        folder = self.data / UPLOADS
        with self._uploading:  # one name, one content: decided and written as one step
            target = folder / name
            if target.exists() and _sha256(target) != digest.hexdigest():
                stem, dot, suffix = name.partition(".")
                name = f"{stem}-{digest.hexdigest()[:12]}{dot}{suffix}"
                target = folder / name
            if target.exists():  # this very content, uploaded before
                return name
            with atomic_path(target, confined=False) as tmp, open(tmp, "wb") as fh:
                shutil.copyfileobj(stream, fh, 1 << 20)
        return name

    # -- events ----------------------------------------------------------------

    def event_log(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "events.jsonl"

    def finished(self, job_id: str) -> bool:
        """True once the job ended (or was deleted): no more events will come."""
        job = self.store.get(job_id)
        return job is None or job.status in FINISHED


class EventTail:
    """Reads the events a job's log gains, whole lines only, from where it left off.

    The log may not exist yet (the job is queued) and may be deleted (the job was);
    both read as "nothing new".
    """

    def __init__(self, path: Path, folder: Path) -> None:
        self.path, self.folder = path, folder
        self._offset = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        events = []
        for line in data[:end].splitlines():
            try:
                events.append(relative_paths(json.loads(line), self.folder))
            except ValueError:  # never written by a worker; skip rather than stop a stream
                continue
        return events


def list_files(folder: Path) -> list[str]:
    """The plain files under ``folder``, by name relative to it (hidden and temporary ones left out)."""
    if not folder.is_dir():
        return []
    names = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.is_symlink() or not path.is_file():
            continue
        names.append(relative.as_posix())
    return names


def find_file(folder: Path, name: str) -> Path | None:
    """The file ``name`` (relative, ``/``-separated) under ``folder``, or None: anything not a
    plain file inside it (``..``, absolute paths, links, hidden and temporary files) is not there."""
    root = folder.resolve()
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        return None
    parts = name.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    path = root.joinpath(*parts)
    if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root):
        return None
    return path


def layout_from_log(path: Path) -> dict[str, Any]:
    """The layout of the graph a run's ``run_start`` event describes (empty before it)."""
    from .layout import layout

    for event in EventTail(path, path.parent).read():
        if event.get("event") == "run_start":
            return layout(event.get("nodes", []), event.get("types", {}), event.get("edges", []))
    return layout([], {}, [])


def relative_paths(value: Any, folder: Path) -> Any:
    """``value`` with every string naming a file in ``folder`` made relative to it."""
    prefix = str(folder) + os.sep
    if isinstance(value, str):
        return value[len(prefix) :].replace(os.sep, "/") if value.startswith(prefix) else value
    if isinstance(value, dict):
        return {k: relative_paths(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, folder) for v in value]
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
