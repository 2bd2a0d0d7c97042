"""Tests of the example node pack.

Most tests call the nodes as the plain functions they are: no graph, no engine.
The last ones check what makes this a plugin: that artgraph discovers it through
the entry-point metadata of the installed distribution (the dev setup installs
it with ``pip install -e plugins/artgraph-example``), and that its nodes run in
a graph between the built-in image.load and image.save.
"""

from __future__ import annotations

import importlib.metadata as md
import math
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import Context, NodeError, spec_of
from artgraph.plugins import build_registry
from artgraph_example import Palette, halftone, palette, posterize, quantize

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def gray(value: float, size: int = 64, channels: int = 3) -> torch.Tensor:
    return torch.full((1, channels, size, size), value)


def ctx_for(node_type: str, seed: int = 0) -> Context:
    return Context("test", node_type, device="cpu", seed=seed)


# --- posterize ---------------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 3, 4, 7, 256])
def test_posterize_gives_exactly_levels_evenly_spaced_values(levels: int) -> None:
    ramp = torch.linspace(0, 1, 1024).view(1, 1, 1, -1)
    values = posterize(ramp, levels=levels).unique()
    assert values.numel() == levels
    assert torch.allclose(values, torch.linspace(0, 1, levels))


def test_posterize_keeps_shape_and_clamps_out_of_range_input() -> None:
    image = torch.rand(2, 3, 5, 7) * 1.4 - 0.2
    out = posterize(image, levels=4)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert len(out.unique()) <= 4


def test_posterize_rounds_to_the_nearest_level() -> None:
    out = posterize(torch.tensor([0.1, 0.2, 0.49, 0.51, 0.9]).view(1, 1, 1, -1), levels=2)
    assert out.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("channels", [2, 4])
def test_posterize_leaves_alpha_untouched(channels: int) -> None:
    image = torch.rand(2, channels, 9, 9)
    out = posterize(image, levels=2)
    assert torch.equal(out[:, -1], image[:, -1])
    assert set(out[:, :-1].unique().tolist()) <= {0.0, 1.0}


def test_posterize_declares_its_param_range() -> None:
    levels = spec_of(posterize).params["levels"]
    assert (levels.default, levels.min, levels.max) == (4, 2, 256)


def test_posterize_refuses_a_wired_level_below_two() -> None:
    with pytest.raises(NodeError, match="at least 2"):
        posterize(gray(0.5), levels=1)


# --- halftone ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gray", "cmyk"])
@pytest.mark.parametrize("shape", [(1, 3, 40, 56), (2, 4, 33, 20), (3, 1, 16, 16), (1, 2, 17, 9)])
def test_halftone_keeps_size_and_channels_and_stays_in_range(mode: str, shape: tuple[int, ...]) -> None:
    image = torch.rand(*shape)
    out = halftone(image, cell=6, angle=30.0, mode=mode)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mode", ["gray", "cmyk"])
def test_halftone_keeps_alpha(mode: str) -> None:
    image = torch.rand(2, 4, 24, 24)
    assert torch.equal(halftone(image, cell=4, angle=45.0, mode=mode)[:, 3], image[:, 3])


@pytest.mark.parametrize("mode", ["gray", "cmyk"])
def test_halftone_dark_image_gets_more_ink_than_light(mode: str) -> None:
    dark = 1 - halftone(gray(0.2), cell=8, angle=45.0, mode=mode)
    light = 1 - halftone(gray(0.8), cell=8, angle=45.0, mode=mode)
    assert dark.mean() > light.mean() + 0.4


@pytest.mark.parametrize("mode", ["gray", "cmyk"])
def test_halftone_prints_paper_and_solid_exactly(mode: str) -> None:
    assert torch.equal(halftone(gray(1.0), cell=8, angle=45.0, mode=mode), gray(1.0))
    assert torch.equal(halftone(gray(0.0), cell=8, angle=45.0, mode=mode), gray(0.0))


@pytest.mark.parametrize("angle", [0.0, 15.0, 45.0])
@pytest.mark.parametrize("level", [0.1, 0.25, 0.5, 0.75, 0.9])
def test_halftone_dots_reproduce_the_tone(level: float, angle: float) -> None:
    """The dots' area matches the coverage: a flat gray prints at (about) its own mean."""
    out = halftone(gray(level, size=128), cell=8, angle=angle, mode="gray")
    assert out.mean().item() == pytest.approx(level, abs=0.03)
    # ...and it is a screen of dots, not a flat gray: most pixels are paper or ink.
    assert ((out < 0.05) | (out > 0.95)).float().mean() > 0.6


def test_halftone_cells_repeat_every_cell_pixels() -> None:
    out = halftone(gray(0.5), cell=8, angle=0.0, mode="gray")
    assert torch.allclose(out[..., :, :-8], out[..., :, 8:], atol=1e-5)
    assert torch.allclose(out[..., :-8, :], out[..., 8:, :], atol=1e-5)
    assert not torch.allclose(out[..., :, :-4], out[..., :, 4:], atol=1e-2)


def test_halftone_angle_rotates_the_screen() -> None:
    a = halftone(gray(0.5), cell=8, angle=0.0, mode="gray")
    b = halftone(gray(0.5), cell=8, angle=30.0, mode="gray")
    assert not torch.allclose(a, b, atol=0.1)
    # A square screen looks the same every 90 degrees.
    c = halftone(gray(0.5), cell=8, angle=90.0, mode="gray")
    assert (a - c).abs().mean() < 0.02


def test_halftone_gray_mode_prints_gray() -> None:
    out = halftone(torch.rand(1, 3, 32, 32), cell=4, angle=45.0, mode="gray")
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])


def test_halftone_cmyk_keeps_colours() -> None:
    """Flat colours print, on average, as themselves (ideal inks, no ICC profile)."""
    colour = torch.tensor([0.9, 0.3, 0.1]).view(1, 3, 1, 1).expand(1, 3, 96, 96)
    out = halftone(colour, cell=6, angle=45.0, mode="cmyk")
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.tensor([0.9, 0.3, 0.1]), atol=0.04)
    # The red is made of dots: the magenta and yellow screens show.
    assert out[:, 1].std() > 0.2


def test_halftone_cmyk_of_a_gray_image_is_the_black_plate_only() -> None:
    image = torch.rand(1, 1, 32, 32)
    out = halftone(image, cell=4, angle=45.0, mode="cmyk")
    assert out.shape == image.shape
    as_rgb = halftone(image.expand(1, 3, 32, 32), cell=4, angle=45.0, mode="cmyk")
    assert torch.allclose(out[:, 0], as_rgb[:, 0]) and torch.allclose(as_rgb[:, 0], as_rgb[:, 2])


def test_halftone_refuses_images_it_cannot_separate() -> None:
    with pytest.raises(NodeError, match="5 channels"):
        halftone(torch.rand(1, 5, 8, 8), cell=4, angle=0.0, mode="gray")


def test_halftone_declares_its_params() -> None:
    spec = spec_of(halftone)
    assert spec.params["cell"].min == 2
    assert spec.params["mode"].choices == ("gray", "cmyk")
    assert spec.params["angle"].type is artgraph.Float


@pytest.mark.parametrize("device", DEVICES)
def test_nodes_stay_on_the_device_of_their_input(device: str) -> None:
    image = torch.rand(2, 4, 20, 20, generator=torch.Generator().manual_seed(0))
    on_device = image.to(device)
    colours = palette(Context("p", "example.palette", device=device), on_device, 4, 5)
    assert colours.device.type == device
    for out in (
        posterize(on_device, levels=3),
        halftone(on_device, cell=4, angle=10.0, mode="cmyk"),
        quantize(on_device, colours),
    ):
        assert out.device.type == device and out.shape == image.shape
    # Same numbers on every device (up to float rounding at the dot edges).
    assert torch.allclose(posterize(on_device, levels=3).cpu(), posterize(image, levels=3))
    printed = halftone(on_device, cell=4, angle=10.0, mode="cmyk").cpu()
    assert torch.allclose(printed, halftone(image, cell=4, angle=10.0, mode="cmyk"), atol=1e-3)


# --- palette and quantize ------------------------------------------------------

RED, GREEN, NAVY = (0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.05, 0.05, 0.3)


def three_colour_image() -> torch.Tensor:
    image = torch.empty(1, 3, 30, 30)
    for i, colour in enumerate((RED, GREEN, NAVY)):
        image[:, :, :, i * 10 : (i + 1) * 10] = torch.tensor(colour).view(1, 3, 1, 1)
    return image


def test_palette_finds_the_colours_darkest_first() -> None:
    found = palette(ctx_for("example.palette"), three_colour_image(), colors=3, iterations=10)
    assert Palette.check_value(found) is None
    expected = torch.tensor([NAVY, RED, GREEN])  # by Rec. 601 luma: 0.08, 0.35, 0.59
    assert torch.allclose(found, expected, atol=1e-5)


def test_palette_is_reproducible_from_its_seed() -> None:
    image = torch.rand(1, 3, 300, 300)  # more pixels than are sampled
    a = palette(ctx_for("example.palette", seed=7), image, colors=6, iterations=3)
    b = palette(ctx_for("example.palette", seed=7), image, colors=6, iterations=3)
    c = palette(ctx_for("example.palette", seed=8), image, colors=6, iterations=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_palette_with_more_colours_than_the_image_has() -> None:
    found = palette(ctx_for("example.palette"), gray(0.5), colors=4, iterations=5)
    assert found.shape == (4, 3)
    assert torch.allclose(found, torch.full((4, 3), 0.5))


def test_quantize_repaints_with_the_palette_and_keeps_alpha() -> None:
    image = torch.rand(2, 4, 16, 16)
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    out = quantize(image, colours)
    assert torch.equal(out[:, 3], image[:, 3])
    pixels = out[:, :3].permute(0, 2, 3, 1).reshape(-1, 3)
    assert {tuple(p) for p in pixels.tolist()} <= {tuple(c) for c in colours.tolist()}


def test_quantize_refuses_a_palette_of_another_mode() -> None:
    with pytest.raises(NodeError, match="same mode"):
        quantize(torch.rand(1, 1, 8, 8), torch.rand(4, 3))


def test_palette_type_checks_values() -> None:
    assert Palette.check_value(torch.rand(5, 3)) is None
    assert "shape" in (Palette.check_value(torch.rand(1, 3, 4, 4)) or "")
    assert "tensor" in (Palette.check_value([[0.0, 0.0, 0.0]]) or "")
    assert artgraph.can_connect(Palette, artgraph.Tensor)  # a palette *is* a tensor
    assert not artgraph.can_connect(Palette, artgraph.Image)


# --- the plugin, through the real entry-point metadata -------------------------


def test_the_distribution_declares_the_entry_point() -> None:
    eps = md.distribution("artgraph-example").entry_points.select(group="artgraph")
    assert [(ep.name, ep.value) for ep in eps] == [("example", "artgraph_example")]


def test_nodes_and_types_are_discovered_through_entry_points() -> None:
    registry = build_registry()  # entry points only: nothing is registered by hand
    for name in ("example.posterize", "example.halftone", "example.palette", "example.quantize"):
        spec = registry.get(name)
        assert spec is not None, f"{name} not discovered"
        assert (spec.plugin, spec.distribution) == ("example", "artgraph-example")
    assert registry.types["Palette"] is Palette
    assert registry.plugins["example"] == "artgraph-example"
    assert not [b for b in registry.broken if b.distribution == "artgraph-example"]
    assert "image.load" in registry.nodes  # alongside the built-in pack


def test_default_registry_has_the_example_nodes() -> None:
    assert artgraph.default_registry().get("example.posterize").distribution == "artgraph-example"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 24x16 RGB gradient with some colour."""
    path = tmp_path / "photo.png"
    img = PILImage.new("RGB", (24, 16))
    img.putdata([(x * 10, y * 15, 255 - x * 10) for y in range(16) for x in range(24)])
    img.save(path)
    return path


GRAPH_YAML = """\
artgraph: 1
name: poster
nodes:
  photo:
    type: image.load
    params: {path: photo.png}
  poster:
    type: example.posterize
    inputs: {image: photo.image}
    params: {levels: 2}
  save:
    type: image.save
    inputs: {image: poster.image}
    params: {path: poster.png}
"""


def test_posterize_runs_in_a_yaml_graph(tmp_path: Path, photo: Path) -> None:
    graph_file = tmp_path / "poster.yaml"
    graph_file.write_text(GRAPH_YAML)
    out_dir = tmp_path / "out"
    result = artgraph.load_graph(graph_file).run(device="cpu", cache=False, out_dir=out_dir)
    assert result.ok
    (written,) = result["save.paths"]
    assert Path(written) == out_dir / "poster.png"
    with PILImage.open(written) as img:
        assert img.size == (24, 16)
        values = set(img.convert("RGB").tobytes())
    assert values == {0, 255}


def test_palette_flows_between_plugin_nodes_in_a_graph(tmp_path: Path, photo: Path) -> None:
    graph = {
        "artgraph": 1,
        "name": "recolour",
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "photo.png"}},
            "colours": {"type": "example.palette", "inputs": {"image": "photo.image"}, "params": {"colors": 4}},
            "flat": {"type": "example.quantize", "inputs": {"image": "photo.image", "palette": "colours.palette"}},
            "print": {"type": "example.halftone", "inputs": {"image": "flat.image"}, "params": {"mode": "cmyk"}},
            "save": {"type": "image.save", "inputs": {"image": "print.image"}, "params": {"path": "print.png"}},
        },
    }
    result = artgraph.load_graph(graph, base_dir=tmp_path).run(
        device="cpu", cache=False, out_dir=tmp_path, outputs=["save", "colours.palette", "flat.image"]
    )
    assert result["colours.palette"].shape == (4, 3)
    flat = result["flat.image"].permute(0, 2, 3, 1).reshape(-1, 3)
    assert len({tuple(p) for p in flat.tolist()}) <= 4
    assert Path(result["save.paths"][0]).is_file()


def test_the_graph_validator_checks_plugin_params(tmp_path: Path, photo: Path) -> None:
    graph = {
        "artgraph": 1,
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "photo.png"}},
            "poster": {"type": "example.posterize", "inputs": {"image": "photo.image"}, "params": {"levels": 1}},
            "dots": {"type": "example.halftone", "inputs": {"image": "photo.image"}, "params": {"mode": "rgb"}},
        },
    }
    with pytest.raises(artgraph.GraphError) as caught:
        artgraph.load_graph(graph, base_dir=tmp_path)
    text = str(caught.value)
    assert "below the minimum 2" in text
    assert "not one of the choices" in text


def test_spot_function_is_the_cell_area_within_a_distance() -> None:
    from artgraph_example.effects import _spot_area, _spot_slope

    d = torch.tensor([0.0, 0.25, 0.5, math.sqrt(0.5)])
    assert torch.allclose(_spot_area(d), torch.tensor([0.0, math.pi / 16, math.pi / 4, 1.0]))
    # The slope is the derivative of the area (checked numerically, both regimes).
    x = torch.tensor([0.3, 0.6], dtype=torch.float64)
    h = 1e-6
    numeric = (_spot_area(x + h) - _spot_area(x - h)) / (2 * h)
    assert torch.allclose(_spot_slope(x), numeric, atol=1e-5)


def test_the_example_graph_runs(tmp_path: Path) -> None:
    graph_file = Path(__file__).resolve().parents[1] / "examples" / "print-shop.yaml"
    graph = artgraph.load_graph(graph_file)
    small = {"cat.size": 48, "coffee.size": 48, "dots.cell": 3}
    result = graph.run(device="cpu", cache=False, out_dir=tmp_path, overrides=small)
    assert result.ok
    with PILImage.open(tmp_path / "print-shop.png") as img:
        assert img.width > 4 * 48
