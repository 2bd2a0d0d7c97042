"""Plugin discovery and isolation, through real entry-point metadata.

Nothing here registers plugin objects by hand. Each fake plugin is a fake
*installed distribution*: a ``NAME-1.0.dist-info`` folder (METADATA and
entry_points.txt with an ``[artgraph]`` group) next to its module, in a folder
put on PYTHONPATH of a fresh ``artgraph`` process. importlib.metadata finds them
exactly as it finds a pip-installed package, so these tests exercise the same
path as a user's environment: entry points -> import -> pluggy hooks -> registry.

All fake distributions live side by side in one site folder, as they would in
one environment, so the tests also show that a broken plugin breaks nothing
else. The fake plugins do not import torch; the artgraph processes still do
(the built-in node pack needs it), which is the slow part, so the few CLI
processes start together, once, and the tests read their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image as PILImage

TIMEOUT = 120

# --- the fake distributions ----------------------------------------------------

BROKEN_IMPORT = """
raise RuntimeError("missing the flux capacitor")
"""

BROKEN_HOOK = """
from artgraph import Param, Str, hookimpl, node

@node("hook.fine", params={"text": Param(Str, "hi")}, outputs={"text": Str})
def fine(text):
    return text

@hookimpl
def artgraph_register_nodes():
    raise ValueError("hook exploded")
"""

BLUR = """
from artgraph import Int, Param, Str, hookimpl, node

@node("dup.blur", params={{"radius": Param(Int, 1)}}, outputs={{"who": Str}})
def blur(radius):
    return "{dist}"

@node("{prefix}.only", outputs={{"who": Str}})
def only():
    return "{dist}"

@hookimpl
def artgraph_register_nodes():
    return [blur, only]
"""

SWATCHES = """
from artgraph import Input, Int, Param, PortType, hookimpl, node

def _check(value):
    return None if isinstance(value, list) else f"expected a list of colour names, got {type(value).__name__}"

Swatches = PortType("Swatches", "a list of colour names", value=_check)

@node("pal.make", params={"n": Param(Int, 3, min=1, max=3)}, outputs={"palette": Swatches})
def make(n):
    return ["red", "green", "blue"][:n]

@node("pal.count", inputs={"palette": Input(Swatches)}, outputs={"count": Int})
def count(palette):
    return len(palette)

@hookimpl
def artgraph_register_types():
    return [Swatches]

@hookimpl
def artgraph_register_nodes():
    return [make, count]
"""

BRUSH = """
from artgraph import Input, Param, PortType, Str, hookimpl, node
from fake_palette import Swatches  # a type another distribution registers

Brush = PortType("Brush", "a type nobody registers")

@node("brush.paint", inputs={"brush": Input(Brush)}, outputs={"text": Str})
def paint(brush):
    return "painted"

@node("brush.tint", inputs={"palette": Input(Swatches)}, outputs={"first": Str})
def tint(palette):
    return palette[0]

@node("brush.name", params={"name": Param(Str, "round")}, outputs={"name": Str})
def name(name):
    return name

@hookimpl
def artgraph_register_nodes():
    return [paint, tint, name]
"""

SAME_NAME = """
from artgraph import Str, hookimpl, node

@node("twin.{which}", outputs={{"who": Str}})
def who():
    return "{which}"

@hookimpl
def artgraph_register_nodes():
    return [who]
"""

TEXTURE = """
from artgraph import Input, Int, PortType, hookimpl, node

# Both fake-tex-* distributions want a type called Texture, each its own.
Texture = PortType("Texture", "{dist}'s texture", value=lambda v: None if isinstance(v, {kind}) else "wrong texture")

@node("{prefix}.make", outputs={{"texture": Texture}})
def make():
    return {kind}()

@node("{prefix}.use", inputs={{"texture": Input(Texture)}}, outputs={{"n": Int}})
def use(texture):
    return len(texture)

@hookimpl
def artgraph_register_types():
    return [Texture]

@hookimpl
def artgraph_register_nodes():
    return [make, use]
"""

#: distribution -> ({entry point name: module}, {module: source})
FAKES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "fake-broken-import": ({"broken_import": "fake_broken_import"}, {"fake_broken_import": BROKEN_IMPORT}),
    "fake-broken-hook": ({"broken_hook": "fake_broken_hook"}, {"fake_broken_hook": BROKEN_HOOK}),
    "fake-blur-a": ({"blur_a": "fake_blur_a"}, {"fake_blur_a": BLUR.format(dist="fake-blur-a", prefix="a")}),
    "fake-blur-b": ({"blur_b": "fake_blur_b"}, {"fake_blur_b": BLUR.format(dist="fake-blur-b", prefix="b")}),
    "fake-palette": ({"palette": "fake_palette"}, {"fake_palette": SWATCHES}),
    "fake-brush": ({"brush": "fake_brush"}, {"fake_brush": BRUSH}),
    "fake-tex-a": (
        {"tex_a": "fake_tex_a"},
        {"fake_tex_a": TEXTURE.format(dist="fake-tex-a", prefix="texa", kind="list")},
    ),
    "fake-tex-b": (
        {"tex_b": "fake_tex_b"},
        {"fake_tex_b": TEXTURE.format(dist="fake-tex-b", prefix="texb", kind="dict")},
    ),
    # Two packs that both call their entry point "nodes": the name is pluggy's plugin name.
    "fake-twin-one": ({"nodes": "fake_twin_one"}, {"fake_twin_one": SAME_NAME.format(which="one")}),
    "fake-twin-two": ({"nodes": "fake_twin_two"}, {"fake_twin_two": SAME_NAME.format(which="two")}),
}


def install_fake(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Lay out what pip would: the modules, and DIST-1.0.dist-info with the entry points."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[artgraph]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source).lstrip())


# --- graphs the CLI processes run ----------------------------------------------

SURVIVORS = """\
artgraph: 1
name: survivors
nodes:
  photo:
    type: image.load
    params: {path: tiny.png}
  save:
    type: image.save
    inputs: {image: photo.image}
    params: {path: copy.png}
  colours:
    type: pal.make
    params: {n: 2}
  count:
    type: pal.count
    inputs: {palette: colours.palette}
  report:
    type: data.save
    inputs: {value: count.count}
    params: {path: count.json}
"""

CONFLICT = """\
artgraph: 1
name: conflict
nodes:
  soft:
    type: dup.blur
    params: {radius: 2}
"""

MISWIRED = """\
artgraph: 1
name: miswired
nodes:
  colours:
    type: pal.make
  save:
    type: image.save
    inputs: {image: colours.palette}
    params: {path: colours.png}
"""


class Processes:
    """CLI processes started together (each imports torch); results read on demand."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("PYTHONWARNINGS", None)
        self._running: dict[str, subprocess.Popen[str]] = {}
        self._done: dict[str, subprocess.CompletedProcess[str]] = {}

    def start(self, name: str, *args: str) -> None:
        self._running[name] = subprocess.Popen(
            [sys.executable, *args],
            cwd=self.site,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def get(self, name: str) -> subprocess.CompletedProcess[str]:
        if name not in self._done:
            proc = self._running.pop(name)
            try:
                out, err = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"'{name}' took more than {TIMEOUT}s:\n{err}")
            self._done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return self._done[name]

    def json(self, name: str) -> dict:
        done = self.get(name)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def close(self) -> None:
        for proc in self._running.values():
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the fake installed distributions and the graphs."""
    root = tmp_path_factory.mktemp("site")
    for dist, (entry_points, modules) in FAKES.items():
        install_fake(root, dist, entry_points, modules)
    img = PILImage.new("RGB", (6, 4))
    img.putdata([(x * 40, y * 60, 128) for y in range(4) for x in range(6)])
    img.save(root / "tiny.png")
    (root / "survivors.yaml").write_text(SURVIVORS)
    (root / "conflict.yaml").write_text(CONFLICT)
    (root / "miswired.yaml").write_text(MISWIRED)
    return root


@pytest.fixture(scope="module")
def procs(site: Path):
    cli = ["-m", "artgraph.cli"]
    p = Processes(site)
    p.start("nodes_json", *cli, "nodes", "--json")
    p.start("nodes_text", *cli, "nodes")
    p.start("validate", *cli, "validate", "conflict.yaml", "miswired.yaml")
    p.start("run", *cli, "run", "survivors.yaml", "--no-cache", "--quiet", "--out", "out", "--device", "cpu")
    yield p
    p.close()


def broken_of(report: dict, dist: str) -> list[dict]:
    return [b for b in report["broken_plugins"] if b["distribution"] == dist]


# --- (a) a plugin that raises on import ------------------------------------------


def test_plugin_failing_on_import_is_reported_with_plugin_distribution_and_error(procs: Processes) -> None:
    report = procs.json("nodes_json")
    (broken,) = broken_of(report, "fake-broken-import")
    assert broken["plugin"] == "broken_import"
    assert "fake_broken_import" in broken["error"]
    assert "RuntimeError: missing the flux capacitor" in broken["error"]


def test_builtin_and_other_plugins_keep_working_next_to_broken_ones(procs: Processes, site: Path) -> None:
    run = procs.get("run")
    assert run.returncode == 0, run.stderr
    # The skipped plugins are said out loud, not silently dropped...
    assert "broken_import" in run.stderr and "fake-broken-import" in run.stderr
    # ...and image.load -> image.save and another plugin's nodes did their work.
    with PILImage.open(site / "tiny.png") as original, PILImage.open(site / "out" / "copy.png") as copy:
        assert copy.size == original.size
        assert copy.convert("RGB").tobytes() == original.convert("RGB").tobytes()
    assert json.loads((site / "out" / "count.json").read_text()) == 2


def test_builtin_nodes_are_all_listed(procs: Processes) -> None:
    nodes = {n["type"]: n for n in procs.json("nodes_json")["nodes"]}
    for name in ("image.load", "image.save", "image.resize", "image.grid", "data.save"):
        assert nodes[name]["distribution"] == "artgraph"
        assert nodes[name]["plugin"] == "builtin"


# --- (b) a plugin whose hook raises ----------------------------------------------


def test_plugin_whose_register_hook_raises_is_isolated(procs: Processes) -> None:
    report = procs.json("nodes_json")
    (broken,) = broken_of(report, "fake-broken-hook")
    assert broken["plugin"] == "broken_hook"
    assert "artgraph_register_nodes" in broken["error"]
    assert "ValueError: hook exploded" in broken["error"]
    names = {n["type"] for n in report["nodes"]}
    assert "hook.fine" not in names  # never returned, so never registered
    assert {"image.load", "pal.make", "a.only"} <= names


# --- (c) two distributions registering the same node type --------------------------


def test_conflicting_node_type_names_both_distributions(procs: Processes) -> None:
    report = procs.json("nodes_json")
    assert sorted(report["conflicts"]["dup.blur"]) == ["fake-blur-a", "fake-blur-b"]
    names = {n["type"] for n in report["nodes"]}
    # Neither silently wins: the ambiguous type is unusable until one is uninstalled...
    assert "dup.blur" not in names
    # ...while the rest of both packs is fine.
    assert {"a.only", "b.only"} <= names


def test_validating_a_graph_with_a_conflicting_type_names_both_distributions(procs: Processes) -> None:
    done = procs.get("validate")
    assert done.returncode == 2, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if "dup.blur" in ln and "conflict.yaml" in ln]
    assert "fake-blur-a" in line and "fake-blur-b" in line
    assert "conflict.yaml:4: node 'soft'" in line  # file:line of the node


# --- (d) a plugin adding a port type -------------------------------------------


def test_plugin_port_type_and_nodes_using_it_are_registered(procs: Processes) -> None:
    report = procs.json("nodes_json")
    nodes = {n["type"]: n for n in report["nodes"]}
    assert not broken_of(report, "fake-palette")
    assert (nodes["pal.make"]["plugin"], nodes["pal.make"]["distribution"]) == ("palette", "fake-palette")
    assert nodes["pal.make"]["outputs"]["palette"]["type"] == "Swatches"
    assert nodes["pal.count"]["inputs"]["palette"]["type"] == "Swatches"
    # Types are registered before any nodes, so another distribution may use them.
    assert nodes["brush.tint"]["distribution"] == "fake-brush"
    assert nodes["brush.tint"]["inputs"]["palette"]["type"] == "Swatches"


def test_node_using_an_unregistered_type_is_reported_broken_alone(procs: Processes) -> None:
    report = procs.json("nodes_json")
    (broken,) = broken_of(report, "fake-brush")
    assert broken["plugin"] == "brush"
    assert "brush.paint" in broken["error"] and "'Brush'" in broken["error"]
    names = {n["type"] for n in report["nodes"]}
    assert "brush.paint" not in names
    assert {"brush.name", "brush.tint"} <= names  # the plugin's other nodes are fine


def test_plugin_port_types_are_checked_on_wires(procs: Processes) -> None:
    done = procs.get("validate")
    (line,) = [ln for ln in done.stderr.splitlines() if "miswired.yaml" in ln]
    assert "node 'save'" in line and "Swatches" in line and "Image" in line


def test_second_port_type_of_the_same_name_is_refused_and_reported(procs: Processes) -> None:
    report = procs.json("nodes_json")
    refused = [b for b in report["broken_plugins"] if "port type 'Texture'" in b["error"]]
    assert len(refused) == 1, refused
    (loser,) = refused
    winner = ({"fake-tex-a", "fake-tex-b"} - {loser["distribution"]}).pop()
    assert f"already registered by {winner}" in loser["error"]
    names = {n["type"] for n in report["nodes"]}
    prefix = "texa" if winner == "fake-tex-a" else "texb"
    assert {f"{prefix}.make", f"{prefix}.use"} <= names


def test_nodes_using_a_refused_port_type_are_not_registered(procs: Processes) -> None:
    report = procs.json("nodes_json")
    (loser,) = [b["distribution"] for b in report["broken_plugins"] if "port type 'Texture'" in b["error"]]
    prefix = "texa" if loser == "fake-tex-a" else "texb"
    names = {n["type"] for n in report["nodes"]}
    # texa.make -> texb.use would type-check (same name) and hand a list to code expecting a dict.
    assert f"{prefix}.make" not in names and f"{prefix}.use" not in names


# --- (e) the text listing ----------------------------------------------------------


def test_nodes_text_lists_broken_plugins_and_conflicts(procs: Processes) -> None:
    done = procs.get("nodes_text")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "broken plugins (skipped):" in out
    broken = out.split("broken plugins (skipped):", 1)[1]
    assert "plugin 'broken_import' (distribution fake-broken-import)" in broken
    assert "missing the flux capacitor" in broken
    assert "plugin 'broken_hook' (distribution fake-broken-hook)" in broken
    assert "plugin 'brush' (distribution fake-brush)" in broken
    assert "dup.blur" in out and "fake-blur-a" in out and "fake-blur-b" in out
    assert "image.load (v1, artgraph)" in out
    assert "pal.make (v1, fake-palette)" in out


# --- entry-point names are per environment, not per distribution --------------------


def test_two_distributions_with_the_same_entry_point_name_are_not_silently_lost(procs: Processes) -> None:
    report = procs.json("nodes_json")
    nodes = {n["type"]: n["distribution"] for n in report["nodes"]}
    for which in ("one", "two"):
        dist = f"fake-twin-{which}"
        registered = nodes.get(f"twin.{which}") == dist
        assert registered or broken_of(report, dist), f"{dist}'s nodes vanished without a report"
