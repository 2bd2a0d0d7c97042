"""The Python API: ``load_graph(path_or_dict).run(...)``.

This is the one place that strings the stages together —
YAML text -> :class:`GraphSpec` -> :class:`Plan` -> :func:`execute` -> results —
for both the CLI and library users.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .cache import Cache, make_key
from .devices import resolve_device
from .errors import GraphError, Problem, RunFailed
from .events import EventSink, RunEvents
from .executor import RunResult, execute
from .plan import Plan
from .plugins import Registry, default_registry
from .progress import make_progress_factory
from .spec import GraphSpec, apply_overrides, parse_spec
from .validate import build_plan
from .yamlsource import load_yaml, size_problem

_PROCESS_CACHES: dict[str | None, Cache] = {}


def process_cache(disk: str | os.PathLike[str] | None = None) -> Cache:
    """The cache shared by every run in this process (per disk folder)."""
    key = None if disk is None else str(Path(disk).resolve())
    if key not in _PROCESS_CACHES:
        _PROCESS_CACHES[key] = Cache(disk=key)
    return _PROCESS_CACHES[key]


def examples_folder() -> Path:
    """The folder of the example graphs shipped in the package (their assets beside them)."""
    return Path(str(resources.files("artgraph.graphs")))


def packaged_graphs() -> dict[str, Path]:
    """The example graphs shipped inside the package, by file name."""
    try:
        folder = resources.files("artgraph.graphs")
    except ModuleNotFoundError:
        return {}
    return {p.name: Path(str(p)) for p in folder.iterdir() if p.name.endswith((".yaml", ".yml"))}


def find_graph_file(path: str | os.PathLike[str]) -> Path | None:
    """A graph file on disk, or a packaged example graph by name (``style_transfer``)."""
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    if candidate.parent == Path("."):
        shipped = packaged_graphs()
        for name in (candidate.name, f"{candidate.name}.yaml", f"{candidate.name}.yml"):
            if name in shipped:
                return shipped[name]
    return None


class Graph:
    """A loaded graph. ``run`` validates (with overrides) and executes it."""

    def __init__(self, spec: GraphSpec, problems: list[Problem], registry: Registry, text: str | None):
        self.spec = spec
        self.registry = registry
        self.text = text
        self._shape_problems = problems
        #: Validated plans by (overrides, output folder): a re-run does not re-validate.
        self._plans: dict[tuple[str, str], Plan] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    def plan(
        self, overrides: Mapping[str, Any] | Iterable[str] | None = None, out_dir: str | os.PathLike[str] = "out"
    ) -> Plan:
        """Validate completely (overrides included); raise GraphError with every problem."""
        items: dict[str, Any] | list[str] = {}
        if overrides:
            items = dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
        # The output folder resolves against the working directory, so that is part of the key.
        memo_key = (json.dumps(items, sort_keys=True, default=repr), os.path.abspath(out_dir))
        memo = self._plans.get(memo_key)
        if memo is not None and all(os.path.exists(p) for n in memo.nodes.values() for p in n.reads):
            return memo
        # Overrides touch a copy of the nodes mapping; apply_overrides copies each node it changes.
        spec = dataclasses.replace(self.spec, nodes=dict(self.spec.nodes)) if items else self.spec
        problems = list(self._shape_problems)
        if items:
            problems += apply_overrides(spec, items)
        try:
            plan = build_plan(spec, self.registry, out_dir)
        except GraphError as exc:
            problems += exc.problems
        if problems:
            raise GraphError(sorted(problems, key=lambda p: (p.file != spec.file, p.line or 0)))
        if len(self._plans) >= 16:
            self._plans.pop(next(iter(self._plans)))
        self._plans[memo_key] = plan
        return plan

    def validate(self, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> None:
        self.plan(overrides)

    def effective_yaml(self, plan: Plan) -> str:
        """The graph as YAML with overrides applied: what a result embeds to be re-run."""
        import yaml

        data = json.loads(json.dumps(plan.graph.data, default=str))
        for decl in plan.graph.nodes.values():
            for name in decl.overridden:
                body = data["nodes"][decl.id]
                body.setdefault("params", {})
                body["params"] = body["params"] or {}
                body["params"][name] = decl.params[name]
        return yaml.safe_dump(data, sort_keys=False)

    def run(
        self,
        *,
        device: str = "auto",
        overrides: Mapping[str, Any] | Iterable[str] | None = None,
        cache: Cache | str | os.PathLike[str] | bool | None = True,
        out_dir: str | os.PathLike[str] = "out",
        outputs: Iterable[str] | None = None,
        progress: str = "quiet",
        events: RunEvents | Iterable[EventSink] | None = None,
        cancel: threading.Event | Callable[[], bool] | None = None,
        raise_on_failure: bool = True,
    ) -> RunResult:
        """Run the graph and return its outputs (``result['node.output']``).

        ``cache``: True for the in-process memory cache, a folder for memory plus
        disk, a :class:`Cache`, or False/None for no caching. ``events``: callables
        that each receive every run event (:mod:`artgraph.events`), or a
        :class:`RunEvents` (to choose the run id and where previews go). ``cancel``:
        a ``threading.Event`` (or a function) that, once set, stops the run at the
        running node's next progress step; what finished is kept and the result
        says ``cancelled``. Raises
        :class:`GraphError` for an invalid graph and :class:`RunFailed` (carrying
        the partial result) when a node fails, unless ``raise_on_failure`` is False.
        """
        plan = self.plan(overrides, out_dir)
        dev = resolve_device(device)
        if cache is True:
            store: Cache | None = process_cache()
        elif cache is False or cache is None:
            store = None
        elif isinstance(cache, Cache):
            store = cache
        else:
            store = process_cache(cache)
        provenance = _Provenance(lambda: self.effective_yaml(plan), self.spec.file, str(self.spec.base_dir))
        result = execute(
            plan,
            device=dev,
            cache=store,
            targets=outputs,
            progress=make_progress_factory(progress),
            events=events if isinstance(events, RunEvents) else RunEvents(events or ()),
            provenance=provenance,
            graph_id=_graph_id(self.spec),
            cancelled=cancel.is_set if isinstance(cancel, threading.Event) else cancel,
        )
        if raise_on_failure and result.failures:
            raise RunFailed(result, result.failures)
        return result


class _Provenance(Mapping[str, str]):
    """The provenance mapping nodes may embed; the graph's YAML is written only if asked for."""

    def __init__(self, graph_yaml: Callable[[], str], source: str, base_dir: str) -> None:
        self._make = graph_yaml
        self._yaml: str | None = None
        self._rest = {"source": source, "base_dir": base_dir}

    def __getitem__(self, key: str) -> str:
        if key == "graph":
            if self._yaml is None:
                self._yaml = self._make()
            return self._yaml
        return self._rest[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("graph", *self._rest))

    def __len__(self) -> int:
        return 1 + len(self._rest)


def _graph_id(spec: GraphSpec) -> str:
    if spec.file == "<dict>":  # tell unnamed graphs apart by their nodes
        return f"<dict>::{spec.name}::{make_key(sorted((i, d.type or '') for i, d in spec.nodes.items()))}"
    return f"{spec.file}::{spec.name}"


def load_graph(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    registry: Registry | None = None,
    validate: bool = True,
    base_dir: str | os.PathLike[str] | None = None,
    text: str | None = None,
    confine_inputs: bool = False,
) -> Graph:
    """Load a graph from a YAML file path, a packaged example name, or a dict.

    With ``validate`` (the default) the graph is checked completely and a
    :class:`GraphError` lists every problem; pass ``validate=False`` when
    overrides given later will complete it. ``confine_inputs`` is for graphs
    from someone else (a PNG's embedded graph, a client of a server): the files
    it reads must lie inside ``base_dir``, and a path that leads out is a problem.
    """
    registry = registry or default_registry()
    if isinstance(source, Mapping):
        file = "<dict>"
        data: Any = source
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        problems: list[Problem] = []
    else:
        if text is None:
            found = find_graph_file(source)
            if found is None:
                shipped = ", ".join(sorted(p.removesuffix(".yaml") for p in packaged_graphs())) or "none"
                raise GraphError(
                    [
                        Problem(
                            str(source),
                            None,
                            None,
                            "graph file not found",
                            f"check the path; packaged examples: {shipped}",
                        )
                    ]
                )
            file = str(found) if Path(source).is_file() else str(source)
            try:
                too_large = size_problem(found.stat().st_size)  # before a byte of it is read
                if too_large is not None:
                    raise GraphError([Problem(str(source), None, None, *too_large)])
                text = found.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise GraphError(
                    [
                        Problem(
                            str(source),
                            None,
                            None,
                            f"cannot read the file: {exc}",
                            "check its permissions and encoding (UTF-8)",
                        )
                    ]
                ) from None
            base = Path(base_dir) if base_dir is not None else found.resolve().parent
        else:
            file = str(source)
            base = Path(base_dir) if base_dir is not None else Path(source).resolve().parent
        data, problems = load_yaml(text, file)
        if data is None and problems:
            raise GraphError(problems)
    spec, shape = parse_spec(data, file, base)
    spec.confine_inputs = confine_inputs
    graph = Graph(spec, [*problems, *shape], registry, text)
    if validate:
        graph.validate()
    return graph
