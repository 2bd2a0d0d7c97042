"""Progress reporting for long nodes: bars on a terminal, lines elsewhere.

Nodes only see :class:`Progress` (``update`` and ``close``); how it is shown is
chosen once per run by the executor's caller. tqdm draws the bars; on a pipe or
in CI we print a plain line roughly every tenth of the work instead, so logs
stay readable; ``quiet`` shows nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Protocol, TypeVar


class Progress(Protocol):
    def update(self, n: int = 1, **metrics: float) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Progress: ...
    def __exit__(self, *exc: object) -> None: ...


_B = TypeVar("_B", bound="ProgressBase")


class ProgressBase:
    """What every progress reporter shares: ``with`` closes it."""

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class SilentProgress(ProgressBase):
    """Counts but shows nothing (``--quiet``, library use, tests)."""

    def __init__(self, total: int | None = None, desc: str = "") -> None:
        self.total = total
        self.desc = desc
        self.n = 0
        self.metrics: dict[str, float] = {}

    def update(self, n: int = 1, **metrics: float) -> None:
        self.n += n
        self.metrics.update(metrics)


class LineProgress(ProgressBase):
    """Plain lines, about ten per task, for logs and pipes."""

    def __init__(self, total: int | None, desc: str, stream: IO[str]) -> None:
        self.total, self.desc, self.stream = total, desc, stream
        self.n = 0
        self._next = 0.1
        self._start = time.perf_counter()
        self.metrics: dict[str, float] = {}

    def update(self, n: int = 1, **metrics: float) -> None:
        self.n += n
        self.metrics.update(metrics)
        if self.total and self.n / self.total >= self._next:
            self._next = (int(self.n / self.total * 10) + 1) / 10
            self._emit()

    def _emit(self) -> None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        total = f"/{self.total}" if self.total else ""
        elapsed = time.perf_counter() - self._start
        print(f"  {self.desc}: {self.n}{total} {shown} ({elapsed:.1f}s)".rstrip(), file=self.stream)

    def close(self) -> None:
        if self.total is None or self.n < self.total:
            self._emit()


class BarProgress(ProgressBase):
    """A tqdm bar on a terminal."""

    def __init__(self, total: int | None, desc: str, stream: IO[str]) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, file=stream, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, **metrics: float) -> None:
        if metrics:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


ProgressFactory = Callable[[int | None, str], Progress]


def make_progress_factory(mode: str = "auto", stream: IO[str] | None = None) -> ProgressFactory:
    """``mode``: auto (bars on a TTY, else lines), bar, lines or quiet."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "bar" if out.isatty() else "lines"
    if mode == "quiet":
        return lambda total, desc: SilentProgress(total, desc)
    if mode == "bar":
        return lambda total, desc: BarProgress(total, desc, out)
    if mode == "lines":
        return lambda total, desc: LineProgress(total, desc, out)
    raise ValueError(f"unknown progress mode {mode!r}")
