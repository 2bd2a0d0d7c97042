"""Writing files atomically and only where a run may write.

Every file artgraph writes goes through :func:`atomic_path`: the data goes to a
temporary file beside the target, which then replaces the target in one rename,
so an interrupted run never leaves half a file.

While a graph runs, the executor *confines* writes (:func:`confine_writes`):
a result may only land inside the output folder — its real path, symbolic
links followed — and never on a file the same graph reads. The check happens
here, at write time, so it covers every file a node writes, whatever path
it was handed. Caches that belong to the library (converted weights) opt out
with ``confined=False``.

Temporary names carry the host and process id (``.NAME~HOST~PID~RANDOM``), so
the leftovers of a process that was killed (``kill -9``, power loss) are
recognised and removed by the next process that writes beside them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NodeError
from .paths import inside

_HOST = socket.gethostname().replace("~", "-") or "host"
#: Leftovers from another machine (a shared folder) are removed only when this old.
FOREIGN_TEMP_AGE = 24 * 3600


def temp_tag() -> str:
    """The part of a temporary name that says which process made it."""
    return f"~{_HOST}~{os.getpid()}~"


def is_stale_temp(path: Path) -> bool:
    """A temporary file or folder (named with :func:`temp_tag`) whose process is gone."""
    parts = path.name.split("~")  # NAME ~ HOST ~ PID ~ RANDOM (NAME itself may hold a '~')
    if len(parts) < 4 or not parts[-2].isdigit():
        return False
    host, pid = parts[-3], int(parts[-2])
    if host != _HOST:
        try:
            return time.time() - path.lstat().st_mtime > FOREIGN_TEMP_AGE
        except OSError:
            return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def remove_stale_temps(folder: Path) -> int:
    """Remove temporary leftovers of dead processes in ``folder``; return how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(".") or "~" not in entry.name:
            continue
        path = Path(entry.path)
        if not is_stale_temp(path):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


_SWEPT: set[str] = set()


def _sweep_once(folder: Path) -> None:
    """Remove killed processes' leftovers in ``folder``, once per folder and process
    (a batch of 10,000 images is written into one folder: it is read once, not 10,000 times)."""
    key = os.path.abspath(folder)
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_stale_temps(folder)


@dataclass(frozen=True)
class WriteGuard:
    """Where a running node may write: under ``root``, never onto ``protected`` files, nor
    onto a file another node of the same run wrote (``written``, shared by the run)."""

    root: str
    protected: frozenset[str] = frozenset()
    owner: str = ""
    written: dict[str, str] = field(default_factory=dict)

    def check(self, target: Path) -> None:
        real = os.path.realpath(target)
        if not inside(real, self.root) or real == self.root:
            raise NodeError(
                f"refusing to write {target}: it resolves to {real}, outside the output folder {self.root} "
                "(a symbolic link?); results may only be written under --out"
            )
        if real in self.protected:
            raise NodeError(f"refusing to overwrite {target}: this graph reads that file; write the result elsewhere")
        if os.path.isdir(real):
            raise NodeError(f"refusing to write {target}: it is a folder; name a file inside it")
        other = self.written.get(real)
        if other is not None and other != self.owner:
            raise NodeError(
                f"refusing to write {target}: node '{other}' wrote that file earlier in this run; "
                "give each node its own file name"
            )

    def record(self, target: Path) -> None:
        self.written[os.path.realpath(target)] = self.owner


_GUARD: ContextVar[WriteGuard | None] = ContextVar("artgraph_write_guard", default=None)


@contextlib.contextmanager
def confine_writes(
    root: str | os.PathLike[str],
    protected: Iterable[str] = (),
    *,
    owner: str = "",
    written: dict[str, str] | None = None,
) -> Iterator[WriteGuard]:
    """Within this block, :func:`atomic_path` writes only under ``root``, never to
    ``protected``, and never to a file that another owner recorded in ``written``.

    ``protected`` given as a ``frozenset`` is taken as real paths already (the executor
    resolves the graph's inputs once per run, not once per node)."""
    real = protected if isinstance(protected, frozenset) else frozenset(os.path.realpath(p) for p in protected)
    guard = WriteGuard(os.path.realpath(root), real, owner, written if written is not None else {})
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, confined: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    On an exception (or Ctrl-C) the temporary file is removed and any existing
    ``path`` is left untouched. While a graph runs, ``path`` must lie inside the
    output folder (see :func:`confine_writes`); pass ``confined=False`` only for
    the library's own caches, never for a node's results.
    """
    target = Path(path)
    guard = _GUARD.get()
    if confined and guard is not None:
        guard.check(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}{temp_tag()}", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
        if confined and guard is not None:
            guard.record(target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
