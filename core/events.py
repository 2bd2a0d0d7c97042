"""Run events: one vocabulary for every way a graph runs (CLI, Python API, server, batch).

A run tells what happens as JSON-ready dicts, one per event, each with the run
id, a sequence number that only grows, a wall-clock timestamp, and the node id
where it has one:

========== ===============================================================
event      fields (besides ``event``, ``run``, ``seq``, ``time``, ``node``)
========== ===============================================================
run_start  ``graph`` (its name), ``nodes`` (ids in run order), ``device``
node_start ``type``, ``index``, ``total`` (of the nodes that run)
node_cached ``reason``
progress   ``value``, ``max`` (None when open-ended), ``metrics`` (loss, …)
preview    ``path`` of a small image of the node's work so far
node_done  ``status`` (executed or skipped), ``seconds``, ``reason``, ``outputs``
node_error ``message`` (one line); ``traceback`` apart, for those who ask
run_done   ``ok``, ``counts`` (nodes per status), ``seconds``
========== ===============================================================

Whoever runs a graph hands :class:`RunEvents` its *sinks*: callables that take
one event (the CLI's printer, a JSON-lines file, a server's queue). A sink that
raises is dropped with a warning; it never stops the run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .canonical import to_plain
from .progress import Progress, ProgressBase

EVENT_TYPES = (
    "run_start",
    "node_start",
    "node_cached",
    "progress",
    "preview",
    "node_done",
    "node_error",
    "run_done",
)

#: Something that takes one event.
EventSink = Callable[[dict[str, Any]], None]

_log = logging.getLogger("artgraph.events")


class RunEvents:
    """Numbers, stamps and hands out the events of one run; writes its previews.

    ``preview_dir``: where ``ctx.preview`` images go (none written without it).
    ``progress_every`` and ``preview_every`` (seconds) bound how often one node's
    progress and previews become events, so a fast loop cannot flood a client.
    """

    def __init__(
        self,
        sinks: Iterable[EventSink] = (),
        *,
        run_id: str | None = None,
        preview_dir: str | os.PathLike[str] | None = None,
        progress_every: float = 0.2,
        preview_every: float = 1.0,
        first_seq: int = 1,
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.sinks = list(sinks)
        self.preview_dir = Path(preview_dir) if preview_dir is not None else None
        self.progress_every, self.preview_every = progress_every, preview_every
        # A run that continues a log (a server's job run again after a restart) numbers on
        # from it, so a reader resuming "after N" neither misses nor repeats an event.
        self._seq = itertools.count(first_seq)
        self._lock = threading.Lock()
        self._last_preview: dict[str, float] = {}

    def emit(self, event: str, node: str | None = None, **fields: Any) -> dict[str, Any]:
        """Send one event to every sink; return it."""
        assert event in EVENT_TYPES, event
        with self._lock:
            record: dict[str, Any] = {"event": event, "run": self.run_id, "seq": next(self._seq), "time": time.time()}
            if node is not None:
                record["node"] = node
            record.update(fields)
            for sink in list(self.sinks):
                try:
                    sink(record)
                except Exception as exc:  # a broken client must not break the run
                    _log.warning("dropped an event sink that failed: %s: %s", type(exc).__name__, exc)
                    self.sinks.remove(sink)
        return record

    def progress(self, node: str, inner: Progress, total: int | None) -> Progress:
        """``inner`` (the bar or lines the user sees), also reporting ``progress`` events."""
        return _EventProgress(self, node, inner, total)

    def preview(self, node: str, image: Any) -> bool:
        """Write a small picture of ``image`` (or of what ``image()`` returns, called only
        when a preview is due) and announce it, at most every ``preview_every`` seconds
        per node; False when skipped (too soon, or nowhere to write)."""
        if self.preview_dir is None:
            return False
        now = time.monotonic()
        last = self._last_preview.get(node)
        if last is not None and now - last < self.preview_every:
            return False
        self._last_preview[node] = now
        from .previews import write_preview

        picture = image() if callable(image) else image
        path = write_preview(picture, self.preview_dir / f"{node}.jpg")
        self.emit("preview", node, path=str(path))
        return True


class _EventProgress(ProgressBase):
    """A progress reporter that shows as before and emits ``progress`` events, rate-limited."""

    def __init__(self, events: RunEvents, node: str, inner: Progress, total: int | None) -> None:
        self.events, self.node, self.inner, self.total = events, node, inner, total
        self.n = 0
        self.metrics: dict[str, float] = {}
        self._last = 0.0

    def update(self, n: int = 1, **metrics: float) -> None:
        self.inner.update(n, **metrics)
        self.n += n
        self.metrics.update(metrics)
        now = time.monotonic()
        if now - self._last >= self.events.progress_every or (self.total is not None and self.n >= self.total):
            self._last = now
            self._send()

    def _send(self) -> None:
        metrics = {k: (float(v) if math.isfinite(v) else None) for k, v in self.metrics.items()}
        self.events.emit("progress", self.node, value=self.n, max=self.total, metrics=metrics)

    def close(self) -> None:
        self.inner.close()


class JsonLines:
    """An event sink that appends each event to a file as one JSON line.

    Each line goes out in a single ``write`` on a descriptor opened for appending,
    so a reader following the file while the run goes on sees whole lines only.
    The file is started afresh for each run, unless ``append``: then the events go
    after those already there (a line cut short by a process that died is dropped
    first, so that every line stays whole); :attr:`last_seq` is the last one kept.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.last_seq = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        if append and self.path.exists():
            self.last_seq = _keep_whole_lines(self.path)
        self._fd = os.open(self.path, flags, 0o644)

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = json.dumps(event, allow_nan=False)
        except (TypeError, ValueError):  # NaN or an odd object: still valid JSON for any reader
            line = json.dumps(to_plain(event), allow_nan=False)
        os.write(self._fd, (line + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextlib.contextmanager
def appended_log(
    path: str | os.PathLike[str], *, run_id: str, preview_dir: str | os.PathLike[str] | None = None
) -> Iterator[RunEvents]:
    """The events of a run appended to the JSON-lines log at ``path``: a server's job or a batch's
    item run again numbers on from its last attempt. The log is closed when the block ends."""
    log = JsonLines(path, append=True)
    try:
        yield RunEvents([log], run_id=run_id, preview_dir=preview_dir, first_seq=log.last_seq + 1)
    finally:
        log.close()


def _keep_whole_lines(path: Path) -> int:
    """Cut ``path`` after its last whole line; the ``seq`` of the last event kept (0 if none)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        os.truncate(path, end)
    for line in reversed(data[:end].splitlines()):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The whole events of a JSON-lines file; a last line still being written is left out."""
    return read_json_lines(path)


def read_json_lines(path: str | os.PathLike[str]) -> list[Any]:
    """Every whole record of a file appended one JSON line at a time (events, a batch's
    manifest): a last line still being written is left out, blank lines are skipped."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            if line.strip():
                records.append(json.loads(line))
    return records
