"""``OUT/manifest.jsonl``: one JSON line per finished item of a batch, the batch's memory.

Each line is ``{"item", "overrides", "status": "done"|"failed", "attempts",
"seconds", "worker", "outputs", "error"}``, written in one ``write`` on a file
opened for appending, so a reader never sees half a line and a run killed
between two lines loses nothing it had recorded. A run killed *while* writing
may leave a last line cut short: the next run drops it before appending (that
item simply runs again). An item may have several lines (failed, then done
with ``--retry-failed``): the last one counts.

One batch at a time writes a manifest: :class:`Manifest` holds a lock on
``OUT/.manifest.lock`` for as long as it is open, and a second batch on the same
folder is refused instead of recording items twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .canonical import to_plain
from .events import read_json_lines

DONE, FAILED = "done", "failed"
FIELDS = ("item", "overrides", "status", "attempts", "seconds", "worker", "outputs", "error")

_log = logging.getLogger("artgraph.manifest")


class ManifestBusy(Exception):
    """Another batch holds the manifest of this output folder."""


class Manifest:
    """The manifest of the batch in ``out``: what finished, appended as it finishes."""

    def __init__(self, out: str | os.PathLike[str], name: str = "manifest.jsonl") -> None:
        self.path = Path(out) / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.path.parent / ".manifest.lock")
        #: item id -> its last record.
        self.latest: dict[str, dict[str, Any]] = {}
        try:
            if self.path.exists():
                self._read()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _read(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # the last line of a run killed while writing it: that item runs again
            _log.warning("dropping an unfinished last line of %s (%d bytes)", self.path, len(data) - end)
            os.truncate(self.path, end)
        for number, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.latest[str(record["item"])] = record
            except (ValueError, KeyError, TypeError):
                _log.warning("%s:%d: not a manifest record; ignored", self.path, number)

    def status(self, item: str) -> str | None:
        """``done``, ``failed`` or None (never finished)."""
        record = self.latest.get(item)
        return None if record is None else str(record.get("status"))

    def append(self, record: dict[str, Any]) -> None:
        """Record one finished item: one line, one write."""
        line = (json.dumps({k: to_plain(record.get(k)) for k in FIELDS}, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: say so rather than leave half a line unnoticed
            raise OSError(f"could not write all of a line to {self.path} ({written} of {len(line)} bytes)")
        self.latest[str(record["item"])] = record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every whole record of a manifest file, in order (a last line being written is left out)."""
    return read_json_lines(path)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one batch per folder is then up to the user
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ManifestBusy(
            f"another 'artgraph batch' is writing {path.parent}; wait for it to end, or choose another --out"
        ) from None
    return fd
