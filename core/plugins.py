"""Plugin discovery through pluggy and entry points, with isolation.

Every node pack, the built-in one included, is a plugin found through the
``artgraph`` entry-point group and registered with a pluggy PluginManager.
pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import; we load entry points one by one instead, so a broken plugin is
recorded (name, distribution, error) and skipped while every other keeps working.

The built-in node library is a plugin like the others, with one privilege: its
names win. A third-party node type or port type named like a built-in one is
refused (reported under ``Registry.broken``) instead of making the built-in type
unusable, whatever order the entry points come in; see :func:`is_builtin_plugin`
for how the built-in plugin is recognised. Between third-party plugins neither
wins: a node type two of them register is listed in ``Registry.conflicts``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import logging
import re
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

import pluggy

from .node import Input, NodeSpec, Output, Param, spec_of
from .ports import BUILTIN_TYPES
from .types import List, PortType

PROJECT = "artgraph"
ENTRY_POINT_GROUP = "artgraph"
#: The distribution and the module of the built-in node library (see ``is_builtin_plugin``).
BUILTIN_DISTRIBUTION = "artgraph"
BUILTIN_MODULE = "artgraph.nodes"
_log = logging.getLogger("artgraph.plugins")

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate a plugin's hook functions with this (``@artgraph.hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The hooks a plugin may implement."""

    @hookspec
    def artgraph_register_types(self) -> Iterable[PortType]:  # type: ignore[empty-body]  # a hookspec: never called
        """Return the port types this plugin adds (``PortType`` objects)."""

    @hookspec
    def artgraph_register_nodes(self) -> Iterable[object]:  # type: ignore[empty-body]  # a hookspec: never called
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
    #: The plugin name of the built-in node library, once registered (see ``is_builtin_plugin``).
    builtin_plugin: str | None = None
    _type_owner: dict[str, str] = field(default_factory=dict)
    #: Every node type name the built-in plugin returned: refused to all other plugins.
    _builtin_nodes: set[str] = field(default_factory=set)

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
        """Register a plugin's nodes; the built-in plugin's must come first (``build_registry`` sees to it).

        A third-party node named like a built-in node is refused and reported, so
        the built-in type stays usable; a name two third-party plugins register
        is listed in ``conflicts`` and usable by neither.
        """
        specs = [spec_of(o) for o in objs]
        builtin = plugin == self.builtin_plugin
        if builtin:
            # Reserved even if one of them turns out broken below: nobody else may take the name.
            self._builtin_nodes.update(spec.type_name for spec in specs)
        for spec in specs:
            if not builtin and spec.type_name in self._builtin_nodes:
                name = spec.type_name
                suggestion = f"{plugin}.{name.rsplit('.', 1)[-1]}"
                self.broken.append(
                    BrokenPlugin(
                        plugin,
                        distribution,
                        f"node '{name}' is a built-in type of {BUILTIN_DISTRIBUTION}; rename it (e.g. '{suggestion}')",
                    )
                )
                continue
            declared: list[Input | Param | Output] = [
                *spec.inputs.values(),
                *spec.params.values(),
                *spec.outputs.values(),
            ]
            ports = [p.type for p in declared]
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


def _normalized(distribution: str) -> str:
    """A distribution name as packaging compares them (PEP 503): ``ArtGraph`` == ``artgraph``."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def is_builtin_plugin(distribution: str, obj: object) -> bool:
    """Whether a plugin is artgraph's own node library, whose names win over every other plugin's.

    Both must hold: the plugin comes from the distribution ``artgraph`` *and* the
    object registered is the very module ``artgraph.nodes`` (the one in
    ``sys.modules``, not something merely called so). Neither is chosen by a third
    party:

    - the entry-point (plugin) name is not used at all: any distribution may call
      its entry point ``builtin``. The real built-in entry point is registered
      before every other one, so such a namesake is refused as a duplicate plugin
      name instead of displacing it;
    - the distribution name alone is not enough: it is only a string, which a
      hand-built ``(name, dist, obj)`` given to ``build_registry`` or a stray
      dist-info may claim; requiring the module too privileges artgraph's own
      node library and nothing else;
    - the module alone is not enough: another distribution may name
      ``artgraph.nodes`` in its own entry point (pluggy refuses to register the
      same module twice, so that claim is reported, never privileged).

    Installing a distribution called ``artgraph`` replaces artgraph itself, and a
    plugin's code runs with artgraph's privileges anyway; this guards against
    accidental shadowing, not against hostile code.
    """
    module = sys.modules.get(BUILTIN_MODULE)
    return module is not None and obj is module and _normalized(distribution) == BUILTIN_DISTRIBUTION


def _looks_builtin(ep: md.EntryPoint) -> bool:
    """From the metadata alone, before importing: what may be the built-in entry point (checked after loading)."""
    return _normalized(_distribution_of(ep)) == BUILTIN_DISTRIBUTION and ep.value.strip() == BUILTIN_MODULE


def _entry_points() -> list[md.EntryPoint]:
    """The ``artgraph`` entry points as installed, in importlib.metadata's (arbitrary) order."""
    return list(md.entry_points(group=ENTRY_POINT_GROUP))


def build_registry(plugins: Iterable[tuple[str, str, object]] = ()) -> Registry:
    """Discover entry-point plugins (plus any given ``(name, dist, obj)``) and register them."""
    registry = Registry()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)

    # The built-in entry point first, so that a third-party plugin that takes its
    # entry-point name is the one refused; otherwise in the order found (a stable sort).
    seen: set[tuple[str, str, str]] = set()
    for ep in sorted(_entry_points(), key=lambda ep: not _looks_builtin(ep)):
        dist = _distribution_of(ep)
        key = (_normalized(dist), ep.name, ep.value)
        if key in seen:
            continue  # the same distribution visible twice on sys.path
        seen.add(key)
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
        # The built-in plugin first, so its types and node names are known (and win) before any
        # other plugin's, whatever the entry-point order or tryfirst/trylast; the rest as pluggy orders them.
        impls = sorted(caller.get_hookimpls(), key=lambda impl: impl.plugin_name != registry.builtin_plugin)
        for impl in impls:
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
    if registry.builtin_plugin is None and is_builtin_plugin(dist, obj):
        registry.builtin_plugin = name


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, discovered once on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_registry()
    return _DEFAULT
