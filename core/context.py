"""What a node may know about the run it is part of.

A node gets a :class:`Context` when its function takes a ``ctx`` parameter. It
offers the device, a seeded random generator, progress reporting and a logger;
it deliberately offers nothing about the executor, the graph or the cache, so
nodes stay plain functions that can run anywhere (a test, a notebook, a cluster).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .progress import Progress, ProgressBase, ProgressFactory, SilentProgress

if TYPE_CHECKING:
    import torch

    from .events import RunEvents


class _NodeLog(logging.LoggerAdapter):  # bare: LoggerAdapter[...] fails at runtime before Python 3.11
    """Prefixes messages with the node id; one shared logger, not one per node."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None  # always {"node": node_id}, see Context.__init__
        return f"[{self.extra['node']}] {msg}", kwargs


_NODE_LOGGER = logging.getLogger("artgraph.node")


class Context:
    """Per-node run context."""

    __slots__ = (
        "_cancelled",
        "_device",
        "_events",
        "_progress",
        "_provenance",
        "_rng",
        "log",
        "node_id",
        "node_type",
        "seed",
    )

    def __init__(
        self,
        node_id: str,
        node_type: str,
        *,
        device: str = "cpu",
        seed: int = 0,
        progress: ProgressFactory | None = None,
        provenance: Mapping[str, Any] | None = None,
        events: RunEvents | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> None:
        self.node_id = node_id
        self.node_type = node_type
        #: The seed of this node: its ``seed`` param when it has one, else derived
        #: from its cache key, so a re-run draws the same numbers.
        self.seed = seed
        self._device = device
        self._rng: torch.Generator | None = None
        self._progress = progress
        self._provenance = provenance
        self._events = events
        self._cancelled = cancelled
        self.log: logging.LoggerAdapter[logging.Logger] = _NodeLog(_NODE_LOGGER, {"node": node_id})

    @property
    def provenance(self) -> dict[str, Any]:
        """Where the result comes from (the graph's YAML with overrides, its folder, this
        node), for nodes that embed it in files they write; empty outside a graph run.
        Built only when asked for: most nodes never do."""
        if not self._provenance:
            return {}
        return {**self._provenance, "node": self.node_id}

    @property
    def device(self) -> torch.device:
        """The device tensors should be created on (and stay on)."""
        import torch

        return torch.device(self._device)

    @property
    def rng(self) -> torch.Generator:
        """A CPU ``torch.Generator`` seeded with :attr:`seed`.

        Draw on the CPU and move the result: the same seed then gives the same
        numbers on every machine, whatever the device.
        """
        if self._rng is None:
            import torch

            self._rng = torch.Generator().manual_seed(self.seed)
        return self._rng

    def progress(self, total: int | None = None, desc: str | None = None) -> Progress:
        """A progress reporter: ``with ctx.progress(steps) as bar: bar.update(1, loss=x)``.

        Its updates are also the run's ``progress`` events (rate-limited)."""
        label = desc or self.node_id
        shown = SilentProgress(total, label) if self._progress is None else self._progress(total, label)
        if self._events is not None:
            shown = self._events.progress(self.node_id, shown, total)
        if self._cancelled is not None:
            shown = _Stoppable(shown, self)
        return shown

    def stop_if_cancelled(self) -> None:
        """Raise :class:`~artgraph.Cancelled` when the run was asked to stop.

        Progress updates and previews call it, so a node with a progress bar stops
        at its next step without doing anything; a node with a long loop and no
        bar calls it itself."""
        if self._cancelled is not None and self._cancelled():
            from .errors import Cancelled

            raise Cancelled(f"node '{self.node_id}' stopped: the run was cancelled")

    def preview(self, image: torch.Tensor | Callable[[], torch.Tensor]) -> bool:
        """Show the work so far (an image [B,C,H,W] in [0, 1]; the first of a batch).

        Cheap to call often: the engine writes a small JPEG at most about once a
        second per node, and only when someone watches the run (``--events``, a
        server); True when this one was written. Pass a function instead of the
        image when making it costs something: it is called only when a preview is due."""
        self.stop_if_cancelled()
        if self._events is None:
            return False
        return self._events.preview(self.node_id, image)


class _Stoppable(ProgressBase):
    """A progress reporter whose every update first asks whether the run was cancelled."""

    def __init__(self, inner: Progress, ctx: Context) -> None:
        self.inner, self.ctx = inner, ctx

    def update(self, n: int = 1, **metrics: float) -> None:
        self.ctx.stop_if_cancelled()
        self.inner.update(n, **metrics)

    def close(self) -> None:
        self.inner.close()
