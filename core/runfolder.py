"""One ``artgraph run`` seen as a job, for ``artgraph view RUN``: its folder is the source.

``RUN`` is the ``--out`` of ``artgraph run … --events RUN/events.jsonl``. It
offers the viewer what a server's job offers — a status, files, events, a
layout — read from that folder alone, while the run goes on or long after, so
the page and its routes are the same in both cases. The run is job ``run``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .jobstore import JobStoreError
from .service import EventTail, find_file, layout_from_log, list_files

#: The one job id of a run folder.
RUN_ID = "run"


class RunFolder:
    """The read side of a run folder, shaped like :class:`artgraph.service.Service`'s."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()
        self.log = self.folder / "events.jsonl"
        self.stopping = threading.Event()
        self._tail = EventTail(self.log, self.folder)
        self._start: dict[str, Any] | None = None
        self._done: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _check(self, job_id: str) -> None:
        if job_id != RUN_ID:
            raise JobStoreError("unknown", f"no job {job_id!r}; this viewer shows one run, '{RUN_ID}'")

    def _catch_up(self) -> None:
        """Read the events the log gained since last time (the first and last are all it keeps)."""
        with self._lock:
            for event in self._tail.read():
                if event.get("event") == "run_start":
                    self._start, self._done = event, None
                elif event.get("event") == "run_done":
                    self._done = event

    def job_view(self, job_id: str) -> dict[str, Any]:
        self._check(job_id)
        self._catch_up()
        start, done = self._start, self._done
        if start is None:
            status = "queued"  # nothing written yet: the run has not started (or is elsewhere)
        elif done is None:
            status = "running"
        else:
            status = "cancelled" if done.get("cancelled") else "done" if done.get("ok") else "failed"
        return {
            "id": RUN_ID,
            "name": start.get("graph") if start else self.folder.name,
            "status": status,
            "attempts": 1 if start else 0,
            "created": start.get("time") if start else None,
            "started": start.get("time") if start else None,
            "finished": done.get("time") if done else None,
            "report": None,
            "error": None,
            "position": None,
            "files": list_files(self.folder),
        }

    def job_views(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        view = self.job_view(RUN_ID)
        return [view] if status is None or view["status"] == status else []

    def tail(self, job_id: str) -> EventTail:
        self._check(job_id)
        return EventTail(self.log, self.folder)

    def finished(self, job_id: str) -> bool:
        self._catch_up()
        return self._done is not None

    def file(self, job_id: str, name: str) -> Path | None:
        self._check(job_id)
        return find_file(self.folder, name)

    def layout(self, job_id: str) -> dict[str, Any]:
        self._check(job_id)
        return layout_from_log(self.log)
