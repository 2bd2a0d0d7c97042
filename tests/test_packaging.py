"""The wheel holds every package under its import name, the graphs and the entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("artgraph-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_maps_core_and_nodes_to_import_names(wheel: zipfile.ZipFile):
    names = set(wheel.namelist())
    for module in REPO.glob("core/*.py"):
        assert f"artgraph/{module.name}" in names
    for module in REPO.glob("nodes/**/*.py"):
        assert f"artgraph/nodes/{module.relative_to(REPO / 'nodes').as_posix()}" in names
    assert not any(n.startswith(("core/", "nodes/", "tests/", "plugins/", "bench/")) for n in names)


def test_wheel_ships_the_example_graphs_and_their_assets(wheel: zipfile.ZipFile):
    names = set(wheel.namelist())
    for graph in REPO.glob("graphs/*.yaml"):
        assert f"artgraph/graphs/{graph.name}" in names
    for asset in REPO.glob("graphs/assets/*"):
        assert f"artgraph/graphs/assets/{asset.name}" in names


def test_wheel_ships_the_viewer_page_and_its_vendored_library(wheel: zipfile.ZipFile):
    names = set(wheel.namelist())
    for asset in REPO.glob("core/static/**/*"):
        if asset.is_file() and asset.suffix != ".md":
            assert f"artgraph/{asset.relative_to(REPO / 'core').as_posix()}" in names


def test_wheel_registers_the_builtin_nodes_through_the_entry_point(wheel: zipfile.ZipFile):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[artgraph]\nbuiltin = artgraph.nodes" in text
    assert "[console_scripts]\nartgraph = artgraph.cli:main" in text


def test_builtin_nodes_come_from_the_entry_point_once():
    import artgraph

    registry = artgraph.default_registry()
    assert registry.get("image.load").distribution == "artgraph"
    assert registry.get("image.load").plugin == "builtin"
    assert not registry.broken, registry.broken
    assert list(registry.plugins).count("builtin") == 1
