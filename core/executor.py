"""Run a validated :class:`Plan`: decide what must run, run it, report why.

The executor knows nothing about art: it orders nodes, keys and caches their
results, places tensors on the device, frees intermediates after their last
consumer, and isolates failures so independent branches still finish.
Nothing here recurses, so a chain of 10,000 nodes runs like a chain of 10.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .cache import Cache, file_fingerprint
from .context import Context
from .errors import NodeError
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
    to_run = _decide(plan, wanted, relevant, keys, cache, reports, values)

    consumers: dict[str, int] = {}
    for node_id in to_run:
        for wire in nodes[node_id].sources():
            consumers[wire.src] = consumers.get(wire.src, 0) + 1

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
        reason = _why(node, keys[node_id], parts[node_id], ledger.get(node_id), cache)
        listener.node_started(node_id, node.spec.type_name, index, total)
        start = time.perf_counter()
        try:
            kwargs = _gather(node, values, cache, keys, device)
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
            cache.put(keys[node_id], node.spec.type_name, result, {n: o.type for n, o in node.spec.outputs.items()})
            ledger[node_id] = parts[node_id]
        reports[node_id] = NodeReport(EXECUTED, time.perf_counter() - start, reason)
        listener.node_finished(node_id, reports[node_id])
        _release(node, consumers, values, wanted)

    if cache is not None:
        cache.save_ledger(graph_id)
    outputs, output_types = _collect(plan, wanted, values, cache, keys, device, failed)
    return RunResult({i: reports[i] for i in nodes}, outputs, output_types)


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
        "params": node.params,
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
    reports: dict[str, NodeReport],
    values: dict[str, dict[str, Any]],
) -> set[str]:
    """Walk back from the targets: a needed node is served from cache when it can be,
    and only nodes whose results are missing pull in their own inputs."""
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
            held = cache.memory.get(keys[node_id])
            if held is not None:
                # Pin it now: results stored later in this run could push it out of the LRU.
                values[node_id] = held
                reports[node_id] = NodeReport(CACHED, reason="same key as a cached result")
                continue
            if cache.disk is not None and cache.disk.has(keys[node_id]):
                reports[node_id] = NodeReport(CACHED, reason="same key as a cached result (disk)")
                continue
        to_run.add(node_id)
        needed.update(w.src for w in node.sources())
    return to_run


def _why(
    node: PlannedNode, key: str, parts: dict[str, Any], previous: dict[str, Any] | None, cache: Cache | None
) -> str:
    if cache is None:
        return "caching disabled"
    if node.spec.output_node:
        return "output node: always runs"
    if not node.spec.deterministic:
        return "not deterministic: never cached"
    if previous is None:
        return "no cached result"
    if previous.get("version") != parts["version"]:
        return f"node version changed ({previous.get('version')} -> {parts['version']})"
    old, new = previous.get("params", {}), parts["params"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return f"param '{name}' changed: {_short(old.get(name))} -> {_short(new.get(name))}"
    if previous.get("reads") != parts.get("reads"):
        return "an input file changed"
    old_in, new_in = previous.get("inputs", {}), parts["inputs"]
    for name in sorted(set(old_in) | set(new_in)):
        if old_in.get(name) != new_in.get(name):
            return f"input '{name}' changed upstream"
    return "result no longer in the cache"


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


def _value_of(
    wire: Wire, values: dict[str, dict[str, Any]], cache: Cache | None, keys: dict[str, str], device: str
) -> Any:
    found = values.get(wire.src)
    if found is None:
        assert cache is not None, "a node was skipped without a cache"
        found = cache.get(keys[wire.src], device)
        if found is None:
            raise NodeError(f"the cached result of '{wire.src}' vanished from the cache; run again")
        values[wire.src] = found
    return found[wire.output]


def _gather(
    node: PlannedNode, values: dict[str, dict[str, Any]], cache: Cache | None, keys: dict[str, str], device: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(node.params)
    for name, wire in node.wires.items():
        if isinstance(wire, list):
            kwargs[name] = [adapt(_value_of(w, values, cache, keys, device), w.src_type, w.dst_type) for w in wire]
        else:
            kwargs[name] = adapt(_value_of(wire, values, cache, keys, device), wire.src_type, wire.dst_type)
        param = node.spec.params.get(name)
        if param is not None:
            try:
                param.check_bounds(kwargs[name])
            except TypeCheckError as exc:
                raise NodeError(f"wired param '{name}': {exc}") from None
    for name in node.spec.inputs:
        kwargs.setdefault(name, None)
    return kwargs


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
    cache: Cache | None,
    keys: dict[str, str],
    device: str,
    failed: set[str],
) -> tuple[dict[str, Any], dict[str, PortType]]:
    outputs: dict[str, Any] = {}
    types: dict[str, PortType] = {}
    for node_id, names in wanted.items():
        if node_id in failed:
            continue
        found = values.get(node_id)
        if found is None and cache is not None:
            found = cache.get(keys[node_id], device)
        if found is None:
            continue
        spec = plan.nodes[node_id].spec
        for name in names or list(spec.outputs):
            outputs[f"{node_id}.{name}"] = found[name]
            types[f"{node_id}.{name}"] = spec.outputs[name].type
    return outputs, types


def _error_text(node: PlannedNode, exc: Exception) -> str:
    label = f"{node.spec.type_name}"
    if isinstance(exc, NodeError):
        return f"{label}: {exc}"
    return f"{label}: {type(exc).__name__}: {exc}"
