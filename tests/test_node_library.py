"""The built-in node library's layout: one subpackage per category, and nothing left unregistered."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import artgraph
import artgraph.nodes
from artgraph import NodeSpec, PortType

REPO = Path(__file__).resolve().parents[1]
#: The subpackages of artgraph.nodes, which are also the categories of the built-in nodes.
CATEGORIES = ("image", "data", "style", "gan", "search", "lineart")


def library_modules() -> list[ModuleType]:
    """artgraph.nodes and every module under it, imported."""
    found = pkgutil.walk_packages(artgraph.nodes.__path__, "artgraph.nodes.")
    return [artgraph.nodes, *(importlib.import_module(info.name) for info in found)]


def declared_nodes() -> dict[str, tuple[str, NodeSpec]]:
    """Every ``@node``-decorated function defined in the library: type name -> (module, spec)."""
    declared: dict[str, tuple[str, NodeSpec]] = {}
    for module in library_modules():
        for value in vars(module).values():
            spec = getattr(value, "__artgraph_node__", None)
            if isinstance(spec, NodeSpec) and getattr(value, "__module__", None) == module.__name__:
                assert spec.type_name not in declared, f"{spec.type_name} is declared twice"
                declared[spec.type_name] = (module.__name__, spec)
    return declared


@pytest.fixture(scope="module")
def registry() -> artgraph.Registry:
    return artgraph.default_registry()


def test_every_declared_node_is_registered_by_the_builtin_plugin(registry):
    declared = declared_nodes()
    builtin = {name: spec for name, spec in registry.nodes.items() if spec.plugin == registry.builtin_plugin}
    assert sorted(declared) == sorted(builtin), "declared with @node but not in a subpackage's NODES, or vice versa"
    for name, (module, spec) in declared.items():
        assert builtin[name].fn is spec.fn, f"{name} from {module} is not the function registered"
    returned = artgraph.nodes.artgraph_register_nodes()
    assert len(returned) == len(set(map(id, returned))) == len(declared), "a node is listed twice"


def test_each_builtin_node_lives_in_the_subpackage_named_by_its_category():
    declared = declared_nodes()
    assert {module.split(".")[2] for module, _ in declared.values()} == set(CATEGORIES)
    for name, (module, spec) in declared.items():
        parts = module.split(".")
        assert len(parts) == 4, f"{name} is declared in {module}, outside a subpackage"
        assert spec.category == parts[2], f"{name} in {module} has category {spec.category!r}"


def test_the_subpackages_are_gathered_in_the_order_of_the_readme():
    assert [package.__name__.rsplit(".", 1)[-1] for package in artgraph.nodes.SUBPACKAGES] == list(CATEGORIES)


def test_every_port_type_defined_in_the_library_is_registered(registry):
    core = {id(value) for value in vars(artgraph).values() if isinstance(value, PortType)}
    defined = {
        id(value): value
        for module in library_modules()
        for value in vars(module).values()
        if isinstance(value, PortType) and id(value) not in core and value.element is None
    }
    assert defined, "no port types found"
    for port_type in defined.values():
        assert registry.types.get(port_type.name) is port_type, f"port type {port_type.name} is not registered"


def test_the_readme_table_lists_each_category_with_exactly_its_nodes(registry):
    text = (REPO / "README.md").read_text()
    table = text.split("## What is in the box", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        category, nodes = (cell.strip() for cell in line.strip("|").split("|"))
        rows[category] = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", nodes))
    builtin: dict[str, set[str]] = {}
    for name, spec in registry.nodes.items():
        if spec.plugin == registry.builtin_plugin:
            builtin.setdefault(spec.category, set()).add(name)
    assert {category: rows[category] for category in CATEGORIES} == builtin
    assert [category for category in rows if category in CATEGORIES] == list(CATEGORIES)


def test_the_library_imports_only_the_public_api():
    """Plugins import only from ``artgraph``; the built-in library is held to the same rule."""
    import ast

    root = Path(__file__).resolve().parents[1]
    for folder in (root / "nodes", root / "plugins" / "artgraph-example" / "src"):
        for path in folder.rglob("*.py"):
            for found in ast.walk(ast.parse(path.read_text())):
                if isinstance(found, ast.ImportFrom) and found.module and found.module.startswith("artgraph."):
                    assert found.module.startswith(("artgraph.nodes", "artgraph_example")), (path, found.module)
                if isinstance(found, ast.Import):
                    for alias in found.names:
                        assert not alias.name.startswith("artgraph.") or alias.name.startswith("artgraph.nodes"), path
