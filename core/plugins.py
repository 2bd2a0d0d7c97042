"""Plugin discovery through pluggy and entry points, with isolation.

Every node pack, the built-in one included, is a plugin found through the
``artgraph`` entry-point group and registered with a pluggy PluginManager.
pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import; we load entry points one by one instead, so a broken plugin is
recorded (name, distribution, error) and skipped while every other keeps working.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

import pluggy

from .node import NodeSpec, spec_of
from .types import BUILTIN_TYPES, List, PortType

PROJECT = "artgraph"
ENTRY_POINT_GROUP = "artgraph"
_log = logging.getLogger("artgraph.plugins")

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate a plugin's hook functions with this (``@artgraph.hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The hooks a plugin may implement."""

    @hookspec
    def artgraph_register_types(self) -> Iterable[PortType]:  # type: ignore[empty-body]
        """Return the port types this plugin adds (``PortType`` objects)."""

    @hookspec
    def artgraph_register_nodes(self) -> Iterable[object]:  # type: ignore[empty-body]
        """Return this plugin's nodes: functions/classes decorated with ``@node``."""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin (or one of its nodes) that could not be used, and why."""

    plugin: str
    distribution: str
    error: str
    detail: str = ""

    def __str__(self) -> str:
        return f"plugin '{self.plugin}' (distribution {self.distribution}): {self.error}"


@dataclass
class Registry:
    """The node types and port types available to graphs."""

    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    types: dict[str, PortType] = field(default_factory=lambda: {t.name: t for t in BUILTIN_TYPES})
    broken: list[BrokenPlugin] = field(default_factory=list)
    #: node type name -> every distribution that registered it (2 or more).
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)  # plugin name -> distribution
    _type_owner: dict[str, str] = field(default_factory=dict)

    def get(self, type_name: str) -> NodeSpec | None:
        return self.nodes.get(type_name)

    def resolve_type(self, name: str) -> PortType | None:
        """A type by name; ``List[X]`` is built on demand for any known X."""
        if name.startswith("List[") and name.endswith("]"):
            inner = self.resolve_type(name[5:-1])
            return List(inner) if inner is not None else None
        return self.types.get(name)

    def add_types(self, types: Iterable[PortType], plugin: str, distribution: str) -> None:
        for t in types:
            if not isinstance(t, PortType):
                raise TypeError(f"artgraph_register_types returned {t!r}, not a PortType")
            existing = self.types.get(t.name)
            if existing is not None and existing is not t:
                owner = self._type_owner.get(t.name, "artgraph")
                self.broken.append(
                    BrokenPlugin(
                        plugin,
                        distribution,
                        f"port type '{t.name}' is already registered by {owner}; rename it",
                    )
                )
                continue
            self.types[t.name] = t
            self._type_owner[t.name] = distribution

    def add_nodes(self, objs: Iterable[object], plugin: str, distribution: str) -> None:
        specs = [spec_of(o) for o in objs]
        for spec in specs:
            ports = [p.type for p in [*spec.inputs.values(), *spec.params.values(), *spec.outputs.values()]]
            unknown = sorted({t.name for t in ports if self.resolve_type(t.name) is None})
            if unknown:
                self.broken.append(
                    BrokenPlugin(
                        plugin,
                        distribution,
                        f"node '{spec.type_name}' uses unregistered port types {unknown}; "
                        "return them from artgraph_register_types",
                    )
                )
                continue
            foreign = sorted({t.name for t in ports if not self._is_registered(t)})
            if foreign:
                self.broken.append(
                    BrokenPlugin(
                        plugin,
                        distribution,
                        f"node '{spec.type_name}' uses port types {foreign} that another plugin registered "
                        "first under the same names; rename its types",
                    )
                )
                continue
            # A copy: the same decorated function may be registered in several registries.
            spec = dataclasses.replace(spec, plugin=plugin, distribution=distribution)
            name = spec.type_name
            if name in self.conflicts:
                self.conflicts[name].append(distribution)
            elif name in self.nodes:
                first = self.nodes.pop(name)
                self.conflicts[name] = [first.distribution, distribution]
            else:
                self.nodes[name] = spec

    def _is_registered(self, t: PortType) -> bool:
        """The very type object registered under its name (not a namesake)."""
        while t.element is not None:
            t = t.element
        return self.types.get(t.name) is t

    def conflict_message(self, type_name: str) -> str:
        dists = " and ".join(self.conflicts[type_name])
        return f"node type '{type_name}' is registered by both {dists}; uninstall one of them"


def _distribution_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "unknown distribution"


def build_registry(plugins: Iterable[tuple[str, str, object]] = ()) -> Registry:
    """Discover entry-point plugins (plus any given ``(name, dist, obj)``) and register them."""
    registry = Registry()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)

    seen: set[tuple[str, str]] = set()
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = _distribution_of(ep)
        if (ep.name, ep.value) in seen:
            continue  # the same distribution visible twice on sys.path
        seen.add((ep.name, ep.value))
        try:
            obj = ep.load()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            registry.broken.append(
                BrokenPlugin(
                    ep.name,
                    dist,
                    f"failed to import {ep.value}: {type(exc).__name__}: {exc}",
                    traceback.format_exc(),
                )
            )
            continue
        _register(pm, registry, ep.name, dist, obj)
    for name, dist, obj in plugins:
        _register(pm, registry, name, dist, obj)

    for hook in ("artgraph_register_types", "artgraph_register_nodes"):
        caller = getattr(pm.hook, hook)
        for impl in caller.get_hookimpls():  # in registration order
            name = impl.plugin_name
            dist = registry.plugins.get(name, "unknown distribution")
            try:
                result = impl.function() or []
                if hook == "artgraph_register_types":
                    registry.add_types(result, name, dist)
                else:
                    registry.add_nodes(result, name, dist)
            except Exception as exc:
                registry.broken.append(
                    BrokenPlugin(name, dist, f"{hook} failed: {type(exc).__name__}: {exc}", traceback.format_exc())
                )
    for broken in registry.broken:
        _log.warning("skipped %s", broken)
    return registry


def _register(pm: pluggy.PluginManager, registry: Registry, name: str, dist: str, obj: object) -> None:
    if pm.has_plugin(name):
        other = registry.plugins.get(name, "another distribution")
        registry.broken.append(
            BrokenPlugin(name, dist, f"entry point name '{name}' is also used by {other}; one of them must rename it")
        )
        return
    try:
        pm.register(obj, name=name)
    except Exception as exc:
        registry.broken.append(BrokenPlugin(name, dist, f"could not register: {exc}"))
        return
    registry.plugins[name] = dist


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, discovered once on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_registry()
    return _DEFAULT
