"""The HTTP API of ``artgraph serve`` and ``artgraph view`` (FastAPI): requests in, calls out.

========================== =====================================================
route                      answer
========================== =====================================================
GET  /health               ``{"ok": true, "version"}``; needs no token
GET  /nodes                the node library (``artgraph nodes --json``)
POST /jobs                 201 the queued job; 422 its problems; 409 id taken; 429 queue full
POST /files                201 ``{"name", "path": "uploads/NAME"}`` for a multipart ``file``
GET  /jobs                 the newest jobs (``?status=``, ``?limit=``)
GET  /jobs/{id}            one job: status, attempts, times, report, files, position
GET  /jobs/{id}/events     Server-Sent Events: past ones, then live, to the end (``?after=SEQ``)
GET  /jobs/{id}/files/{f}  a file of the job (``out/...``, ``previews/...``, ``events.jsonl``)
GET  /jobs/{id}/layout     where the viewer draws each node (:mod:`artgraph.layout`)
POST /jobs/{id}/cancel     a queued job leaves the queue; a running one stops at its next step
DELETE /jobs/{id}          a finished job and its files are forgotten
GET  /, /view/{id}         the viewer's page (static files under /static/)
========================== =====================================================

``artgraph serve`` has them all (:func:`create_app` over a :class:`Service`);
``artgraph view`` the reading ones and the page (:func:`create_view_app` over a
:class:`RunFolder`): one protocol, whatever the page looks at. Every request
passes :class:`artgraph.guard.Guard` first. Bodies are bounded (413).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time,
# and those name dependencies defined inside the factories.

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp

from . import __version__, limits
from .errors import GraphError, Problem
from .guard import Guard, error
from .jobstore import STATUSES, JobStoreError
from .service import EventTail, Service, UploadError

#: Bodies of requests that carry no graph and no file.
SMALL_BODY = 64 * 1024
#: How often an event stream looks for new events (seconds).
EVENT_POLL = 0.1
#: The viewer's page, scripts and styles, shipped in the package.
STATIC = Path(__file__).parent / "static"
#: Events that only the newest of (per node) matters to a viewer, when it asks to coalesce.
SUPERSEDED = ("progress", "preview")

_STATUS_OF_KIND = {"invalid": 422, "duplicate": 409, "full": 429, "unknown": 404, "busy": 409, "locked": 503}


class Runs(Protocol):
    """What the reading routes need of a source of runs (a server's jobs, a run folder)."""

    stopping: threading.Event

    def job_view(self, job_id: str) -> dict[str, Any]: ...
    def job_views(self, status: str | None, limit: int) -> list[dict[str, Any]]: ...
    def tail(self, job_id: str) -> EventTail: ...
    def finished(self, job_id: str) -> bool: ...
    def file(self, job_id: str, name: str) -> Path | None: ...
    def layout(self, job_id: str) -> dict[str, Any]: ...


class JobRequest(BaseModel):
    """``POST /jobs``: what to run."""

    model_config = ConfigDict(extra="forbid")

    graph: str | dict[str, Any] = Field(description="YAML text, a mapping, or the name of a shipped example")
    overrides: dict[str, Any] = Field(default_factory=dict, description='{"node.param": value}')
    id: str | None = Field(default=None, description="your own id for the job: 1-64 letters, digits, '-', '_'")


def create_app(
    service: Service, *, token: str | None = None, loopback: bool = True, origins: tuple[str, ...] = ()
) -> ASGIApp:
    """The ASGI app of ``artgraph serve``: ``loopback`` when it listens only on this machine;
    ``origins``: public addresses it is served at through a reverse proxy."""

    async def stop() -> None:
        # Shutting down (Ctrl-C, SIGTERM): the running jobs pause and go back to the queue.
        await asyncio.to_thread(service.stop)
        print("artgraph serve: stopped; a job that was running goes back to the queue", file=sys.stderr)

    app = _app("Run artgraph graphs as jobs: queue, follow, fetch, cancel.", stop)
    _write_routes(app, service)
    _read_routes(app, service)
    return Guard(app, token=token, loopback=loopback, origins=origins)


def create_view_app(runs: Runs, *, token: str | None) -> ASGIApp:
    """The ASGI app of ``artgraph view``: the reading routes and the page, on loopback."""

    async def stop() -> None:
        runs.stopping.set()

    app = _app("Watch one artgraph run.", stop)
    _read_routes(app, runs)
    return Guard(app, token=token, loopback=True)


def _app(description: str, on_stop: Callable[[], Any]) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await on_stop()

    app = FastAPI(
        title="artgraph", version=__version__, description=description, max_body_size=SMALL_BODY, lifespan=lifespan
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error(400, 'the body is not valid JSON; send a JSON object such as {"graph": ...}')
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors)
        return error(422, f"the request is not what {request.method} {request.url.path} takes: {where}")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/", include_in_schema=False)
    def jobs_page() -> FileResponse:
        return FileResponse(STATIC / "viewer.html", headers={"Cache-Control": "no-cache"})

    @app.get("/view/{job_id}", include_in_schema=False)
    def run_page(job_id: str) -> FileResponse:
        return FileResponse(STATIC / "viewer.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _write_routes(app: FastAPI, service: Service) -> None:
    graph_body = 2 * limits.GRAPH_BYTES.value + SMALL_BODY  # JSON may escape every other byte

    @app.get("/nodes")
    def nodes() -> Any:
        from .schema import nodes_document

        return json.loads(json.dumps(nodes_document(service.registry), default=str))

    @app.post("/jobs", status_code=201, max_body_size=graph_body)
    def submit(request: JobRequest) -> Any:
        try:
            job = service.submit(request.graph, request.overrides, request.id)
        except GraphError as exc:
            return _problems(exc.problems)
        except JobStoreError as exc:
            return _store_error(exc, naming=True)
        return JSONResponse(
            {"id": job.id, "status": job.status, "position": service.store.position(job.id)}, status_code=201
        )

    @app.post("/files", status_code=201, max_body_size=limits.UPLOAD_BYTES.value + SMALL_BODY)
    def upload(file: Annotated[UploadFile, File(description="the file; its name is kept")]) -> Any:
        try:
            name = service.save_upload(file.filename, file.file)
        except UploadError as exc:
            return error(422, str(exc))
        return JSONResponse({"name": name, "path": f"uploads/{name}"}, status_code=201)

    @app.post("/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> Any:
        try:
            return {"id": job_id, "status": service.cancel(job_id)}
        except JobStoreError as exc:
            return _store_error(exc)

    @app.delete("/jobs/{job_id}")
    def delete(job_id: str) -> Any:
        try:
            service.delete(job_id)
        except JobStoreError as exc:
            return _store_error(exc)
        return {"id": job_id, "deleted": True}


def _read_routes(app: FastAPI, runs: Runs) -> None:
    @app.get("/jobs")
    def jobs(status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        if status is not None and status not in STATUSES:
            return error(422, f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        return {"jobs": runs.job_views(status, limit)}

    @app.get("/jobs/{job_id}")
    def job(job_id: str) -> Any:
        try:
            return runs.job_view(job_id)
        except JobStoreError as exc:
            return _store_error(exc)

    @app.get("/jobs/{job_id}/layout")
    def layout(job_id: str) -> Any:
        try:
            return runs.layout(job_id)
        except JobStoreError as exc:
            return _store_error(exc)

    def known_job(job_id: str) -> str:
        """The id of a job that exists; a 404 before a stream starts otherwise."""
        try:
            runs.job_view(job_id)
        except JobStoreError as exc:
            raise HTTPException(404, str(exc)) from None
        return job_id

    @app.get("/jobs/{job_id}/events", response_class=EventSourceResponse, response_model=None)
    async def events(
        job_id: Annotated[str, Depends(known_job)], request: Request, after: int | None = None, coalesce: bool = False
    ) -> AsyncIterator[ServerSentEvent]:
        # A browser's EventSource resumes with this header, also on an address that says
        # where it started (?after=): the later of the two is where to go on from.
        last = request.headers.get("last-event-id", "")
        after = max(after or 0, int(last) if last.isdigit() else 0)
        tail = runs.tail(job_id)
        while not runs.stopping.is_set():
            ended = await asyncio.to_thread(runs.finished, job_id)
            news = [e for e in await asyncio.to_thread(tail.read) if isinstance(e.get("seq"), int)]
            fresh = [e for e in news if e["seq"] > after]
            for event in newest_only(fresh) if coalesce else fresh:
                yield ServerSentEvent(data=event, event=str(event.get("event")), id=str(event["seq"]))
            if fresh:
                after = fresh[-1]["seq"]
            if ended and not news:
                return
            await asyncio.sleep(EVENT_POLL)

    @app.get("/jobs/{job_id}/files/{name:path}")
    def job_file(job_id: str, name: str) -> Any:
        try:
            runs.job_view(job_id)
        except JobStoreError as exc:
            return _store_error(exc)
        path = runs.file(job_id, name)
        if path is None:
            return error(404, f"job {job_id!r} has no file {name!r}")
        return FileResponse(path, headers={"Cache-Control": "no-cache"})


def newest_only(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` without the progress and preview events a later one of the same node replaces:
    a viewer catching up on a long run, or on several previews a second, draws only the newest."""
    last: dict[tuple[str, Any], int] = {}
    for i, event in enumerate(events):
        if event.get("event") in SUPERSEDED:
            last[(event["event"], event.get("node"))] = i
    return [
        e for i, e in enumerate(events) if e.get("event") not in SUPERSEDED or last[(e["event"], e.get("node"))] == i
    ]


def _problems(problems: list[Problem]) -> JSONResponse:
    count = len(problems)
    return JSONResponse(
        {
            "detail": f"{count} problem{'s' if count != 1 else ''} in the graph; nothing was queued",
            "problems": [p.to_dict() for p in problems],
        },
        status_code=422,
    )


def _store_error(exc: JobStoreError, *, naming: bool = False) -> JSONResponse:
    """The answer to a refusal of the store. An invalid id in a path names no job (404);
    ``naming`` a new job with it is a mistake in the request (422)."""
    status = _STATUS_OF_KIND.get(exc.kind, 400)
    if exc.kind == "invalid" and not naming:
        status = 404
    headers = {"Retry-After": "5"} if exc.kind == "full" else None
    return error(status, str(exc), headers)
