"""Single-line drawings: stippling, the ant colony and 2-opt, rendering, saving, a whole graph."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from artgraph import GraphError, NodeError, load_graph
from artgraph.nodes.data import files as data
from artgraph.nodes.lineart import stipple, tour, tsp
from artgraph.nodes.lineart.tour import PointSet, Tour
from tests.conftest import make_ctx


def circle(n: int, radius: float = 100.0, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` points on a circle, listed in a shuffled order; also each point's place on the circle."""
    place = np.random.default_rng(seed).permutation(n)
    angle = 2 * math.pi * place / n
    xy = np.stack([120 + radius * np.cos(angle), 110 + radius * np.sin(angle)], axis=1)
    return torch.from_numpy(xy), place


def colony(points: PointSet, **kw) -> tuple[Tour, float, dict]:
    params = {"ants": 10, "iterations": 20, "alpha": 1.0, "beta": 3.0, "rho": 0.1, "two_opt": True, "seed": 0}
    return tour.ant_colony(make_ctx(), points, **{**params, **kw})


def brute_force_two_opt_gain(xy: np.ndarray, order: np.ndarray) -> float:
    """The best gain of any 2-opt move, by trying every pair of edges."""
    n, best = len(order), 0.0
    for i, j in itertools.combinations(range(n), 2):
        if j <= i + 1 or (i == 0 and j == n - 1):
            continue
        a, b, c, d = xy[order[i]], xy[order[i + 1]], xy[order[j]], xy[order[(j + 1) % n]]
        gain = np.linalg.norm(a - b) + np.linalg.norm(c - d) - np.linalg.norm(a - c) - np.linalg.norm(b - d)
        best = max(best, gain)
    return best


# -- the ant colony ------------------------------------------------------------


def test_the_colony_walks_points_on_a_circle_in_circle_order():
    xy, place = circle(24)
    found, length, history = colony(PointSet(xy, 240, 220))
    perimeter = 2 * 24 * 100.0 * math.sin(math.pi / 24)  # the optimal tour: the polygon
    assert length == pytest.approx(perimeter, rel=1e-9)
    assert found.length == length
    steps = np.diff(place[found.order.numpy()], append=place[found.order[0]]) % 24
    assert set(steps.tolist()) in ({1}, {23})  # always the next point round, one way or the other
    assert sorted(found.order.tolist()) == list(range(24))
    assert (found.width, found.height) == (240, 220)
    assert history["iteration"] == list(range(1, 21))
    assert len(history["best"]) == len(history["mean"]) == 20


def test_the_same_seed_gives_the_same_tour_and_history():
    xy = torch.rand(60, 2, generator=torch.Generator().manual_seed(3)) * 100
    points = PointSet(xy, 100, 100)
    first, second = colony(points, seed=7, two_opt=False), colony(points, seed=7, two_opt=False)
    assert torch.equal(first[0].order, second[0].order)
    assert first[1] == second[1] and first[2] == second[2]
    other = colony(points, seed=8, two_opt=False)
    assert other[2]["mean"] != first[2]["mean"]


def test_the_history_tracks_the_best_so_far_and_the_mean():
    xy = torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * 100
    found, length, history = colony(PointSet(xy, 100, 100), two_opt=False, iterations=15)
    best = history["best"]
    assert all(later <= earlier for earlier, later in itertools.pairwise(best))
    assert all(b <= m + 1e-9 for b, m in zip(best, history["mean"], strict=True))
    assert best[-1] == pytest.approx(length) == pytest.approx(tsp.tour_length(xy, found.order))


def test_the_colony_is_as_good_as_nearest_neighbour_plus_two_opt():
    xy = np.random.default_rng(5).random((200, 2)) * 500
    reference = tsp.tour_length(xy, tsp.two_opt(xy, tsp.nearest_neighbour_tour(xy)))
    _, length, _ = colony(PointSet(torch.from_numpy(xy), 500, 500), iterations=25)
    assert length <= 1.05 * reference


def test_without_two_opt_the_colony_still_returns_a_whole_tour():
    xy = torch.rand(30, 2, generator=torch.Generator().manual_seed(2)) * 50
    found, length, _ = colony(PointSet(xy, 50, 50), two_opt=False, iterations=5)
    assert sorted(found.order.tolist()) == list(range(30))
    assert length == pytest.approx(tsp.tour_length(xy, found.order))


@pytest.mark.parametrize("n", [3, 4])
def test_tiny_point_sets_work(n: int):
    xy, _ = circle(n)
    found, length, _ = colony(PointSet(xy, 240, 220), iterations=3)
    assert sorted(found.order.tolist()) == list(range(n))
    assert length == pytest.approx(2 * n * 100.0 * math.sin(math.pi / n))


def test_repeated_points_do_not_stall_the_search():
    xy = torch.from_numpy(np.repeat(np.random.default_rng(0).random((10, 2)) * 10, 3, axis=0))
    found, length, _ = colony(PointSet(xy, 10, 10), iterations=5)
    assert sorted(found.order.tolist()) == list(range(30))
    assert length <= tsp.tour_length(xy, tsp.two_opt(xy, tsp.nearest_neighbour_tour(xy))) * 1.05
    same, _, _ = colony(PointSet(torch.ones(6, 2), 10, 10), iterations=2)
    assert same.length == 0.0


@pytest.mark.parametrize("n", [0, 2])
def test_fewer_than_three_points_is_an_error(n: int):
    with pytest.raises(NodeError, match=r"at least 3 points.*count"):
        colony(PointSet(torch.zeros(n, 2), 10, 10))


# -- the plain functions: nearest neighbour and 2-opt ----------------------------


def test_nearest_neighbour_follows_the_nearest_point():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
    assert tsp.nearest_neighbour_tour(xy).tolist() == [0, 2, 3, 4, 1]
    assert tsp.tour_length(xy, [0, 2, 3, 4, 1]) == pytest.approx(20.0)


@pytest.mark.parametrize("seed", range(4))
def test_two_opt_never_lengthens_and_reaches_a_two_opt_optimum(seed: int):
    rng = np.random.default_rng(seed)
    xy = rng.random((40, 2)) * 100
    start = rng.permutation(40)
    better = tsp.two_opt(xy, start)
    assert sorted(better.tolist()) == list(range(40))
    assert tsp.tour_length(xy, better) <= tsp.tour_length(xy, start) + 1e-9
    assert brute_force_two_opt_gain(xy, better) < 1e-9
    again = tsp.two_opt(xy, better)  # an optimum stays put
    assert tsp.tour_length(xy, again) == pytest.approx(tsp.tour_length(xy, better))


def test_two_opt_uncrosses_a_crossed_tour():
    xy = np.array([[0, 0], [4, 0], [8, 0], [8, 4], [4, 4], [0, 4]], dtype=float)  # a 8×4 rectangle's rim
    crossed = np.array([0, 1, 2, 4, 3, 5])  # 2 -> 4 and 3 -> 5 cross
    assert tsp.tour_length(xy, crossed) > 24.0
    fixed = tsp.two_opt(xy, crossed)
    assert tsp.tour_length(xy, fixed) == pytest.approx(24.0)


def test_two_opt_handles_large_tours_quickly():
    xy = np.random.default_rng(0).random((600, 2)) * 1000
    start = tsp.nearest_neighbour_tour(xy)
    better = tsp.two_opt(xy, start)
    assert tsp.tour_length(xy, better) < 0.95 * tsp.tour_length(xy, start)
    assert sorted(better.tolist()) == list(range(600))


# -- stippling -------------------------------------------------------------------


def half_dark(height: int = 16, width: int = 32, dark: float = 0.2, light: float = 0.8) -> torch.Tensor:
    """An RGB image whose left half is dark and right half light."""
    img = torch.full((1, 3, height, width), light)
    img[..., : width // 2] = dark
    return img


def left_share(points: PointSet) -> float:
    return float((points.points[:, 0] < points.width / 2).float().mean())


def test_stipple_puts_more_points_where_the_image_is_dark():
    points = stipple.stipple(make_ctx(), half_dark(), count=400, seed=0, invert=False, relax=0, gamma=1.0)
    assert len(points) == 400 and (points.width, points.height) == (32, 16)
    assert 0.72 < left_share(points) < 0.88  # darkness 0.8 against 0.2
    inverted = stipple.stipple(make_ctx(), half_dark(), count=400, seed=0, invert=True, relax=0, gamma=1.0)
    assert 0.12 < left_share(inverted) < 0.28
    relaxed = stipple.stipple(make_ctx(), half_dark(), count=400, seed=0, invert=False, relax=5, gamma=1.0)
    assert left_share(relaxed) > 0.6  # evened out (towards a sqrt(4:1) = 2:1 share) but still dark-heavy


def test_gamma_raises_the_contrast_of_the_stipple():
    points = stipple.stipple(make_ctx(), half_dark(), count=400, seed=0, invert=False, relax=0, gamma=2.0)
    assert 0.89 < left_share(points) < 0.98  # 0.8² against 0.2²: 16 to 1
    relaxed = stipple.stipple(make_ctx(), half_dark(), count=400, seed=0, invert=False, relax=5, gamma=2.0)
    assert left_share(relaxed) > 0.72  # relaxation keeps about the 4:1 share of gamma 1's draw


def test_stipple_points_stay_inside_the_image():
    points = stipple.stipple(make_ctx(), torch.rand(1, 1, 12, 20), count=200, seed=1, invert=False, relax=3)
    xy = points.points
    assert xy.dtype == torch.float32 and xy.shape == (200, 2)
    assert float(xy[:, 0].min()) >= 0 and float(xy[:, 0].max()) <= 20
    assert float(xy[:, 1].min()) >= 0 and float(xy[:, 1].max()) <= 12


def test_relax_keeps_the_count_and_spreads_the_points():
    image = torch.full((1, 3, 40, 40), 0.3)
    raw = stipple.stipple(make_ctx(), image, count=150, seed=2, invert=False, relax=0)
    relaxed = stipple.stipple(make_ctx(), image, count=150, seed=2, invert=False, relax=8)
    assert relaxed.points.shape == raw.points.shape
    assert not torch.allclose(relaxed.points, raw.points)

    def closest_gap(points: PointSet) -> float:
        return float(torch.cdist(points.points, points.points).fill_diagonal_(math.inf).min(1).values.min())

    assert closest_gap(relaxed) > 3 * closest_gap(raw)  # no more clumps


def test_stipple_is_seeded():
    image = torch.rand(1, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    a = stipple.stipple(make_ctx(), image, count=50, seed=4, invert=False, relax=2)
    b = stipple.stipple(make_ctx(), image, count=50, seed=4, invert=False, relax=2)
    c = stipple.stipple(make_ctx(), image, count=50, seed=5, invert=False, relax=2)
    assert torch.equal(a.points, b.points) and not torch.equal(a.points, c.points)


def test_stipple_reads_transparency_as_white_paper():
    image = torch.zeros(1, 4, 8, 16)  # black everywhere, but the right half fully transparent
    image[:, 3, :, :8] = 1.0
    points = stipple.stipple(make_ctx(), image, count=100, seed=0, invert=False, relax=0)
    assert left_share(points) == 1.0


def test_a_blank_image_is_an_error_that_says_what_to_do():
    with pytest.raises(NodeError, match=r"white everywhere.*invert: true"):
        stipple.stipple(make_ctx(), torch.ones(1, 3, 8, 8), count=10, seed=0, invert=False, relax=0)
    with pytest.raises(NodeError, match=r"black everywhere.*invert: false"):
        stipple.stipple(make_ctx(), torch.zeros(1, 3, 8, 8), count=10, seed=0, invert=True, relax=0)


# -- rendering -------------------------------------------------------------------


def square_tour() -> Tour:
    points = torch.tensor([[4.0, 4.0], [28.0, 4.0], [28.0, 12.0], [4.0, 12.0]])
    return Tour(points, torch.arange(4), 64.0, 32, 16)


def test_render_draws_the_closed_line_and_nothing_else():
    image = tour.render(make_ctx(), square_tour(), size=64, width=2.0, color="black", background="white")
    assert image.shape == (1, 3, 32, 64)  # the tour's 2:1 aspect
    gray = image[0].mean(0)
    for x, y in [(32, 8), (56, 16), (32, 24), (8, 16), (8, 8)]:  # along the edges (and a corner), ×2
        assert float(gray[y, x]) < 0.35, (x, y)
    for x, y in [(32, 16), (2, 2), (62, 30), (20, 14), (44, 18)]:  # inside the square and outside it
        assert float(gray[y, x]) > 0.95, (x, y)


def test_render_uses_the_colours():
    image = tour.render(make_ctx(), square_tour(), size=32, width=2.0, color="red", background="#0000ff")
    assert image[0, :, 8, 16].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=0.02)  # paper, inside
    line = image[0, :, 4, 16]  # on the top edge
    assert float(line[0]) > 0.6 and float(line[2]) < 0.4


def test_a_bad_colour_is_caught_before_running(tmp_path: Path):
    (tmp_path / "g.yaml").write_text(
        "artgraph: 1\nnodes:\n"
        "  pts: {type: points.stipple, inputs: {image: img}, params: {count: 10}}\n"
        "  img: {type: image.load, params: {path: p.png}}\n"
        "  tour: {type: evolve.ant_colony, inputs: {points: pts}}\n"
        "  draw: {type: tour.render, inputs: {tour: tour.tour}, params: {color: blak, background: paper}}\n"
    )
    PILImage.new("RGB", (8, 8)).save(tmp_path / "p.png")
    with pytest.raises(GraphError) as info:
        load_graph(tmp_path / "g.yaml")
    messages = [p.message for p in info.value.problems]
    assert any("param 'color': 'blak' is not a colour" in m for m in messages), messages
    assert any("param 'background': 'paper' is not a colour" in m for m in messages), messages


# -- types and saving ------------------------------------------------------------


def test_port_types_check_values():
    points = PointSet(torch.zeros(5, 2), 10, 10)
    assert tour.Points.check_value(points) is None
    assert "PointSet" in tour.Points.check_value(torch.zeros(5, 2))
    assert "[N,2]" in tour.Points.check_value(PointSet(torch.zeros(5, 3), 10, 10))
    assert "width" in tour.Points.check_value(PointSet(torch.zeros(5, 2), 0, 10))
    good = Tour(torch.zeros(5, 2), torch.arange(5), 0.0, 10, 10)
    assert tour.TourT.check_value(good) is None
    assert "order" in tour.TourT.check_value(Tour(torch.zeros(5, 2), torch.arange(4), 0.0, 10, 10))
    assert "Tour" in tour.TourT.check_value(points)


def test_data_save_writes_points_and_tours_as_json(tmp_path: Path):
    points = PointSet(torch.tensor([[1.5, 2.0], [3.0, 4.25], [5.0, 0.5]]), 8, 6)
    data.save(points, str(tmp_path / "points.json"))
    assert json.loads((tmp_path / "points.json").read_text()) == {
        "points": [[1.5, 2.0], [3.0, 4.25], [5.0, 0.5]],
        "width": 8,
        "height": 6,
    }
    found = Tour(points.points, torch.tensor([0, 2, 1]), 9.75, 8, 6)
    data.save(found, str(tmp_path / "tour.json"))
    assert json.loads((tmp_path / "tour.json").read_text()) == {
        "points": [[1.5, 2.0], [3.0, 4.25], [5.0, 0.5]],
        "order": [0, 2, 1],
        "length": 9.75,
        "width": 8,
        "height": 6,
    }


# -- a whole graph ---------------------------------------------------------------


def test_a_single_line_drawing_graph_runs(tmp_path: Path):
    yy, xx = torch.meshgrid(torch.arange(24), torch.arange(32), indexing="ij")
    disc = ((xx - 16) ** 2 + (yy - 12) ** 2).float().sqrt().div(12).clamp(0, 1)
    PILImage.fromarray((disc.numpy() * 255).astype(np.uint8), mode="L").save(tmp_path / "disc.png")
    spec = {
        "artgraph": 1,
        "nodes": {
            "img": {"type": "image.load", "params": {"path": "disc.png"}},
            "dots": {"type": "points.stipple", "inputs": {"image": "img"}, "params": {"count": 60, "relax": 3}},
            "ants": {"type": "evolve.ant_colony", "inputs": {"points": "dots"}, "params": {"iterations": 5}},
            "draw": {"type": "tour.render", "inputs": {"tour": "ants.tour"}, "params": {"size": 64}},
            "png": {"type": "image.save", "inputs": {"image": "draw"}, "params": {"path": "line.png"}},
            "json": {"type": "data.save", "inputs": {"value": "ants.tour"}, "params": {"path": "tour.json"}},
            "hist": {"type": "data.save", "inputs": {"value": "ants.history"}, "params": {"path": "history.json"}},
        },
    }
    result = load_graph(spec, base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path / "out")
    with PILImage.open(result["png.paths"][0]) as img:
        assert img.size == (64, 48)
    saved = json.loads(Path(result["json.path"]).read_text())
    assert len(saved["order"]) == len(saved["points"]) == 60
    assert saved["length"] == pytest.approx(tsp.tour_length(saved["points"], saved["order"]))
    assert len(json.loads(Path(result["hist.path"]).read_text())["best"]) == 5


def test_a_bad_colour_in_a_graph_is_a_validation_error(tmp_path: Path):
    spec = {
        "artgraph": 1,
        "nodes": {
            "img": {"type": "image.load", "params": {"path": "x.png"}},
            "dots": {"type": "points.stipple", "inputs": {"image": "img"}},
            "ants": {"type": "evolve.ant_colony", "inputs": {"points": "dots"}},
            "draw": {"type": "tour.render", "inputs": {"tour": "ants.tour"}, "params": {"color": "blak"}},
        },
    }
    PILImage.new("L", (4, 4)).save(tmp_path / "x.png")
    with pytest.raises(GraphError) as info:
        load_graph(spec, base_dir=tmp_path)
    assert any("'blak' is not a colour" in p.message for p in info.value.problems)
