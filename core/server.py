"""The HTTP API of ``artgraph serve`` (FastAPI): requests in, :class:`Service` calls, JSON out.

========================== =====================================================
route                      answer
========================== =====================================================
GET  /health               ``{"ok": true, "version"}``; the only route without the token
GET  /nodes                the node library (``artgraph nodes --json``)
POST /jobs                 201 the queued job; 422 its problems; 409 id taken; 429 queue full
POST /files                201 ``{"name", "path": "uploads/NAME"}`` for a multipart ``file``
GET  /jobs                 the newest jobs (``?status=``, ``?limit=``)
GET  /jobs/{id}            one job: status, attempts, times, report, files, position
GET  /jobs/{id}/events     Server-Sent Events: past ones, then live, to the end (``?after=SEQ``)
GET  /jobs/{id}/files/{f}  a file of the job (``out/...``, ``previews/...``, ``events.jsonl``)
POST /jobs/{id}/cancel     a queued job leaves the queue; a running one stops at its next step
DELETE /jobs/{id}          a finished job and its files are forgotten
========================== =====================================================

Every request passes :class:`Guard` first: with a token, ``Authorization: Bearer``
is required; a browser page from another origin is refused, and on loopback so
is a Host name that is not loopback (DNS rebinding). Bodies are bounded (413).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time,
# and those name dependencies defined inside create_app.

import asyncio
import contextlib
import hmac
import json
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__, limits
from .errors import GraphError, Problem
from .jobstore import STATUSES, JobStoreError
from .service import EventTail, Service, UploadError

#: Bodies of requests that carry no graph and no file.
SMALL_BODY = 64 * 1024
#: How often an event stream looks for new events (seconds).
EVENT_POLL = 0.1

_STATUS_OF_KIND = {"invalid": 422, "duplicate": 409, "full": 429, "unknown": 404, "busy": 409, "locked": 503}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class JobRequest(BaseModel):
    """``POST /jobs``: what to run."""

    model_config = ConfigDict(extra="forbid")

    graph: str | dict[str, Any] = Field(description="YAML text, a mapping, or the name of a shipped example")
    overrides: dict[str, Any] = Field(default_factory=dict, description='{"node.param": value}')
    id: str | None = Field(default=None, description="your own id for the job: 1-64 letters, digits, '-', '_'")


def create_app(service: Service, *, token: str | None = None, loopback: bool = True) -> ASGIApp:
    """The ASGI app serving ``service``: ``loopback`` when it listens only on this machine."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Shutting down (Ctrl-C, SIGTERM): the running jobs pause and go back to the queue.
        await asyncio.to_thread(service.stop)
        print("artgraph serve: stopped; a job that was running goes back to the queue", file=sys.stderr)

    app = FastAPI(
        title="artgraph",
        version=__version__,
        description="Run artgraph graphs as jobs: queue, follow, fetch, cancel.",
        max_body_size=SMALL_BODY,
        lifespan=lifespan,
    )
    graph_body = 2 * limits.GRAPH_BYTES.value + SMALL_BODY  # JSON may escape every other byte

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, 'the body is not valid JSON; send a JSON object such as {"graph": ...}')
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors)
        return _error(422, f"the request is not what {request.method} {request.url.path} takes: {where}")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

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
            return _error(422, str(exc))
        return JSONResponse({"name": name, "path": f"uploads/{name}"}, status_code=201)

    @app.get("/jobs")
    def jobs(status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        if status is not None and status not in STATUSES:
            return _error(422, f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        return {"jobs": [service.describe(job) for job in service.store.find(status, limit)]}

    @app.get("/jobs/{job_id}")
    def job(job_id: str) -> Any:
        try:
            return service.describe(service.get(job_id))
        except JobStoreError as exc:
            return _store_error(exc)

    def known_job(job_id: str) -> str:
        """The id of a job that exists; a 404 before a stream starts otherwise."""
        try:
            return service.get(job_id).id
        except JobStoreError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/jobs/{job_id}/events", response_class=EventSourceResponse, response_model=None)
    async def events(
        job_id: Annotated[str, Depends(known_job)], request: Request, after: int | None = None
    ) -> AsyncIterator[ServerSentEvent]:
        if after is None:  # a browser's EventSource resumes with this header
            last = request.headers.get("last-event-id", "")
            after = int(last) if last.isdigit() else 0
        tail = EventTail(service.event_log(job_id), service.job_dir(job_id))
        while not service.stopping.is_set():
            ended = await asyncio.to_thread(service.finished, job_id)
            news = await asyncio.to_thread(tail.read)
            for event in news:
                if isinstance(event.get("seq"), int) and event["seq"] > after:
                    after = event["seq"]
                    yield ServerSentEvent(data=event, event=str(event.get("event")), id=str(after))
            if ended and not news:
                return
            await asyncio.sleep(EVENT_POLL)

    @app.get("/jobs/{job_id}/files/{name:path}")
    def job_file(job_id: str, name: str) -> Any:
        try:
            service.get(job_id)
        except JobStoreError as exc:
            return _store_error(exc)
        path = service.file(job_id, name)
        if path is None:
            return _error(404, f"job {job_id!r} has no file {name!r}")
        return FileResponse(path)

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

    return Guard(app, token=token, loopback=loopback)


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=dict(headers or {}))


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
    return _error(status, str(exc), headers)


class Guard:
    """ASGI middleware: who may ask. Token, origin, and (on loopback) the Host name.

    Pure ASGI rather than a FastAPI middleware so that streams pass untouched.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, loopback: bool) -> None:
        self.app, self.token, self.loopback = app, token, loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> JSONResponse | None:
        host = headers.get("host", "")
        if self.loopback and _hostname(host) not in LOOPBACK_NAMES:
            return _error(403, f"Host {host!r} is not this machine; this server answers only on loopback")
        origin = headers.get("origin")
        if origin is not None and origin != f"{scope.get('scheme', 'http')}://{host}":
            return _error(403, f"requests from the page at {origin!r} are refused (not this server's origin)")
        if self.token is None or scope.get("path") == "/health":
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return _error(
                401,
                "this server needs its token: send 'Authorization: Bearer TOKEN'",
                {"WWW-Authenticate": "Bearer"},
            )
        return None


def _hostname(host: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
