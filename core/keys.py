"""A node's cache key, and why a node runs: the two halves of "re-run only what changed".

A key is a fixed-size hash of the node's identity (type, version, params with
output paths relative to ``--out``), the keys of its inputs and fingerprints of
the files it reads — never of its whole ancestry, so keying costs the same per
node on any graph. What a key was made of is kept in the cache's *ledger*;
comparing it with the last run's says why a node runs ("param 'steps'
changed: 300 -> 50").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from .cache import file_fingerprint
from .canonical import to_plain
from .plan import PlannedNode


def node_key(node: PlannedNode, keys: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The node's key: a hash of its identity (type, version, params), the keys of its
    inputs and the fingerprints of the files it reads. Also returns those parts, for
    the ledger that explains why a node ran."""
    inputs: dict[str, Any] = {}
    for name, wires in node.wires.items():
        refs = [f"{keys[w.src]}.{w.output}" for w in wires]
        inputs[name] = refs if name in node.listed else refs[0]
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


def why_it_runs(
    node: PlannedNode,
    parts: dict[str, Any],
    previous: Any,
    caching: bool,
    damage: str | None = None,
) -> str:
    """Why a node runs, from what its last key was made of (the ledger may be damaged: any
    shape is tolerated, at worst the reason is less precise)."""
    if not caching:
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
