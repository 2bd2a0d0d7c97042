"""Documents generated from the node registry: the node library, and a JSON Schema of graphs.

``nodes_document`` is what ``artgraph nodes --json`` prints and the server's
``GET /nodes`` returns. Editors (VS Code's YAML extension, for one) use the
schema for completion and checks: add
``# yaml-language-server: $schema=artgraph.schema.json`` to a graph file.
"""

from __future__ import annotations

from typing import Any

from .node import NodeSpec, Param
from .plugins import Registry
from .spec import FORMAT_VERSION
from .types import PortType

_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"


def nodes_document(registry: Registry, specs: list[NodeSpec] | None = None) -> dict[str, Any]:
    """Every node type (or ``specs``) described, with the plugins that broke or clash."""
    if specs is None:
        specs = sorted(registry.nodes.values(), key=lambda s: (s.category, s.type_name))
    return {
        "nodes": [s.describe() for s in specs],
        "broken_plugins": [
            {"plugin": b.plugin, "distribution": b.distribution, "error": b.error} for b in registry.broken
        ],
        "conflicts": registry.conflicts,
    }


def _literal_schema(t: PortType) -> dict[str, Any]:
    if t.element is not None:
        return {"type": "array", "items": _literal_schema(t.element)}
    schemas: dict[str, dict[str, Any]] = {
        "Int": {"type": "integer"},
        "Float": {"type": "number"},
        "Bool": {"type": "boolean"},
        "Str": {"type": "string"},
        "Path": {"type": "string", "minLength": 1},
        "Dict": {"type": "object"},
    }
    return schemas.get(t.name, {})


def _param_schema(p: Param) -> dict[str, Any]:
    out = _literal_schema(p.type)
    if p.min is not None:
        (out["items"] if "items" in out else out)["minimum"] = p.min
    if p.max is not None:
        (out["items"] if "items" in out else out)["maximum"] = p.max
    if p.choices is not None:
        out["enum"] = list(p.choices)
    if p.default is None:
        out = {"anyOf": [out, {"type": "null"}]}
    if p.description:
        out["description"] = p.description
    if not p.required:
        out["default"] = p.default
    return out


def _node_schema(spec: NodeSpec) -> dict[str, Any]:
    ref = {"type": "string", "pattern": _REF_PATTERN}
    inputs: dict[str, Any] = {}
    for name, inp in spec.inputs.items():
        inputs[name] = {"anyOf": [ref, {"type": "array", "items": ref}]} if inp.type.is_list else dict(ref)
        if inp.description:
            inputs[name]["description"] = inp.description
    for name in spec.params:
        inputs.setdefault(name, dict(ref))
    required_inputs = [n for n, i in spec.inputs.items() if not i.optional]
    return {
        "description": spec.description,
        "properties": {
            "type": {"const": spec.type_name},
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "additionalProperties": False,
                "properties": {n: _param_schema(p) for n, p in spec.params.items()},
            },
            "inputs": {
                "type": "object",
                "additionalProperties": False,
                "properties": inputs,
                **({"required": required_inputs} if required_inputs else {}),
            },
        },
        **({"required": ["type", "inputs"]} if required_inputs else {}),
    }


def graph_schema(registry: Registry) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a graph file for the installed nodes."""
    names = sorted(registry.nodes)
    defs: dict[str, Any] = {name: _node_schema(registry.nodes[name]) for name in names}
    node = {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "type": {"enum": names},
            "description": {"type": "string"},
            "params": {"type": "object"},
            "inputs": {"type": "object"},
        },
        "allOf": [{"if": {"properties": {"type": {"const": n}}}, "then": {"$ref": f"#/$defs/{n}"}} for n in names],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "artgraph graph file",
        "type": "object",
        "required": ["artgraph", "nodes"],
        "additionalProperties": False,
        "properties": {
            "artgraph": {"const": FORMAT_VERSION, "description": "format version"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "nodes": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_-]*$"},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
        },
        "$defs": {"node": node, **defs},
    }
