"""From YAML data to a graph spec: the shape of the file, nothing about node types.

This stage checks what can be checked without the node registry: the
top-level keys, the format version, each node's keys and the syntax of its
references. It remembers the line of everything so later stages can point at it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, did_you_mean
from .yamlsource import LineDict, parse_scalar

FORMAT_VERSION = 1
TOP_LEVEL_KEYS = ("artgraph", "name", "description", "nodes")
NODE_KEYS = ("type", "params", "inputs", "description")
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_REF = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")
SET_ORIGIN = "--set"


@dataclass(frozen=True)
class Ref:
    """A wire's source: ``NODE.OUTPUT``, or ``NODE`` when it has one output."""

    node: str
    output: str | None

    def __str__(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"


def parse_ref(text: object) -> Ref | None:
    if not isinstance(text, str):
        return None
    match = _REF.match(text.strip())
    return Ref(match.group(1), match.group(2)) if match else None


@dataclass
class NodeDecl:
    """One node as written in the graph file."""

    id: str
    type: str | None
    params: dict[str, Any]
    inputs: dict[str, Ref | list[Ref]]
    line: int | None
    param_lines: dict[str, int | None] = field(default_factory=dict)
    input_lines: dict[str, int | None] = field(default_factory=dict)
    #: params set with ``--set``: name -> the override text, for error messages.
    overridden: dict[str, str] = field(default_factory=dict)


@dataclass
class GraphSpec:
    """A parsed graph file: its nodes, where it lives, and the text it came from."""

    file: str
    base_dir: Path
    name: str
    nodes: dict[str, NodeDecl]
    data: dict[str, Any]
    description: str = ""
    #: Input files must stay inside ``base_dir`` (a graph from someone else: see paths.resolve_input).
    confine_inputs: bool = False


def parse_spec(data: Any, file: str, base_dir: Path) -> tuple[GraphSpec, list[Problem]]:
    """Check the file's shape and build a :class:`GraphSpec`; collect every problem."""
    problems: list[Problem] = []

    def add(line: int | None, node: str | None, message: str, hint: str = "") -> None:
        problems.append(Problem(file, line, node, message, hint))

    spec = GraphSpec(file=file, base_dir=base_dir, name=Path(file).stem, nodes={}, data={})
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        add(
            1,
            None,
            f"a graph file must be a mapping with 'artgraph: 1' and 'nodes:', got {got}",
            "start the file with 'artgraph: 1' and a 'nodes:' mapping",
        )
        return spec, problems
    spec.data = data
    line_of = data.line_of if isinstance(data, LineDict) else (lambda key: None)

    if "artgraph" not in data:
        add(1, None, "missing the format version key 'artgraph'", "add 'artgraph: 1' at the top")
    elif type(data["artgraph"]) is not int or data["artgraph"] != FORMAT_VERSION:
        add(
            line_of("artgraph"),
            None,
            f"unknown format version {data['artgraph']!r}",
            f"this artgraph reads 'artgraph: {FORMAT_VERSION}'",
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(str(key), TOP_LEVEL_KEYS) or f"allowed keys: {', '.join(TOP_LEVEL_KEYS)}"
            add(line_of(key), None, f"unknown top-level key '{key}'", hint)
    if isinstance(data.get("name"), str):
        spec.name = data["name"]
    elif "name" in data:
        add(line_of("name"), None, "'name' must be text", "quote it")
    if isinstance(data.get("description"), str):
        spec.description = data["description"]

    nodes = data.get("nodes")
    if "nodes" not in data:
        add(1, None, "missing the 'nodes' mapping", "add 'nodes:' with one entry per node")
    elif not isinstance(nodes, dict) or not nodes:
        add(
            line_of("nodes"),
            None,
            "'nodes' must be a non-empty mapping of node id -> node",
            "write each node as 'ID: {type: ..., params: ..., inputs: ...}'",
        )
    else:
        node_line = nodes.line_of if isinstance(nodes, LineDict) else (lambda key: None)
        for node_id, body in nodes.items():
            decl = _parse_node(str(node_id), body, node_line(node_id), add)
            if decl is not None:
                spec.nodes[decl.id] = decl
    return spec, problems


def _parse_node(node_id: str, body: Any, line: int | None, add: Any) -> NodeDecl | None:
    if not _NODE_ID.match(node_id):
        add(
            line,
            node_id,
            "node ids are letters, digits, '_' and '-', starting with a letter",
            "rename the node (dots separate node and output in references)",
        )
        return None
    if not isinstance(body, dict):
        add(
            line,
            node_id,
            "a node must be a mapping with at least 'type'",
            "write it as 'ID: {type: image.load, params: {...}}'",
        )
        return None
    key_line = body.line_of if isinstance(body, LineDict) else (lambda key: line)
    for key in body:
        if key not in NODE_KEYS:
            hint = did_you_mean(str(key), NODE_KEYS) or f"allowed keys: {', '.join(NODE_KEYS)}"
            add(key_line(key), node_id, f"unknown key '{key}'", hint)
    type_name = body.get("type")
    if "type" not in body:
        add(line, node_id, "missing 'type'", "add 'type: NAME' (see 'artgraph nodes')")
        type_name = None
    elif not isinstance(type_name, str):
        add(key_line("type"), node_id, "'type' must be a node type name", "e.g. 'type: image.load'")
        type_name = None

    decl = NodeDecl(id=node_id, type=type_name, params={}, inputs={}, line=line)
    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        add(key_line("params"), node_id, "'params' must be a mapping of name -> value", "write 'params: {name: value}'")
    else:
        p_line = params.line_of if isinstance(params, LineDict) else (lambda key: key_line("params"))
        for name, value in params.items():
            decl.params[str(name)] = value
            decl.param_lines[str(name)] = p_line(name)

    inputs = body.get("inputs", {})
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        add(
            key_line("inputs"),
            node_id,
            "'inputs' must be a mapping of name -> NODE.OUTPUT",
            "write 'inputs: {image: load.image}'",
        )
        return decl
    i_line = inputs.line_of if isinstance(inputs, LineDict) else (lambda key: key_line("inputs"))
    for name, raw in inputs.items():
        name = str(name)
        where = i_line(name)
        decl.input_lines[name] = where
        if isinstance(raw, list):
            refs = []
            for item in raw:
                ref = parse_ref(item)
                if ref is None:
                    add(
                        where,
                        node_id,
                        f"input '{name}': {item!r} is not a reference",
                        "write NODE.OUTPUT, or NODE when it has one output",
                    )
                else:
                    refs.append(ref)
            decl.inputs[name] = refs
        else:
            ref = parse_ref(raw)
            if ref is None:
                add(
                    where,
                    node_id,
                    f"input '{name}': {raw!r} is not a reference",
                    "write NODE.OUTPUT, or NODE when it has one output; literals go under 'params'",
                )
            else:
                decl.inputs[name] = ref
    return decl


def apply_overrides(spec: GraphSpec, overrides: dict[str, Any] | list[str]) -> list[Problem]:
    """Apply ``NODE.PARAM=VALUE`` overrides (CLI text, or a dict with parsed values).

    ``spec.nodes`` must be the caller's own copy of the mapping: each node an
    override touches is replaced by a copy, so the loaded graph stays as it was.
    """
    problems: list[Problem] = []
    copied: set[str] = set()
    items: list[tuple[str, str, Any]] = []
    if isinstance(overrides, dict):
        items = [(k, f"{k}={v!r}", v) for k, v in overrides.items()]
    else:
        for text in overrides:
            key, sep, raw = text.partition("=")
            if not sep:
                problems.append(
                    Problem(SET_ORIGIN, None, None, f"'{text}' is not NODE.PARAM=VALUE", "e.g. --set transfer.steps=50")
                )
                continue
            items.append((key.strip(), text, parse_scalar(raw)))
    for key, text, value in items:
        node_id, dot, param = key.partition(".")
        if not dot or not node_id or not param:
            problems.append(
                Problem(SET_ORIGIN, None, None, f"'{text}': expected NODE.PARAM=VALUE", "e.g. --set transfer.steps=50")
            )
            continue
        decl = spec.nodes.get(node_id)
        if decl is None:
            hint = did_you_mean(node_id, spec.nodes) or f"nodes: {', '.join(spec.nodes)}"
            problems.append(Problem(SET_ORIGIN, None, node_id, f"'{text}': no such node", hint))
            continue
        if node_id not in copied:
            # Never change the loaded graph: the node is copied before its first override.
            decl = dataclasses.replace(decl, params=dict(decl.params), overridden=dict(decl.overridden))
            spec.nodes[node_id] = decl
            copied.add(node_id)
        decl.params[param] = value
        decl.overridden[param] = text
    return problems
