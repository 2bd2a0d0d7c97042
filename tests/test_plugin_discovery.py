"""Plugin discovery and isolation, through real entry-point metadata.

Nothing here registers plugin objects by hand. Each fake plugin is a fake
*installed distribution*: a ``NAME-1.0.dist-info`` folder (METADATA and
entry_points.txt with an ``[artgraph]`` group) next to its module, in a folder
put on PYTHONPATH of a fresh ``artgraph`` process. importlib.metadata finds them
exactly as it finds a pip-installed package, so these tests exercise the same
path as a user's environment: entry points -> import -> pluggy hooks -> registry.
(The fake sites come first on sys.path, so their entry points are found before
the built-in one: the order in which a plugin could shadow a built-in name.)

All fake distributions live side by side in one site folder, as they would in
one environment, so the tests also show that a broken plugin breaks nothing
else. The fake plugins do not import torch; the artgraph processes still do
(the built-in node pack needs it), which is the slow part, so the few CLI
processes start together, once, and the tests read their results.

The last section builds registries in this process instead, from plugin objects
made here (as tests/conftest.py does), to control the entry-point order and
check that the built-in library's names win in every order.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image as PILImage

import artgraph
import artgraph.nodes
import artgraph.plugins as plugins
from artgraph import Image, Input, Param, PortType, Str, hookimpl, node
from artgraph.nodes.style.features import Features
from artgraph.plugins import BrokenPlugin, build_registry, is_builtin_plugin

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

SHADOW = """
from artgraph import Param, PortType, Str, hookimpl, node

# Named like built-in ones: artgraph's own must keep working.
Features = PortType("Features", "fake-shadow's features")

@node("image.load", params={"path": Param(Str, "in.png")}, outputs={"who": Str})
def load(path):
    return "fake-shadow"

@node("shadow.ok", outputs={"who": Str})
def ok():
    return "fake-shadow"

@hookimpl
def artgraph_register_types():
    return [Features]

@hookimpl
def artgraph_register_nodes():
    return [load, ok]
"""

SPOOF = """
from artgraph import Str, hookimpl, node

@node("image.save", outputs={"who": Str})
def save():
    return "fake-spoof"

@node("spoof.only", outputs={"who": Str})
def only():
    return "fake-spoof"

@hookimpl
def artgraph_register_nodes():
    return [save, only]
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
    # A node type and a port type named like built-in ones.
    "fake-shadow": ({"shadow": "fake_shadow"}, {"fake_shadow": SHADOW}),
    # An entry point named like the built-in one, from another distribution.
    "fake-spoof": ({"builtin": "fake_spoof"}, {"fake_spoof": SPOOF}),
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
    assert (
        "plugin 'shadow' (distribution fake-shadow): node 'image.load' is a built-in type of artgraph; "
        "rename it (e.g. 'shadow.load')"
    ) in broken
    conflicts = out.split("conflicts (these types are unusable", 1)[1].split("broken plugins (skipped):", 1)[0]
    assert "dup.blur" in conflicts and "image.load" not in conflicts
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


# --- (f) the built-in library's names win -------------------------------------------


def test_third_party_node_named_like_a_builtin_is_refused_and_the_builtin_kept(procs: Processes) -> None:
    report = procs.json("nodes_json")
    nodes = {n["type"]: n for n in report["nodes"]}
    assert (nodes["image.load"]["plugin"], nodes["image.load"]["distribution"]) == ("builtin", "artgraph")
    assert "image.load" not in report["conflicts"]
    refused = [b for b in broken_of(report, "fake-shadow") if "image.load" in b["error"]]
    assert refused == [
        {
            "plugin": "shadow",
            "distribution": "fake-shadow",
            "error": "node 'image.load' is a built-in type of artgraph; rename it (e.g. 'shadow.load')",
        }
    ]
    assert nodes["shadow.ok"]["distribution"] == "fake-shadow"  # the plugin's other nodes still register
    # (test_builtin_and_other_plugins_keep_working_next_to_broken_ones runs image.load for real.)


def test_third_party_port_type_named_like_a_builtin_hook_type_is_refused(procs: Processes) -> None:
    # 'Features' is registered by the built-in plugin's hook, not preset like 'Image':
    # found first, fake-shadow's would have replaced it.
    report = procs.json("nodes_json")
    errors = [b["error"] for b in broken_of(report, "fake-shadow")]
    assert "port type 'Features' is already registered by artgraph; rename it" in errors
    assert not broken_of(report, "artgraph")
    nodes = {n["type"]: n for n in report["nodes"]}
    assert nodes["vgg.features"]["outputs"]["features"]["type"] == "Features"
    assert nodes["loss.gram"]["distribution"] == "artgraph"


def test_an_entry_point_named_builtin_does_not_displace_the_builtin_library(procs: Processes) -> None:
    report = procs.json("nodes_json")
    (spoof,) = broken_of(report, "fake-spoof")
    assert spoof["plugin"] == "builtin"
    assert "entry point name 'builtin' is also used by artgraph" in spoof["error"]
    nodes = {n["type"]: n for n in report["nodes"]}
    assert "spoof.only" not in nodes
    assert (nodes["image.save"]["plugin"], nodes["image.save"]["distribution"]) == ("builtin", "artgraph")


# --- the same rules in this process, in every order -----------------------------------
#
# Entry-point order is whatever importlib.metadata finds first, so these build
# registries from a list of entry points given in each order (the built-in one
# is the real installed entry point), and through ``plugins=`` as conftest does.


@node("image.load", params={"path": Param(Str, "in.png")}, outputs={"who": Str})
def shadow_load(path: str) -> str:
    return "myplugin"


@node("myplugin.other", outputs={"who": Str})
def myplugin_other() -> str:
    return "myplugin"


#: Named like built-in port types: one preset (Image), one from the built-in plugin's hook (Features).
MyImage = PortType("Image", "myplugin's image")
MyFeatures = PortType("Features", "myplugin's features")


@node("myplugin.features", outputs={"features": MyFeatures})
def myplugin_features() -> dict:
    return {}


@node("myplugin.uses_builtin_features", inputs={"features": Input(Features)}, outputs={"image": Image})
def myplugin_uses_builtin_features(features: dict) -> None:
    return None


def make_pack(nodes: Iterable[object] = (), types: Iterable[PortType] = (), trylast: bool = False) -> object:
    """A plugin object, like conftest's ``_Pack``; ``trylast`` moves its hooks ahead in pluggy's list."""

    class Pack:
        @hookimpl(trylast=trylast)
        def artgraph_register_types(self) -> list[PortType]:
            return list(types)

        @hookimpl(trylast=trylast)
        def artgraph_register_nodes(self) -> list[object]:
            return list(nodes)

    return Pack()


class FakeEntryPoint:
    """What build_registry uses of an importlib.metadata EntryPoint, loading an object made here."""

    def __init__(self, name: str, dist: str, obj: object, value: str = "myplugin") -> None:
        self.name, self.value, self.dist, self._obj = name, value, SimpleNamespace(name=dist), obj

    def load(self) -> object:
        return self._obj


def builtin_entry_point() -> md.EntryPoint:
    return next(ep for ep in md.entry_points(group="artgraph") if ep.name == "builtin" and ep.dist.name == "artgraph")


ORDERS = ["builtin entry point first", "plugin entry point first", "plugin first with trylast hooks", "plugins="]


def build(order: str, pack_args: dict, monkeypatch: pytest.MonkeyPatch) -> artgraph.Registry:
    """A registry of the built-in library and plugin 'myplugin' (distribution my-dist), in the given order."""
    if order == "plugins=":  # the installed entry points, then the given object
        return build_registry(plugins=[("myplugin", "my-dist", make_pack(**pack_args))])
    pack = make_pack(**pack_args, trylast=order.endswith("trylast hooks"))
    mine = FakeEntryPoint("myplugin", "my-dist", pack)
    eps = [builtin_entry_point(), mine] if order == "builtin entry point first" else [mine, builtin_entry_point()]
    monkeypatch.setattr(plugins, "_entry_points", lambda: eps)
    return build_registry()


@pytest.mark.parametrize("order", ORDERS)
def test_a_third_party_node_named_like_a_builtin_is_refused_in_any_order(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = build(order, {"nodes": [shadow_load, myplugin_other]}, monkeypatch)
    spec = registry.get("image.load")
    assert (spec.plugin, spec.distribution) == ("builtin", "artgraph")
    assert spec.fn is not shadow_load
    assert "image.load" not in registry.conflicts
    mine = [b for b in registry.broken if b.distribution == "my-dist"]
    assert mine == [
        BrokenPlugin(
            "myplugin", "my-dist", "node 'image.load' is a built-in type of artgraph; rename it (e.g. 'myplugin.load')"
        )
    ]
    assert registry.get("myplugin.other").distribution == "my-dist"  # its other nodes still register
    assert not [b for b in registry.broken if b.distribution == "artgraph"]


@pytest.mark.parametrize("order", ORDERS)
def test_a_third_party_port_type_named_like_a_builtin_type_is_refused_in_any_order(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = {
        "types": [MyImage, MyFeatures],
        "nodes": [myplugin_features, myplugin_uses_builtin_features, myplugin_other],
    }
    registry = build(order, pack, monkeypatch)
    assert registry.types["Image"] is artgraph.Image
    assert registry.types["Features"] is Features
    errors = [b.error for b in registry.broken if (b.plugin, b.distribution) == ("myplugin", "my-dist")]
    assert "port type 'Image' is already registered by artgraph; rename it" in errors
    assert "port type 'Features' is already registered by artgraph; rename it" in errors
    # Its node on its own refused 'Features' is refused too; the built-in one may be used.
    assert registry.get("myplugin.features") is None
    assert any("myplugin.features" in e for e in errors)
    assert registry.get("myplugin.uses_builtin_features").distribution == "my-dist"
    assert registry.get("vgg.features").outputs["features"].type is Features
    assert not [b for b in registry.broken if b.distribution == "artgraph"]


def test_two_third_party_plugins_naming_a_builtin_node_are_both_refused_not_in_conflict() -> None:
    registry = build_registry(
        plugins=[("one", "one-dist", make_pack([shadow_load])), ("two", "two-dist", make_pack([shadow_load]))]
    )
    assert registry.get("image.load").distribution == "artgraph"
    assert "image.load" not in registry.conflicts
    refused = {(b.plugin, b.distribution) for b in registry.broken if "image.load" in b.error}
    assert refused == {("one", "one-dist"), ("two", "two-dist")}


def test_two_third_party_plugins_naming_the_same_node_still_conflict() -> None:
    registry = build_registry(
        plugins=[("one", "one-dist", make_pack([myplugin_other])), ("two", "two-dist", make_pack([myplugin_other]))]
    )
    assert registry.get("myplugin.other") is None
    assert registry.conflicts["myplugin.other"] == ["one-dist", "two-dist"]
    assert "uninstall one of them" in registry.conflict_message("myplugin.other")


@pytest.mark.parametrize("spoof_first", [True, False])
def test_an_entry_point_named_builtin_gets_no_privilege(spoof_first: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    spoof = FakeEntryPoint("builtin", "evil-dist", make_pack([shadow_load, myplugin_other]))
    eps = [spoof, builtin_entry_point()] if spoof_first else [builtin_entry_point(), spoof]
    monkeypatch.setattr(plugins, "_entry_points", lambda: eps)
    registry = build_registry()
    assert registry.builtin_plugin == "builtin"
    assert registry.plugins["builtin"] == "artgraph"
    assert registry.get("image.load").distribution == "artgraph"
    assert registry.get("myplugin.other") is None  # the whole namesake plugin is refused...
    (refused,) = [b for b in registry.broken if b.distribution == "evil-dist"]
    assert refused.plugin == "builtin"
    assert "entry point name 'builtin' is also used by artgraph" in refused.error  # ...and said so


def test_claiming_the_artgraph_distribution_name_gets_no_privilege() -> None:
    registry = build_registry(plugins=[("mine", "artgraph", make_pack([shadow_load, myplugin_other]))])
    assert registry.builtin_plugin == "builtin"
    assert registry.get("image.load").plugin == "builtin"
    assert [b.error for b in registry.broken if b.plugin == "mine"] == [
        "node 'image.load' is a built-in type of artgraph; rename it (e.g. 'mine.load')"
    ]
    assert registry.get("myplugin.other").plugin == "mine"


def test_builtin_is_recognised_by_distribution_and_module_together() -> None:
    assert is_builtin_plugin("artgraph", artgraph.nodes)
    assert is_builtin_plugin("ArtGraph", artgraph.nodes)  # distribution names compare normalised
    assert not is_builtin_plugin("evil-dist", artgraph.nodes)
    assert not is_builtin_plugin("artgraph", make_pack([shadow_load]))
    assert not is_builtin_plugin("artgraph", SimpleNamespace(__name__="artgraph.nodes"))
    # Another distribution pointing its entry point at artgraph.nodes is refused, not privileged.
    registry = build_registry(plugins=[("again", "evil-dist", artgraph.nodes)])
    assert registry.plugins.get("again") is None
    assert [b.plugin for b in registry.broken] == ["again"]
    assert registry.builtin_plugin == "builtin"


def test_without_the_real_builtin_no_plugin_is_privileged_by_its_name_or_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Say artgraph.nodes is not installed or failed to import: a plugin called 'builtin', or one
    # claiming distribution 'artgraph' and module 'artgraph.nodes' in its metadata, is still third-party.
    eps = [
        FakeEntryPoint("builtin", "evil-dist", make_pack([shadow_load])),
        FakeEntryPoint("mine", "artgraph", make_pack([shadow_load]), value="artgraph.nodes"),
    ]
    monkeypatch.setattr(plugins, "_entry_points", lambda: eps)
    registry = build_registry()
    assert registry.builtin_plugin is None
    assert registry.get("image.load") is None
    assert sorted(registry.conflicts["image.load"]) == ["artgraph", "evil-dist"]
    assert not registry.broken
