"""One batch worker's side: load the graph once, then run item after item with a warm cache.

The same :class:`ItemRunner` lives in every kind of worker — a process of the
``local`` executor, an actor of the ``ray`` executor — and does for each item
what ``artgraph serve``'s worker does for each job: the graph runs in this
process with the item's overrides and one :class:`Cache` kept for the worker's
whole life (models, shared inputs and intermediate results stay in memory), its
events go to ``OUT/ITEM/events.jsonl`` (run id = item id), its outputs under
``OUT/ITEM/``. What comes back is a small dict (an *outcome*): status, seconds,
the files written (relative to ``OUT``), the error (each failed node and its
message), and the worker's name.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArtgraphError, GraphError, printable
from .manifest import DONE, FAILED

if TYPE_CHECKING:
    from .api import Graph

#: The file in ``--out`` that tells a worker it sees the same folder as the batch that made it.
MARKER = ".artgraph-batch"


class BatchError(ArtgraphError):
    """A batch cannot go on (or start): workers that cannot start, a cluster out of reach.
    The message says why in one line; ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message if not hint else f"{message} — {hint}")
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class GraphSource:
    """How a worker process loads the batch's graph again (picklable)."""

    file: str
    base_dir: str
    text: str | None = None
    data: Any = None
    confine_inputs: bool = False

    @classmethod
    def of(cls, graph: Graph) -> GraphSource:
        from .plugins import default_registry

        if graph.registry is not default_registry():
            raise BatchError(
                "batch workers load the graph again in their own processes, with the installed plugins",
                "load it without registry= (install the plugin, so that its entry point is found)",
            )
        spec = graph.spec
        data = None if graph.text is not None else _plain(spec.data)
        return cls(spec.file, str(spec.base_dir), graph.text, data, spec.confine_inputs)

    def load(self) -> Graph:
        from .api import load_graph

        source: Any = self.data if self.text is None else self.file
        return load_graph(
            source, text=self.text, base_dir=self.base_dir, validate=False, confine_inputs=self.confine_inputs
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker of one batch shares (picklable): graph, folders, device, cache."""

    graph: GraphSource
    out: str
    #: The contents of ``OUT/.artgraph-batch``, written by the batch before its workers start.
    token: str
    device: str = "auto"
    #: The disk cache folder, or None for none (each worker still keeps its memory cache).
    cache: str | None = None


def write_marker(out: str | os.PathLike[str], token: str) -> None:
    from .files import atomic_path

    with atomic_path(Path(out) / MARKER, confined=False) as tmp:
        tmp.write_text(token, encoding="utf-8")


def out_problem(setup: WorkerSetup) -> str | None:
    """Why this worker cannot use ``--out`` (not there, another folder of the same name, not
    writable), or None."""
    where = f"{socket.gethostname()} (pid {os.getpid()})"
    shared = (
        "on a cluster of several machines --out must be shared storage (NFS, a mounted bucket) "
        "mounted at the same path on every node"
    )
    try:
        seen = (Path(setup.out) / MARKER).read_text(encoding="utf-8")
    except OSError as exc:
        return f"the worker on {where} cannot see --out {setup.out} ({exc.strerror or exc}): {shared}"
    if seen != setup.token:
        return f"the worker on {where} sees another folder at --out {setup.out} than the batch's: {shared}"
    if not os.access(setup.out, os.W_OK | os.X_OK):
        return f"the worker on {where} cannot write in --out {setup.out}: check its permissions on that machine"
    return None


class ItemRunner:
    """Runs items of one graph on this worker's device; one :class:`Cache` for its whole life."""

    def __init__(self, setup: WorkerSetup, name: str, *, threads: int | None = None, device: str | None = None) -> None:
        from .cache import Cache

        self.setup, self.name = setup, name
        self.problem = out_problem(setup)
        self.graph = setup.graph.load()
        if threads is not None:
            import torch

            torch.set_num_threads(max(1, threads))
        from .devices import resolve_device

        self.device = resolve_device(device or setup.device)
        self.cache = Cache(disk=setup.cache)
        self.items = 0

    def info(self) -> dict[str, Any]:
        """Who this worker is: its name, machine, process, device and GPUs."""
        import torch

        return {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.device,
            "threads": torch.get_num_threads(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }

    def run(self, item: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Run the graph for one item; never raises for the item's own failures."""
        from .events import appended_log

        started = time.monotonic()
        folder = Path(self.setup.out) / item
        self.items += 1
        try:
            with appended_log(folder / "events.jsonl", run_id=item) as events:
                result = self.graph.run(
                    device=self.device,
                    overrides=dict(overrides),
                    cache=self.cache,
                    out_dir=folder,
                    events=events,
                    raise_on_failure=False,
                )
            if result.ok:
                status, error = DONE, None
            else:
                status, error = FAILED, "; ".join(result.failures) or "cancelled"
            outputs = _files_under(result.outputs.values(), Path(self.setup.out), folder)
        except GraphError as exc:  # checked before the batch began; a file may have gone since
            status, error, outputs = FAILED, "; ".join(str(p) for p in exc.problems), []
        except Exception as exc:  # a bug of ours or an unwritable folder: the item fails, the worker goes on
            status, error, outputs = FAILED, f"{type(exc).__name__}: {exc}", []
        return {
            "item": item,
            "status": status,
            "seconds": round(time.monotonic() - started, 3),
            "worker": self.name,
            "outputs": outputs,
            "error": printable(error) if error else None,
        }


def _files_under(values: Any, out: Path, folder: Path) -> list[str]:
    """The files among output values (paths, lists of paths) that lie in ``folder``, relative to ``out``."""
    found: list[str] = []
    stack = list(values)
    root = os.path.abspath(folder)
    while stack:
        value = stack.pop()
        if isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, str) and os.path.isabs(value) and value.startswith(root + os.sep):
            if os.path.isfile(value):
                found.append(os.path.relpath(value, out))
    return sorted(set(found))
