"""Run a validated :class:`Plan`: decide what must run, run it, report why.

The executor knows nothing about art: it orders nodes, keys and caches their
results, places tensors on the device, frees intermediates after their last
consumer, and isolates failures so independent branches still finish.
Nothing here recurses, so a chain of 10,000 nodes runs like a chain of 10.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .cache import Cache, CacheDamaged, file_fingerprint
from .canonical import to_plain
from .context import Context
from .errors import NodeError, printable
from .files import confine_writes
from .node import Param
from .paths import PathProblem, resolve_input, resolve_output
from .plan import Plan, PlannedNode, Wire
from .progress import ProgressFactory
from .types import PortType, TypeCheckError, adapt

EXECUTED, CACHED, FAILED, SKIPPED = "executed", "cached", "failed", "skipped"


@dataclass
class NodeReport:
    status: str
    seconds: float = 0.0
    reason: str = ""
    error: str | None = None
    #: The Python traceback of a failure, shown only with ``--debug``.
    trace: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "seconds": round(self.seconds, 6), "reason": self.reason}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class RunResult:
    """What a run produced: per-node reports and the values of its outputs."""

    nodes: dict[str, NodeReport]
    outputs: dict[str, Any]
    output_types: dict[str, PortType] = field(default_factory=dict)
    #: What went wrong around the nodes without failing them (a damaged cache entry
    #: that was recomputed, a disk cache that could not be written).
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status != FAILED for r in self.nodes.values())

    @property
    def failures(self) -> list[str]:
        return [f"node '{i}': {r.error}" for i, r in self.nodes.items() if r.status == FAILED]

    def __getitem__(self, ref: str) -> Any:
        return self.outputs[ref]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "nodes": {i: r.to_dict() for i, r in self.nodes.items()},
            "outputs": {k: describe_value(v, self.output_types.get(k)) for k, v in self.outputs.items()},
            "warnings": list(self.warnings),
        }


def describe_value(value: Any, port: PortType | None) -> Any:
    """A JSON-ready view of a value: scalars and paths as they are, tensors by shape."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return {
            "type": port.name if port else "Tensor",
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "device": str(getattr(value, "device", "")),
        }
    if isinstance(value, (list, tuple)):
        inner = port.element if port is not None else None
        return [describe_value(v, inner) for v in value]
    if isinstance(value, dict):
        try:
            import json

            json.dumps(value)
            return value
        except (TypeError, ValueError):
            pass
    return {"type": port.name if port else "Any", "class": type(value).__name__}


class RunListener(Protocol):
    """Receives events as the run goes (the CLI prints them)."""

    def node_started(self, node_id: str, node_type: str, index: int, total: int) -> None: ...
    def node_finished(self, node_id: str, report: NodeReport) -> None: ...


class _NoListener:
    def node_started(self, node_id: str, node_type: str, index: int, total: int) -> None:
        pass

    def node_finished(self, node_id: str, report: NodeReport) -> None:
        pass


def execute(
    plan: Plan,
    *,
    device: str = "cpu",
    cache: Cache | None = None,
    targets: Iterable[str] | None = None,
    progress: ProgressFactory | None = None,
    listener: RunListener | None = None,
    provenance: dict[str, Any] | None = None,
    graph_id: str | None = None,
) -> RunResult:
    """Run what is needed for ``targets`` (``NODE`` or ``NODE.OUTPUT``; default:
    the output nodes, or every sink when the graph has none)."""
    listener = listener or _NoListener()
    nodes = plan.nodes
    wanted = _targets(plan, targets)
    relevant = _ancestors(plan, wanted)
    graph_id = graph_id or plan.graph.file

    keys: dict[str, str] = {}
    parts: dict[str, dict[str, Any]] = {}
    for node_id, node in nodes.items():
        if node_id in relevant:
            keys[node_id], parts[node_id] = _key(node, keys)

    ledger = cache.ledger(graph_id) if cache is not None else {}
    reports: dict[str, NodeReport] = {
        i: NodeReport(SKIPPED, reason="does not lead to an output") for i in nodes if i not in relevant
    }
    values: dict[str, dict[str, Any]] = {}
    damaged: dict[str, str] = {}
    to_run = _decide(plan, wanted, relevant, keys, cache, device, reports, values, damaged)
    warnings = [
        f"node '{i}': its cached result was damaged ({why}); deleted and recomputed" for i, why in damaged.items()
    ]

    consumers: dict[str, int] = {}
    for node_id in to_run:
        for wire in nodes[node_id].sources():
            consumers[wire.src] = consumers.get(wire.src, 0) + 1
    readers = _readers(plan)
    written: dict[str, str] = {}  # file -> the node that wrote it in this run

    failed: set[str] = set()
    total = len(to_run)
    index = 0
    for node_id in nodes:
        if node_id not in to_run:
            continue
        node = nodes[node_id]
        index += 1
        upstream_failed = [w.src for w in node.sources() if w.src in failed]
        if upstream_failed:
            failed.add(node_id)
            reports[node_id] = NodeReport(SKIPPED, reason=f"upstream node '{upstream_failed[0]}' failed")
            listener.node_finished(node_id, reports[node_id])
            _release(node, consumers, values, wanted)
            continue
        reason = _why(node, keys[node_id], parts[node_id], ledger.get(node_id), cache, damaged.get(node_id))
        listener.node_started(node_id, node.spec.type_name, index, total)
        start = time.perf_counter()
        try:
            kwargs = _gather(plan, node, values)
            ctx = Context(
                node_id,
                node.spec.type_name,
                device=device,
                seed=_seed(kwargs, keys[node_id]),
                progress=progress,
                provenance=provenance,
            )
            if node.spec.wants_ctx:
                kwargs["ctx"] = ctx
            protected = [p for p, who in readers.items() if who != {node_id}]
            with confine_writes(plan.out_dir, protected, owner=node_id, written=written):
                result = node.spec.normalise_outputs(node.spec.callable()(**kwargs))
            _check_outputs(node, result, device)
        except Exception as exc:
            failed.add(node_id)
            reports[node_id] = NodeReport(
                FAILED,
                time.perf_counter() - start,
                reason,
                _error_text(node, exc),
                traceback.format_exc(),
            )
            listener.node_finished(node_id, reports[node_id])
            _release(node, consumers, values, wanted)
            continue
        values[node_id] = result
        if cache is not None and node.spec.cacheable:
            try:
                cache.put(keys[node_id], node.spec.type_name, result, {n: o.type for n, o in node.spec.outputs.items()})
            except Exception as exc:  # a full or unwritable disk costs the cache, never the result
                warnings.append(f"node '{node_id}': not stored in the disk cache: {type(exc).__name__}: {exc}")
            ledger[node_id] = parts[node_id]
        reports[node_id] = NodeReport(EXECUTED, time.perf_counter() - start, reason)
        listener.node_finished(node_id, reports[node_id])
        _release(node, consumers, values, wanted)

    if cache is not None:
        try:
            cache.save_ledger(graph_id)
        except Exception as exc:
            warnings.append(f"the run's ledger was not saved: {type(exc).__name__}: {exc}")
    outputs, output_types = _collect(plan, wanted, values, failed)
    return RunResult({i: reports[i] for i in nodes}, outputs, output_types, warnings)


# -- planning helpers ------------------------------------------------------


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


def _key(node: PlannedNode, keys: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The node's key: a hash of its identity (type, version, params), the keys of its
    inputs and the fingerprints of the files it reads. Also returns those parts, for
    the ledger that explains why a node ran."""
    inputs: dict[str, Any] = {}
    for name, wire in node.wires.items():
        if isinstance(wire, list):
            inputs[name] = [f"{keys[w.src]}.{w.output}" for w in wire]
        else:
            inputs[name] = f"{keys[wire.src]}.{wire.output}"
    parts: dict[str, Any] = {
        "type": node.spec.type_name,
        "version": node.spec.version,
        "params": to_plain(node.key_params()),
        "inputs": inputs,
    }
    h = hashlib.blake2b(node.identity().encode(), digest_size=16)
    for name in sorted(inputs):
        value = inputs[name]
        h.update(f"|{name}=".encode())
        h.update((",".join(value) if isinstance(value, list) else value).encode())
    if node.reads:
        parts["reads"] = [file_fingerprint(p) for p in node.reads]
        h.update(json.dumps(parts["reads"]).encode())
    if not node.spec.deterministic:
        h.update(uuid.uuid4().bytes)
    return h.hexdigest(), parts


def _decide(
    plan: Plan,
    wanted: dict[str, Any],
    relevant: set[str],
    keys: dict[str, str],
    cache: Cache | None,
    device: str,
    reports: dict[str, NodeReport],
    values: dict[str, dict[str, Any]],
    damaged: dict[str, str],
) -> set[str]:
    """Walk back from the targets: a needed node is served from cache when it can be,
    and only nodes whose results are missing pull in their own inputs.

    A needed result is loaded (and pinned) here, not later: a disk entry that fails
    its checks is then simply a miss, and the node joins the nodes to run."""
    needed = set(wanted)
    to_run: set[str] = set()
    for node_id in reversed(list(plan.nodes)):
        if node_id not in relevant:
            continue
        node = plan.nodes[node_id]
        if node_id not in needed:
            reports[node_id] = NodeReport(CACHED, reason="not needed: its consumers were cached")
            continue
        if cache is not None and node.spec.cacheable:
            in_memory = keys[node_id] in cache.memory
            try:
                held = cache.get(keys[node_id], device)
            except CacheDamaged as exc:
                damaged[node_id], held = str(exc), None
            if held is not None:
                # Pin it now: results stored later in this run could push it out of the LRU.
                values[node_id] = held
                where = "" if in_memory else " (disk)"
                reports[node_id] = NodeReport(CACHED, reason=f"same key as a cached result{where}")
                continue
        to_run.add(node_id)
        needed.update(w.src for w in node.sources())
    return to_run


def _readers(plan: Plan) -> dict[str, set[str]]:
    """Real path of each file the graph reads -> the nodes that read it (none may write it)."""
    readers: dict[str, set[str]] = {}
    for node in plan.nodes.values():
        for path in node.reads:
            readers.setdefault(os.path.realpath(path), set()).add(node.id)
    return readers


def _why(
    node: PlannedNode,
    key: str,
    parts: dict[str, Any],
    previous: Any,
    cache: Cache | None,
    damage: str | None = None,
) -> str:
    """Why a node runs, from what its last key was made of (the ledger may be damaged: any
    shape is tolerated, at worst the reason is less precise)."""
    if cache is None:
        return "caching disabled"
    if node.spec.output_node:
        return "output node: always runs"
    if not node.spec.deterministic:
        return "not deterministic: never cached"
    if damage is not None:
        return f"its cached result was damaged ({damage}); deleted and recomputed"
    if not isinstance(previous, dict):
        return "no cached result"
    if previous.get("version") != parts["version"]:
        return f"node version changed ({previous.get('version')} -> {parts['version']})"
    old, new = _mapping(previous.get("params")), parts["params"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return f"param '{name}' changed: {_short(old.get(name))} -> {_short(new.get(name))}"
    if previous.get("reads") != parts.get("reads"):
        return "an input file changed"
    old_in, new_in = _mapping(previous.get("inputs")), parts["inputs"]
    for name in sorted(set(old_in) | set(new_in)):
        if old_in.get(name) != new_in.get(name):
            return f"input '{name}' changed upstream"
    return "result no longer in the cache"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _seed(kwargs: dict[str, Any], key: str) -> int:
    """The node's ``seed`` param (literal or wired) when it has one, else one derived from its key."""
    seed = kwargs.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int(key[:8], 16)


# -- running helpers -------------------------------------------------------


def _value_of(wire: Wire, values: dict[str, dict[str, Any]]) -> Any:
    found = values.get(wire.src)
    if found is None:  # _decide pins every cached result a node to run consumes
        raise NodeError(f"the result of '{wire.src}' is missing (an artgraph bug: please report it)")
    return found[wire.output]


def _gather(plan: Plan, node: PlannedNode, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(node.params)
    for name, wires in node.wires.items():
        if isinstance(wires, list):
            kwargs[name] = [adapt(_value_of(w, values), w.src_type, w.dst_type) for w in wires]
        else:
            kwargs[name] = adapt(_value_of(wires, values), wires.src_type, wires.dst_type)
        param = node.spec.params.get(name)
        if param is not None:
            kwargs[name] = _checked_wired_param(plan, name, param, kwargs[name])
    for name in node.spec.inputs:
        kwargs.setdefault(name, None)
    return kwargs


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


def _check_outputs(node: PlannedNode, result: dict[str, Any], device: str) -> None:
    for name, out in node.spec.outputs.items():
        problem = out.type.check_value(result[name])
        if problem:
            raise NodeError(f"output '{name}' is not a valid {out.type.name}: {problem}")
        if out.type.on_device:
            result[name] = _to_device(result[name], device)


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if hasattr(value, "to") and hasattr(value, "device") and str(value.device) != device:
        import torch

        if value.device != torch.device(device):
            return value.to(device)
    return value


def _release(
    node: PlannedNode, consumers: dict[str, int], values: dict[str, dict[str, Any]], wanted: dict[str, Any]
) -> None:
    """Drop inputs whose last consumer just ran (the cache may still hold them)."""
    for wire in node.sources():
        left = consumers.get(wire.src, 0) - 1
        consumers[wire.src] = left
        if left <= 0 and wire.src not in wanted:
            values.pop(wire.src, None)
    if consumers.get(node.id, 0) == 0 and node.id not in wanted:
        values.pop(node.id, None)


def _collect(
    plan: Plan,
    wanted: dict[str, list[str] | None],
    values: dict[str, dict[str, Any]],
    failed: set[str],
) -> tuple[dict[str, Any], dict[str, PortType]]:
    outputs: dict[str, Any] = {}
    types: dict[str, PortType] = {}
    for node_id, names in wanted.items():
        found = values.get(node_id)
        if node_id in failed or found is None:
            continue
        spec = plan.nodes[node_id].spec
        for name in names or list(spec.outputs):
            outputs[f"{node_id}.{name}"] = found[name]
            types[f"{node_id}.{name}"] = spec.outputs[name].type
    return outputs, types


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
