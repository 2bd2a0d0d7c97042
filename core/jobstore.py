"""A job queue that survives its process: SQLite (WAL) under a data folder.

The store behind ``artgraph serve``: jobs are submitted, claimed in order by a
worker, finished (done, failed, cancelled), and kept until deleted. Nothing
lives only in memory, so a restart loses no job: a job that was running when
the process died (kill -9, power loss) is queued again once — its ``attempts``
count it — and fails after a second interruption. One process owns a data
folder at a time (a lock file); a second is refused with a clear message.

Job ids a client chooses are plain names (letters, digits, ``-``, ``_``): they
become file names, so nothing like ``/`` or ``..`` is accepted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArtgraphError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)
#: How many times a job may be interrupted by its process dying before it is failed.
MAX_ATTEMPTS = 2
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    graph TEXT NOT NULL,
    overrides TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    error TEXT,
    example TEXT,
    name TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


class JobStoreError(ArtgraphError):
    """A request the store refuses; ``kind`` says which (for an HTTP status)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    graph: str
    overrides: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    attempts: int
    cancel_requested: bool
    report: dict[str, Any] | None
    error: str | None
    #: The shipped example graph this job runs (its inputs are the example's own files), or None
    #: for a submitted graph, whose inputs resolve inside the data folder.
    example: str | None = None
    #: The graph's own name (its ``name:``), for people looking at a list of jobs.
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """What a client is told (the graph text itself is left out)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "report": self.report,
            "error": self.error,
        }


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is a plain name; JobStoreError("invalid") otherwise."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise JobStoreError("invalid", f"job id {job_id!r} must be 1-64 letters, digits, '-' or '_'")
    return job_id


class JobStore:
    """The jobs of one data folder. Thread-safe; one per process and folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_folder(self.folder / "server.lock")
        self._db = sqlite3.connect(self.folder / "jobs.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    @staticmethod
    def _take_folder(path: Path) -> Any:
        """Hold an exclusive lock on the folder for the life of this store."""
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise JobStoreError(
                "locked", f"the data folder {path.parent} is in use by {owner}; stop it or choose another --data"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"artgraph serve (pid {os.getpid()})")
        handle.flush()
        return handle

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lock_file.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- submitting and reading --------------------------------------------

    def submit(
        self,
        graph: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        max_queue: int | None = None,
        example: str | None = None,
        name: str | None = None,
    ) -> Job:
        """Queue a job (the graph as YAML text, validated by the caller)."""
        job_id = check_job_id(job_id) if job_id is not None else uuid.uuid4().hex
        with self._transaction() as db:
            if max_queue is not None:
                (queued,) = db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (QUEUED,)).fetchone()
                if queued >= max_queue:
                    raise JobStoreError("full", f"the queue holds {queued} jobs, its limit; try again later")
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                raise JobStoreError("duplicate", f"a job with id {job_id!r} exists already")
            db.execute(
                "INSERT INTO jobs (id, status, graph, overrides, created, example, name) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, QUEUED, graph, json.dumps(dict(overrides or {})), time.time(), example, name),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def find(self, status: str | None = None, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs (of one ``status`` when given), in submission order."""
        if status is not None and status not in STATUSES:
            raise JobStoreError("invalid", f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        where, args = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        query = f"SELECT * FROM (SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ?) ORDER BY seq"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def count(self, status: str) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()
        return int(n)

    def position(self, job_id: str) -> int | None:
        """How many queued jobs are ahead of this one (0: next); None when it is not queued."""
        with self._lock:
            row = self._db.execute("SELECT seq, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != QUEUED:
                return None
            query = "SELECT COUNT(*) FROM jobs WHERE status = ? AND seq < ?"
            (ahead,) = self._db.execute(query, (QUEUED, row["seq"])).fetchone()
        return int(ahead)

    # -- working ---------------------------------------------------------------

    def claim(self) -> Job | None:
        """The oldest queued job, now running (its attempts counted); None when none waits."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = ? ORDER BY seq LIMIT 1", (QUEUED,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, started = ?, attempts = attempts + 1 WHERE id = ?",
                (RUNNING, time.time(), row["id"]),
            )
        return self.get(row["id"])

    def finish(
        self, job_id: str, status: str, report: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record how a running job ended (done, failed or cancelled) and its report."""
        if status not in FINISHED:
            raise ValueError(f"a job finishes as one of {FINISHED}, not {status!r}")
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, finished = ?, report = ?, error = ? WHERE id = ? AND status = ?",
                (status, time.time(), json.dumps(report) if report is not None else None, error, job_id, RUNNING),
            )

    def cancel(self, job_id: str) -> str:
        """Cancel one job: a queued one leaves the queue, a running one is asked to stop
        (the worker sees :meth:`cancel_requested`); a finished one stays as it is.
        Returns its status now; JobStoreError("unknown") for an id that does not exist."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobStoreError("unknown", f"no job {job_id!r}")
            if row["status"] == QUEUED:
                db.execute("UPDATE jobs SET status = ?, finished = ? WHERE id = ?", (CANCELLED, time.time(), job_id))
                return CANCELLED
            if row["status"] == RUNNING:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return str(row["status"])

    def release(self, job_id: str) -> None:
        """Put a running job back at the head of the queue, its attempt not counted: the
        server is stopping on purpose and will run it again when it starts."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = ?, started = NULL, attempts = MAX(attempts - 1, 0) "
                "WHERE id = ? AND status = ? AND cancel_requested = 0",
                (QUEUED, job_id, RUNNING),
            )

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def delete(self, job_id: str) -> None:
        """Forget a finished job (its files are the caller's to delete)."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobStoreError("unknown", f"no job {job_id!r}")
            if row["status"] not in FINISHED:
                raise JobStoreError("busy", f"job {job_id!r} is {row['status']}; cancel it first")
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def recover(self) -> list[str]:
        """After a restart: jobs left running by a dead process are queued again, ahead of
        the others as they were, or failed once interrupted ``MAX_ATTEMPTS`` times.
        Returns the ids queued again."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, attempts, cancel_requested FROM jobs WHERE status = ?", (RUNNING,)).fetchall()
            return [str(row["id"]) for row in rows if _requeue(db, row, "the server stopped while it ran")]

    def interrupted(self, job_id: str, why: str) -> None:
        """A running job lost the process that ran it (a Ray actor died): queued again at the
        head of the queue, or failed once interrupted ``MAX_ATTEMPTS`` times, as after a restart."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, attempts, cancel_requested FROM jobs WHERE id = ? AND status = ?", (job_id, RUNNING)
            ).fetchone()
            if row is not None:
                _requeue(db, row, why)


def _requeue(db: sqlite3.Connection, row: sqlite3.Row, why: str) -> bool:
    """Queue an interrupted job again (True), or end it: cancelled if asked, failed if it was
    interrupted too often."""
    now = time.time()
    if row["cancel_requested"]:
        db.execute("UPDATE jobs SET status = ?, finished = ? WHERE id = ?", (CANCELLED, now, row["id"]))
        return False
    if row["attempts"] >= MAX_ATTEMPTS:
        message = f"interrupted {row['attempts']} times ({why})"
        db.execute(
            "UPDATE jobs SET status = ?, finished = ?, error = ? WHERE id = ?", (FAILED, now, message, row["id"])
        )
        return False
    db.execute("UPDATE jobs SET status = ?, started = NULL WHERE id = ?", (QUEUED, row["id"]))
    return True


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        status=row["status"],
        graph=row["graph"],
        overrides=json.loads(row["overrides"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        attempts=row["attempts"],
        cancel_requested=bool(row["cancel_requested"]),
        report=json.loads(row["report"]) if row["report"] else None,
        error=row["error"],
        example=row["example"],
        name=row["name"],
    )
