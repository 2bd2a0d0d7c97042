"""Run a validated :class:`Plan`: decide what must run, run it, report why.

The executor knows nothing about art: it orders nodes, keys and caches their
results, places tensors on the device, frees intermediates after their last
consumer, and isolates failures so independent branches still finish.
Nothing here recurses, so a chain of 10,000 nodes runs like a chain of 10.

One :class:`_Run` holds the state of an execution — keys, values, reports,
consumer counts, failures — and its steps read top to bottom: key every node,
decide what must run (walking back from the targets), run those nodes in order,
collect the outputs.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cache import Cache, CacheDamaged
from .context import Context
from .errors import Cancelled, NodeError, printable
from .events import RunEvents
from .files import confine_writes
from .keys import node_key, why_it_runs
from .node import Param
from .paths import PathProblem, resolve_input, resolve_output
from .plan import Plan, PlannedNode
from .progress import ProgressFactory
from .result import CACHED, CANCELLED, EXECUTED, FAILED, SKIPPED, NodeReport, RunResult, describe_value
from .types import TypeCheckError, adapt

__all__ = [
    "CACHED",
    "EXECUTED",
    "FAILED",
    "SKIPPED",
    "NodeReport",
    "RunResult",
    "describe_value",
    "execute",
]


def execute(
    plan: Plan,
    *,
    device: str = "cpu",
    cache: Cache | None = None,
    targets: Iterable[str] | None = None,
    progress: ProgressFactory | None = None,
    events: RunEvents | None = None,
    provenance: Mapping[str, Any] | None = None,
    graph_id: str | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> RunResult:
    """Run what is needed for ``targets`` (``NODE`` or ``NODE.OUTPUT``; default:
    the output nodes, or every sink when the graph has none), telling ``events``
    what happens (see :mod:`artgraph.events`)."""
    run = _Run(
        plan,
        device,
        cache,
        _targets(plan, targets),
        graph_id or plan.graph.file,
        progress=progress,
        provenance=provenance,
        events=events or RunEvents(),
        cancelled=cancelled,
    )
    return run.go()


class _Run:
    """One execution of a plan: the state its steps share, and the steps."""

    def __init__(
        self,
        plan: Plan,
        device: str,
        cache: Cache | None,
        wanted: dict[str, list[str] | None],
        graph_id: str,
        *,
        progress: ProgressFactory | None,
        provenance: Mapping[str, Any] | None,
        events: RunEvents,
        cancelled: Callable[[], bool] | None,
    ) -> None:
        self.plan, self.device, self.cache, self.wanted, self.graph_id = plan, device, cache, wanted, graph_id
        self.progress, self.provenance, self.events = progress, provenance, events
        #: asked between nodes, and by nodes at each progress step: stop when it says so
        self.cancelled = cancelled
        #: the nodes the targets depend on; the others are skipped
        self.relevant = _ancestors(plan, wanted)
        #: node -> its cache key, and what the key was made of (for the ledger's "why")
        self.keys: dict[str, str] = {}
        self.parts: dict[str, dict[str, Any]] = {}
        for node_id, node in plan.nodes.items():
            if node_id in self.relevant:
                self.keys[node_id], self.parts[node_id] = node_key(node, self.keys)
        #: what each node's key was made of last time, per graph
        self.ledger: dict[str, Any] = cache.ledger(graph_id) if cache is not None else {}
        self.reports: dict[str, NodeReport] = {
            i: NodeReport(SKIPPED, reason="does not lead to an output") for i in plan.nodes if i not in self.relevant
        }
        #: node -> {output: value}, for the nodes whose values are still needed
        self.values: dict[str, dict[str, Any]] = {}
        #: node -> how many nodes still to run read its values
        self.consumers: dict[str, int] = {}
        self.failed: set[str] = set()
        #: node -> why its disk cache entry was thrown away
        self.damaged: dict[str, str] = {}
        self.warnings: list[str] = []
        #: real path of each file the graph reads -> the nodes that read it (none may write it)
        self.readers = _readers(plan)
        self.protected = frozenset(self.readers)
        #: file -> the node that wrote it in this run (no other node may)
        self.written: dict[str, str] = {}

    def go(self) -> RunResult:
        started = time.perf_counter()
        self.events.emit(
            "run_start",
            graph=self.plan.graph.name,
            nodes=list(self.plan.nodes),
            device=self.device,
            **self.plan.wiring(),
        )
        to_run = self.decide()
        for node_id in self.plan.nodes:
            report = self.reports.get(node_id)
            if report is not None and report.status == CACHED:
                self.events.emit("node_cached", node_id, reason=report.reason)
        self.warnings += [
            f"node '{i}': its cached result was damaged ({why}); deleted and recomputed"
            for i, why in self.damaged.items()
        ]
        order = [node_id for node_id in self.plan.nodes if node_id in to_run]
        for node_id in order:
            for wire in self.plan.nodes[node_id].sources():
                self.consumers[wire.src] = self.consumers.get(wire.src, 0) + 1
        for index, node_id in enumerate(order, start=1):
            self.run_node(self.plan.nodes[node_id], index, len(order))
        self.save_ledger()
        outputs, output_types = self.collect()
        result = RunResult({i: self.reports[i] for i in self.plan.nodes}, outputs, output_types, self.warnings)
        counts: dict[str, int] = {}
        for report in result.nodes.values():
            counts[report.status] = counts.get(report.status, 0) + 1
        self.events.emit(
            "run_done",
            ok=result.ok,
            cancelled=result.cancelled,
            counts=counts,
            seconds=round(time.perf_counter() - started, 6),
            warnings=list(self.warnings),
        )
        return result

    # -- deciding --------------------------------------------------------

    def decide(self) -> set[str]:
        """Walk back from the targets: a needed node is served from cache when it can be,
        and only nodes whose results are missing pull in their own inputs.

        A needed result is loaded (and pinned) here, not later: a disk entry that fails
        its checks is then simply a miss, and the node joins the nodes to run."""
        needed = set(self.wanted)
        to_run: set[str] = set()
        for node_id in reversed(list(self.plan.nodes)):
            if node_id not in self.relevant:
                continue
            node = self.plan.nodes[node_id]
            if node_id not in needed:
                self.reports[node_id] = NodeReport(CACHED, reason="not needed: its consumers were cached")
                continue
            if self.cache is not None and node.spec.cacheable:
                try:
                    held, from_disk = self.cache.lookup(self.keys[node_id], self.device)
                except CacheDamaged as exc:
                    self.damaged[node_id], held, from_disk = str(exc), None, False
                if held is not None:
                    # Pin it now: results stored later in this run could push it out of the LRU.
                    self.values[node_id] = held
                    where = " (disk)" if from_disk else ""
                    self.reports[node_id] = NodeReport(CACHED, reason=f"same key as a cached result{where}")
                    continue
            to_run.add(node_id)
            needed.update(w.src for w in node.sources())
        return to_run

    # -- running -----------------------------------------------------------

    def run_node(self, node: PlannedNode, index: int, total: int) -> None:
        if self.cancelled is not None and self.cancelled():
            self.failed.add(node.id)
            self.finish(node, NodeReport(CANCELLED, reason="the run was cancelled before it started"))
            return
        upstream_failed = [w.src for w in node.sources() if w.src in self.failed]
        if upstream_failed:
            self.failed.add(node.id)
            self.finish(node, NodeReport(SKIPPED, reason=f"upstream node '{upstream_failed[0]}' failed"))
            return
        reason = why_it_runs(
            node, self.parts[node.id], self.ledger.get(node.id), self.cache is not None, self.damaged.get(node.id)
        )
        self.events.emit("node_start", node.id, type=node.spec.type_name, index=index, total=total)
        start = time.perf_counter()
        try:
            result = self.call(node)
        except Cancelled as exc:
            self.failed.add(node.id)
            self.finish(node, NodeReport(CANCELLED, time.perf_counter() - start, reason, str(exc)))
            return
        except Exception as exc:
            self.failed.add(node.id)
            seconds = time.perf_counter() - start
            self.finish(node, NodeReport(FAILED, seconds, reason, _error_text(node, exc), traceback.format_exc()))
            return
        self.values[node.id] = result
        self.store(node, result)
        self.finish(node, NodeReport(EXECUTED, time.perf_counter() - start, reason))

    def call(self, node: PlannedNode) -> dict[str, Any]:
        """Gather the node's arguments, call it with writes confined to --out, check what it returned."""
        kwargs = self.gather(node)
        seed = _seed(node.spec, kwargs, self.keys[node.id])
        if node.spec.seeded and not node.spec.takes_seed:
            del kwargs["seed"]  # declared for the context's generator, not for the function
        ctx = Context(
            node.id,
            node.spec.type_name,
            device=self.device,
            seed=seed,
            progress=self.progress,
            provenance=self.provenance,
            events=self.events,
            cancelled=self.cancelled,
        )
        if node.spec.wants_ctx:
            kwargs["ctx"] = ctx
        protected = self.protected
        if node.reads:  # a node may write a file only it reads (a checkpoint it resumes from)
            protected = protected - {path for path, who in self.readers.items() if who == {node.id}}
        with confine_writes(self.plan.out_dir, protected, owner=node.id, written=self.written):
            result = node.spec.normalise_outputs(node.spec.callable()(**kwargs))
        for name, out in node.spec.outputs.items():
            problem = out.type.check_value(result[name])
            if problem:
                raise NodeError(f"output '{name}' is not a valid {out.type.name}: {problem}")
            if out.type.on_device:
                result[name] = _to_device(result[name], self.device)
        return result

    def gather(self, node: PlannedNode) -> dict[str, Any]:
        """The keyword arguments: literal params, then the wired values (adapted to their
        ports; wired params held to the same rules as written ones)."""
        kwargs: dict[str, Any] = dict(node.params)
        for name, wires in node.wires.items():
            found = [adapt(self.value_of(w.src)[w.output], w.src_type, w.dst_type) for w in wires]
            kwargs[name] = found if name in node.listed else found[0]
            param = node.spec.params.get(name)
            if param is not None:
                kwargs[name] = _checked_wired_param(self.plan, name, param, kwargs[name])
        if node.spec.check is not None and any(name in node.spec.params for name in node.wires):
            _run_check(node, {name: kwargs[name] for name in node.spec.params})
        for name in node.spec.inputs:
            kwargs.setdefault(name, None)
        return kwargs

    def value_of(self, node_id: str) -> dict[str, Any]:
        found = self.values.get(node_id)
        if found is None:  # decide() pins every cached result a node to run consumes
            raise NodeError(f"the result of '{node_id}' is missing (an artgraph bug: please report it)")
        return found

    def store(self, node: PlannedNode, result: dict[str, Any]) -> None:
        if self.cache is None or not node.spec.cacheable:
            return
        types = {name: out.type for name, out in node.spec.outputs.items()}
        try:
            self.cache.put(self.keys[node.id], node.spec.type_name, result, types)
        except Exception as exc:  # a full or unwritable disk costs the cache, never the result
            self.warnings.append(f"node '{node.id}': not stored in the disk cache: {type(exc).__name__}: {exc}")
        self.ledger[node.id] = self.parts[node.id]

    def finish(self, node: PlannedNode, report: NodeReport) -> None:
        self.reports[node.id] = report
        if report.status == FAILED:
            self.events.emit(
                "node_error", node.id, message=report.error, seconds=round(report.seconds, 6), traceback=report.trace
            )
        else:
            outputs = self.values.get(node.id, {}) if report.status == EXECUTED else {}
            described = {name: describe_value(value, node.spec.outputs[name].type) for name, value in outputs.items()}
            self.events.emit(
                "node_done",
                node.id,
                status=report.status,
                seconds=round(report.seconds, 6),
                reason=report.reason,
                outputs=described,
            )
        self.release(node)

    def release(self, node: PlannedNode) -> None:
        """Drop inputs whose last consumer just ran (the cache may still hold them)."""
        for wire in node.sources():
            left = self.consumers.get(wire.src, 0) - 1
            self.consumers[wire.src] = left
            if left <= 0 and wire.src not in self.wanted:
                self.values.pop(wire.src, None)
        if self.consumers.get(node.id, 0) == 0 and node.id not in self.wanted:
            self.values.pop(node.id, None)

    # -- ending ------------------------------------------------------------

    def save_ledger(self) -> None:
        if self.cache is None:
            return
        try:
            self.cache.save_ledger(self.graph_id)
        except Exception as exc:
            self.warnings.append(f"the run's ledger was not saved: {type(exc).__name__}: {exc}")

    def collect(self) -> tuple[dict[str, Any], dict[str, Any]]:
        outputs: dict[str, Any] = {}
        types: dict[str, Any] = {}
        for node_id, names in self.wanted.items():
            found = self.values.get(node_id)
            if node_id in self.failed or found is None:
                continue
            spec = self.plan.nodes[node_id].spec
            for name in names or list(spec.outputs):
                outputs[f"{node_id}.{name}"] = found[name]
                types[f"{node_id}.{name}"] = spec.outputs[name].type
        return outputs, types


# -- planning helpers ----------------------------------------------------------


def _targets(plan: Plan, targets: Iterable[str] | None) -> dict[str, list[str] | None]:
    """node id -> the outputs requested (None: all of them)."""
    wanted: dict[str, list[str] | None] = {}
    if targets:
        for ref in targets:
            node_id, _, out = ref.partition(".")
            if node_id not in plan.nodes:
                raise KeyError(f"no node '{node_id}' in the graph")
            outputs = plan.nodes[node_id].spec.outputs
            if out and out not in outputs:
                raise KeyError(f"node '{node_id}' has no output '{out}' (outputs: {', '.join(outputs)})")
            if out:
                current = wanted.get(node_id, [])
                if current is not None:
                    wanted[node_id] = [*current, out]
            else:
                wanted[node_id] = None
        return wanted
    outs = [i for i, n in plan.nodes.items() if n.spec.output_node]
    if not outs:
        fed = {w.src for n in plan.nodes.values() for w in n.sources()}
        outs = [i for i in plan.nodes if i not in fed]
    return {i: None for i in outs}


def _ancestors(plan: Plan, wanted: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    stack = list(wanted)
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(w.src for w in plan.nodes[node_id].sources())
    return seen


def _readers(plan: Plan) -> dict[str, set[str]]:
    readers: dict[str, set[str]] = {}
    for node in plan.nodes.values():
        for path in node.reads:
            readers.setdefault(os.path.realpath(path), set()).add(node.id)
    return readers


def _seed(spec: Any, kwargs: dict[str, Any], key: str) -> int:
    """A seeded node's ``seed`` param (literal or wired) when set, else a number derived from its key
    (a re-run draws the same numbers either way)."""
    seed = kwargs.get("seed") if spec.seeded else None
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int(key[:8], 16)


# -- running helpers -----------------------------------------------------------


def _checked_wired_param(plan: Plan, name: str, param: Param, value: Any) -> Any:
    """A param wired from another node obeys what a written one does: bounds, and files
    under the graph's folder (inputs) or the output folder (outputs)."""
    try:
        param.check_bounds(value)
        if param.file is not None and value is not None and value not in param.keywords:
            if not isinstance(value, str):
                raise TypeCheckError(f"expected a file path, got {type(value).__name__}")
            if param.file == "input":
                return resolve_input(value, plan.graph.base_dir, confine=plan.graph.confine_inputs)
            return resolve_output(value, plan.out_dir)
    except (TypeCheckError, PathProblem) as exc:
        hint = f" — {exc.hint}" if isinstance(exc, PathProblem) and exc.hint else ""
        raise NodeError(f"wired param '{name}': {exc}{hint}") from None
    return value


def _run_check(node: PlannedNode, params: dict[str, Any]) -> None:
    """The node's own check, on params that include wired values (validation could not
    run it: it saw only the literal ones)."""
    assert node.spec.check is not None
    found = [f if isinstance(f, str) else f[0] for f in node.spec.check(params)]
    if found:
        raise NodeError("; ".join(found))


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if hasattr(value, "to") and hasattr(value, "device") and str(value.device) != device:
        import torch

        if value.device != torch.device(device):
            return value.to(device)
    return value


def _error_text(node: PlannedNode, exc: Exception) -> str:
    """One line for the report (control characters escaped: values from the graph reach
    the terminal in it); the traceback is kept apart."""
    return printable(_error_line(node, exc))


def _error_line(node: PlannedNode, exc: Exception) -> str:
    label = f"{node.spec.type_name}"
    if isinstance(exc, NodeError):
        return f"{label}: {exc}"
    if _out_of_memory(exc):
        asked = _ALLOCATION.search(str(exc))
        size = f" (it asked for {_bytes(asked.group(1), asked.group(2))})" if asked else ""
        return (
            f"{label}: out of memory{size}; lower the sizes, counts or batch of this node "
            "or of the nodes feeding it, or run it on a device with more memory"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{label}: {type(exc).__name__}: {first}"


#: PyTorch's allocators say how much they wanted: "allocate 123 bytes" (CPU), "allocate 2.00 GiB" (CUDA).
_ALLOCATION = re.compile(r"allocate ([0-9.]+) ?(bytes|[KMGT]iB)", re.IGNORECASE)


def _out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def _bytes(amount: str, unit: str) -> str:
    if unit.lower() != "bytes":
        return f"{amount} {unit}"
    size = float(amount)
    for name in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or name == "TiB":
            return f"{size:.0f} {name}" if name == "bytes" else f"{size:.1f} {name}"
        size /= 1024
    return f"{amount} bytes"
