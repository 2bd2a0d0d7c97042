"""Validation: check a graph spec against the registry and build a :class:`Plan`.

Every problem is collected and reported together, each with its file, line and
node, before anything runs. Nothing here is recursive, so a graph of ten
thousand chained nodes validates like a graph of ten.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import networkx as nx

from .errors import GraphError, Problem, did_you_mean
from .node import NodeSpec, Param
from .paths import PathProblem, relative_output, resolve_input, resolve_output
from .plan import Plan, PlannedNode, Wire
from .plugins import Registry
from .spec import SET_ORIGIN, GraphSpec, NodeDecl, Ref
from .types import TypeCheckError, can_connect


def build_plan(spec: GraphSpec, registry: Registry, out_dir: str | os.PathLike[str]) -> Plan:
    """Validate ``spec`` completely; raise :class:`GraphError` listing every problem."""
    problems: list[Problem] = []
    checker = _Checker(spec, registry, Path(out_dir), problems)
    planned: dict[str, PlannedNode] = {}
    for decl in spec.nodes.values():
        node = checker.check_node(decl)
        if node is not None:
            planned[decl.id] = node
    for node in planned.values():
        checker.check_wires(node, spec.nodes[node.id], planned)
    checker.check_files(planned)
    order = checker.order(planned)
    if problems:
        raise GraphError(sorted(problems, key=lambda p: (p.file != spec.file, p.line or 0)))
    return Plan(graph=spec, nodes={i: planned[i] for i in order}, out_dir=str(out_dir))


class _Checker:
    def __init__(self, spec: GraphSpec, registry: Registry, out_dir: Path, problems: list[Problem]):
        self.spec, self.registry, self.out_dir, self.problems = spec, registry, out_dir, problems

    def add(self, decl: NodeDecl, line: int | None, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.spec.file, line, decl.id, message, hint))

    def add_param(self, decl: NodeDecl, name: str, message: str, hint: str = "") -> None:
        if name in decl.overridden:
            text = decl.overridden[name]
            self.problems.append(Problem(SET_ORIGIN, None, decl.id, f"'{text}': {message}", hint))
        else:
            self.add(decl, decl.param_lines.get(name, decl.line), message, hint)

    # -- one node ----------------------------------------------------------

    def check_node(self, decl: NodeDecl) -> PlannedNode | None:
        if decl.type is None:
            return None
        spec = self.registry.get(decl.type)
        if spec is None:
            if decl.type in self.registry.conflicts:
                self.add(decl, decl.line, self.registry.conflict_message(decl.type))
            else:
                hint = did_you_mean(decl.type, self.registry.nodes) or "see 'artgraph nodes' for the types installed"
                self.add(decl, decl.line, f"unknown node type '{decl.type}'", hint)
            return None
        node = PlannedNode(id=decl.id, spec=spec, params={}, wires={}, line=decl.line)
        before = len(self.problems)
        self._check_params(decl, spec, node)
        params_ok = len(self.problems) == before
        for name in decl.inputs:
            if name not in spec.inputs and name not in spec.params:
                names = [*spec.inputs, *spec.params]
                hint = did_you_mean(name, names) or f"inputs of {spec.type_name}: {', '.join(spec.inputs) or 'none'}"
                self.add(decl, decl.input_lines.get(name), f"unknown input '{name}'", hint)
            elif name in decl.params and name in spec.params:
                self.add(
                    decl,
                    decl.input_lines.get(name),
                    f"'{name}' is given both as a param and as an input",
                    "keep one of them",
                )
        for name, inp in spec.inputs.items():
            if not inp.optional and name not in decl.input_lines:
                self.add(
                    decl,
                    decl.line,
                    f"missing required input '{name}' ({inp.type.name})",
                    f"add 'inputs: {{{name}: NODE.OUTPUT}}'",
                )
        if spec.check is not None and params_ok and all(n not in decl.inputs for n in spec.params):
            try:
                for found in spec.check(dict(node.params)):
                    message, hint = found if isinstance(found, tuple) else (found, "")
                    self.add(decl, decl.line, message, hint or f"see 'artgraph nodes {spec.type_name}'")
            except Exception as exc:
                self.add(
                    decl,
                    decl.line,
                    f"the node's own check failed: {type(exc).__name__}: {exc}",
                    f"report this to the author of {spec.distribution or 'the plugin'}",
                )
        return node

    def _check_params(self, decl: NodeDecl, spec: NodeSpec, node: PlannedNode) -> None:
        for name in decl.params:
            if name not in spec.params:
                hint = did_you_mean(name, spec.params) or (
                    f"params of {spec.type_name}: {', '.join(spec.params) or 'none'}"
                )
                if name in spec.inputs:
                    hint = f"'{name}' is an input: move it under 'inputs' as NODE.OUTPUT"
                self.add_param(decl, name, f"unknown param '{name}'", hint)
        for name, param in spec.params.items():
            if name in decl.inputs:
                continue  # wired: checked at run time against min/max/choices
            if name not in decl.params:
                if param.required:
                    self.add(
                        decl,
                        decl.line,
                        f"missing required param '{name}' ({param.type.name})",
                        f"add 'params: {{{name}: ...}}'",
                    )
                    continue
                value = param.default
            else:
                try:
                    value = param.check(decl.params[name])
                except TypeCheckError as exc:
                    self.add_param(decl, name, f"param '{name}': {exc}", _fix_hint(param))
                    continue
            if param.file is not None and value is not None and value not in param.keywords:
                # Defaults too: a default checkpoint path lands under --out like a written one.
                value = self._check_file(decl, node, name, param, str(value))
                if value is None:
                    continue
            node.params[name] = value

    def _check_file(self, decl: NodeDecl, node: PlannedNode, name: str, param: Param, value: str) -> str | None:
        try:
            if param.file == "input":
                path = resolve_input(value, self.spec.base_dir, confine=self.spec.confine_inputs)
                node.reads.append(path)
                return path
            path = resolve_output(value, self.out_dir)
            node.out_files[name] = relative_output(value)
            return path
        except PathProblem as exc:
            self.add_param(decl, name, f"param '{name}': {exc.message}", exc.hint)
            return None

    def check_files(self, planned: dict[str, PlannedNode]) -> None:
        """No node writes a file another node reads, and no two nodes write the same file.

        Two *defaults* that coincide are let through: two searches in one graph share
        the default checkpoint path, and most runs write no checkpoint at all. Should
        both really write it, the executor refuses the second write (files.WriteGuard)."""
        readers: dict[str, str] = {}
        for node in planned.values():
            for path in node.reads:
                readers.setdefault(os.path.realpath(path), node.id)
        writers: dict[str, tuple[str, bool]] = {}  # real path -> (node, whether the path was given)
        for node in planned.values():
            decl = self.spec.nodes[node.id]
            for name in node.out_files:
                path, given = node.params[name], name in decl.params
                real = os.path.realpath(path)
                what = f"param '{name}'" + ("" if given else f" (its default, {path})")
                reader, other = readers.get(real), writers.get(real)
                if reader is not None and reader != node.id:
                    self.add_param(
                        decl,
                        name,
                        f"{what}: {path} is read by node '{reader}'; a run never overwrites its own inputs",
                        "write the result under another name, or choose another --out",
                    )
                elif other is None:
                    writers[real] = (node.id, given)
                elif given or other[1]:
                    self.add_param(
                        decl,
                        name,
                        f"{what}: node '{other[0]}' writes the same file {path}",
                        "give each node its own file name",
                    )

    # -- wires ------------------------------------------------------------

    def check_wires(self, node: PlannedNode, decl: NodeDecl, planned: dict[str, PlannedNode]) -> None:
        spec = node.spec
        for name, refs in decl.inputs.items():
            if name in spec.inputs:
                dst = spec.inputs[name].type
            elif name in spec.params and name not in decl.params:
                dst = spec.params[name].type
            else:
                continue
            line = decl.input_lines.get(name)
            if isinstance(refs, list):
                if dst.element is None:
                    self.add(
                        decl, line, f"input '{name}' takes one {dst.name}, not a list", "give a single NODE.OUTPUT"
                    )
                    continue
                wires = [self._wire(decl, name, r, dst.element, planned, line) for r in refs]
                if all(w is not None for w in wires):
                    node.wires[name] = [w for w in wires if w is not None]
                    node.listed.add(name)
                if not refs:
                    self.add(decl, line, f"input '{name}' is an empty list", "list at least one NODE.OUTPUT")
            else:
                wire = self._wire(decl, name, refs, dst, planned, line)
                if wire is not None:
                    node.wires[name] = [wire]

    def _wire(
        self, decl: NodeDecl, name: str, ref: Ref, dst: Any, planned: dict[str, PlannedNode], line: int | None
    ) -> Wire | None:
        if ref.node not in self.spec.nodes:
            hint = did_you_mean(ref.node, self.spec.nodes) or f"nodes: {', '.join(self.spec.nodes)}"
            self.add(decl, line, f"input '{name}' refers to missing node '{ref.node}'", hint)
            return None
        src = planned.get(ref.node)
        if src is None:
            return None  # the source node has its own problem, already reported
        outputs = src.spec.outputs
        out_name = ref.output
        if out_name is None:
            if len(outputs) != 1:
                listed = ", ".join(f"{ref.node}.{o}" for o in outputs) or "none"
                self.add(
                    decl, line, f"input '{name}': node '{ref.node}' has {len(outputs)} outputs", f"name one: {listed}"
                )
                return None
            out_name = next(iter(outputs))
        if out_name not in outputs:
            hint = did_you_mean(out_name, outputs) or f"outputs of {src.spec.type_name}: {', '.join(outputs) or 'none'}"
            self.add(decl, line, f"input '{name}' refers to missing output '{ref.node}.{out_name}'", hint)
            return None
        src_type = outputs[out_name].type
        if not can_connect(src_type, dst, self.registry.types):
            self.add(
                decl,
                line,
                f"type mismatch: input '{name}' expects {dst.name}, but '{ref.node}.{out_name}' is {src_type.name}",
                "wire an output of the expected type",
            )
            return None
        return Wire(ref.node, out_name, src_type, dst)

    # -- order ------------------------------------------------------------

    def order(self, planned: dict[str, PlannedNode]) -> list[str]:
        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_nodes_from(planned)
        for node in planned.values():
            for wire in node.sources():
                g.add_edge(wire.src, node.id)
        if nx.is_directed_acyclic_graph(g):
            return list(nx.topological_sort(g))
        for component in nx.strongly_connected_components(g):
            first = next(iter(component))
            if len(component) == 1 and not g.has_edge(first, first):
                continue
            cycle = nx.find_cycle(g.subgraph(component), source=first)
            names = [u for u, _ in cycle] + [cycle[0][0]]
            ring = names[:-1]
            start = min(ring, key=lambda n: self.spec.nodes[n].line or 0)
            at = ring.index(start)
            names = [*ring[at:], *ring[:at], start]
            decl = self.spec.nodes[start]
            self.add(
                decl,
                decl.line,
                "cycle: " + " -> ".join(f"'{n}'" for n in names),
                "a graph must not loop back; remove one of these wires",
            )
        return []


def _fix_hint(param: Param) -> str:
    if param.suffixes:
        return f"give a {param.type.name} ending in {' or '.join(param.suffixes)}"
    if param.choices is not None:
        return "choose one of: " + ", ".join(repr(c) for c in param.choices)
    bounds = []
    if param.min is not None:
        bounds.append(f">= {param.min:g}")
    if param.max is not None:
        bounds.append(f"<= {param.max:g}")
    if bounds:
        return f"give a {param.type.name} {' and '.join(bounds)}"
    return f"give a {param.type.name}"
