"""evolve.greedy (one shape at a time, as primitive paints) and its colour solver."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import Cancelled, Context, FunctionObjective, NodeError, load_graph
from artgraph.nodes.search import Scorer, genetic, genomes
from artgraph.nodes.search.colour_fit import ColourFit, PixelDelta, weighted_median
from artgraph.nodes.search.genomes import blend
from artgraph.nodes.search.greedy import OPACITY_LEVELS, Painter, greedy, mutate_shape, partners
from artgraph.nodes.style import objectives
from artgraph.progress import SilentProgress
from tests.conftest import make_ctx
from tests.conftest import paint_target as target
from tests.conftest import seeded as gen
from tests.conftest import small_genomes as every_genome

CPU = torch.device("cpu")


def paint(seed: int = 0, ctx: Context | None = None, **params):
    genome = params.pop("genome", None) or genomes.triangles(6, 0.8, "white", "auto")
    objective = params.pop("objective", None) or objectives.objective_pixel(target(), "mse", 1.0)
    settings = {"candidates": 8, "climb": 16, "batch": 8, "size": 16, **params}
    return greedy(ctx or make_ctx(seed=seed), genome, objective, **settings)


# -- the closed-form colour -------------------------------------------------------------------


def _a_triangle_over_a_canvas(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    canvas = torch.rand(1, 3, size, size, generator=gen(1))
    shape = torch.tensor([[0.05, 0.1, 0.95, 0.3, 0.4, 0.95, 0.0, 0.0, 0.0, 1.0]])
    cover = genomes.triangles(1, 1.0, "white", "torch").shape_coverage(shape, (size, size))
    assert 10 < cover.sum() < size * size  # covers some pixels, not all
    return canvas, cover


@pytest.mark.parametrize(("metric", "resolution"), [("mse", 0), ("l1", 0), ("mse", 4), ("l1", 4)])
def test_the_solved_colour_is_what_a_brute_force_search_finds(metric, resolution):
    canvas, cover = _a_triangle_over_a_canvas()
    goal = torch.rand(1, 3, 8, 8, generator=gen(2))
    objective = objectives.objective_pixel(goal, metric, 1.0, resolution=resolution)
    alpha = torch.tensor([0.7])
    fit = ColourFit.of(objective, (8, 8), CPU)
    assert fit is not None
    solved = fit.solve(canvas, cover, alpha, torch.full((1, 3), 0.5))

    def score(colours: torch.Tensor) -> torch.Tensor:
        n = len(colours)
        return objective(blend(canvas, cover.expand(n, -1, -1), alpha.expand(n), colours))

    grid = torch.linspace(0, 1, 21)
    colours = torch.tensor(list(itertools.product(grid, grid, grid)))
    brute = score(colours)
    best = int(torch.argmin(brute))
    assert score(solved).item() <= brute[best].item() + 1e-7
    assert torch.allclose(solved[0], colours[best], atol=0.05 + 1e-6)
    # No nudge of one channel does better: the solution is the optimum, not just near the grid's.
    nudges = (solved + 0.01 * torch.eye(3).repeat(2, 1) * torch.tensor([[1.0]] * 3 + [[-1.0]] * 3)).clamp(0, 1)
    assert (score(nudges) >= score(solved).item() - 1e-7).all()


def test_a_colour_beyond_the_range_is_clamped_and_still_the_best():
    canvas, cover = torch.zeros(1, 3, 8, 8), torch.ones(1, 8, 8)
    objective = objectives.objective_pixel(torch.ones(1, 3, 8, 8), "mse", 1.0)
    fit = ColourFit.of(objective, (8, 8), CPU)
    assert fit is not None
    # From black to white at opacity 0.5 would need a colour of 2: white is the best there is.
    assert fit.solve(canvas, cover, torch.tensor([0.5]), torch.zeros(1, 3)).tolist() == [[1.0, 1.0, 1.0]]


def test_the_weighted_median_minimises_the_weighted_absolute_error():
    values = torch.tensor([[3.0, 1.0, 2.0, 10.0]])
    assert weighted_median(values, torch.tensor([[1.0, 1.0, 1.0, 1.0]])).item() in (2.0, 3.0)
    assert weighted_median(values, torch.tensor([[0.0, 1.0, 0.0, 5.0]])).item() == 10.0


def test_closed_form_scores_are_the_objectives_and_pick_the_best_opacity():
    genome = genomes.triangles(1, 0.6, "white", "torch")
    canvas, goal = torch.rand(1, 3, 12, 12, generator=gen(3)), torch.rand(1, 3, 12, 12, generator=gen(4))
    objective = objectives.objective_pixel(goal, "mse", 2.0)
    delta = PixelDelta.of(objective, (12, 12), CPU)
    assert delta is not None
    delta.set_canvas(canvas)
    shapes = torch.rand(10, genome.genes, generator=gen(5))
    shapes[0, :6] = torch.tensor([0.0, 0.0, 0.0, 0.01, 0.01, 0.0])  # covers no pixel centre
    cover = genome.shape_coverage(shapes, (12, 12))
    levels = torch.tensor(OPACITY_LEVELS) * 0.6
    colour, pick, scores = delta.solve(cover, levels.expand(10, -1), shapes[:, 6:9])
    drawn = objective(blend(canvas, cover, levels[pick], colour))
    assert torch.allclose(scores, drawn.double(), rtol=1e-5)
    for level in levels:  # the chosen opacity is the best of the levels
        fit = ColourFit.of(objective, (12, 12), CPU)
        assert fit is not None
        other = fit.solve(canvas, cover, level.expand(10), shapes[:, 6:9])
        assert (objective(blend(canvas, cover, level.expand(10), other)) >= drawn - 1e-6).all()
    assert colour[0].tolist() == shapes[0, 6:9].tolist()  # draws nothing: its own colour is kept
    # Only a plain pixel objective at full resolution has scores in closed form.
    assert PixelDelta.of(objectives.objective_pixel(goal, "l1", 1.0), (12, 12), CPU) is None
    assert PixelDelta.of(objectives.objective_pixel(goal, "mse", 1.0, resolution=6), (12, 12), CPU) is None
    assert PixelDelta.of(objective + objective, (12, 12), CPU) is None
    assert ColourFit.of(FunctionObjective("f", lambda x: x.mean((1, 2, 3))), (12, 12), CPU) is None


# -- mutation -----------------------------------------------------------------------------


def test_a_mutation_moves_one_gene_or_a_point():
    genome = genomes.triangles(1, 0.5, "white", "auto")
    shape = torch.full((genome.genes,), 0.5)
    which = torch.tensor([0, 3, 6, 9])
    moved = mutate_shape(shape, which, torch.full((4, 2), 0.1), partners(genome)) != 0.5
    assert moved.nonzero().tolist() == [[0, 0], [0, 1], [1, 2], [1, 3], [2, 6], [3, 9]]  # corners move as pairs


def test_new_shapes_go_where_the_picture_is_wrong():
    genome = genomes.triangles(1, 0.5, "white", "auto")
    goal = torch.ones(1, 3, 16, 16)
    goal[..., 8:, :8] = 0.0  # only the lower-left quarter differs from the white background
    pixel = objectives.objective_pixel(goal, "mse", 1.0)
    painter = Painter(genome, Scorer(genome, pixel, (16, 16), CPU), pixel)
    corners = painter.random_shapes(200, gen())[:, :6]
    x, y = corners[:, 0::2], corners[:, 1::2]
    assert ((x < 0.5) & (y >= 0.5)).all()
    # Without an error map (any objective but the plain pixel one) shapes are uniformly random.
    anything = FunctionObjective("f", lambda images: images.mean((1, 2, 3)))
    painter = Painter(genome, Scorer(genome, anything, (16, 16), CPU), anything)
    x = painter.random_shapes(200, gen())[:, 0:6:2]
    assert 0.3 < (x < 0.5).float().mean() < 0.7


# -- the node -----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(3))
def test_each_shape_placed_never_makes_the_picture_worse(index):
    genome = every_genome()[index]
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    image, best, history = paint(genome=genome)
    assert history["step"] == list(range(7))
    assert all(b <= a for a, b in itertools.pairwise(history["best"]))
    assert history["best"][-1] < 0.7 * history["best"][0]
    assert objective(image).item() == pytest.approx(history["best"][-1], rel=1e-6)
    # `best` is a genome like the other searches': the torch renderer draws exactly `image`.
    assert best.shape == (genome.dims,)
    assert torch.equal(genome.render(best.unsqueeze(0), (16, 16), renderer="torch"), image)


@pytest.mark.parametrize(
    "objective",
    [
        objectives.objective_pixel(target(), "l1", 1.0),  # colours solved, scored by the objective
        objectives.objective_pixel(target(), "mse", 1.0, resolution=8),
        FunctionObjective("far", lambda x: ((x - target()) ** 2).mean((1, 2, 3))),  # colours searched
    ],
)
def test_other_objectives_paint_too(objective):
    image, _, history = paint(objective=objective, genome=genomes.circles(5, 0.8, "black", "auto", 0.4))
    assert all(b <= a for a, b in itertools.pairwise(history["best"]))
    assert history["best"][-1] < 0.7 * history["best"][0]
    assert objective(image).item() == pytest.approx(history["best"][-1], rel=1e-6)


def test_a_shape_that_cannot_help_stays_transparent():
    white = objectives.objective_pixel(torch.ones(1, 3, 16, 16), "mse", 1.0)
    image, best, history = paint(objective=white)
    assert history["best"] == [0.0] * 7
    assert (best.view(6, 10)[:, -1] == 0).all()
    assert torch.equal(image, torch.ones(1, 3, 16, 16))


def test_the_same_seed_paints_the_same_picture():
    assert torch.equal(paint(3)[1], paint(3)[1])
    assert not torch.equal(paint(3)[1], paint(4)[1])


def test_candidates_are_scored_in_batches_and_climb_0_means_no_climbing():
    sizes: list[int] = []
    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    counting = FunctionObjective("pixel", lambda x: sizes.append(len(x)) or pixel(x))
    _, _, history = paint(objective=counting, candidates=5, climb=0)
    assert set(sizes) == {5, 1}  # batches of candidates; single pictures judged; no climbing
    assert sizes.count(5) == 6
    assert history["best"][-1] < history["best"][0]
    sizes.clear()
    paint(objective=counting, candidates=5, climb=20, batch=8)  # climbing: rounds of 8, 8 and 4, one call each
    assert sizes.count(5) == 6 and sizes.count(8) == 12 and sizes.count(4) == 6


def test_greedy_checkpoint_resume_continues_identically(tmp_path):
    checkpoint = str(tmp_path / "greedy.safetensors")
    _, best_whole, history_whole = paint()
    bars: list[SilentProgress] = []

    def progress(total, desc):
        bars.append(SilentProgress(total, desc))
        return bars[-1]

    stopping = Context("n", "evolve.greedy", seed=0, progress=progress, cancelled=lambda: bars[-1].n >= 4)
    with pytest.raises(Cancelled):  # interrupted after the fourth shape; the last checkpoint is at the third
        paint(ctx=stopping, checkpoint=checkpoint, checkpoint_every=3)
    _, best, history = paint(resume=checkpoint)
    assert torch.equal(best, best_whole)
    assert history == history_whole
    with pytest.raises(NodeError, match=r"checkpoint of evolve\.greedy, not of evolve\.genetic"):
        genetic(
            make_ctx(),
            genomes.triangles(6, 0.8, "white", "auto"),
            objectives.objective_pixel(target(), "mse", 1.0),
            population=4,
            elite=1,
            size=16,
            resume=checkpoint,
        )
    with pytest.raises(NodeError, match="another genome"):
        paint(resume=checkpoint, genome=genomes.triangles(7, 0.8, "white", "auto"))


def test_nan_scores_count_as_the_worst_and_are_reported(caplog):
    pixel = objectives.objective_pixel(target(), "mse", 1.0)

    def half_nan(images: torch.Tensor) -> torch.Tensor:
        scores = pixel(images)
        return torch.where(images[:, 0].mean((1, 2)) < 0.9, math.nan, scores)  # less red than 0.9: NaN

    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        _, _, history = paint(objective=FunctionObjective("odd", half_nan))  # on white
    assert all(math.isfinite(v) for v in history["best"])
    assert "scored NaN or infinity and counted as the worst" in caplog.text
    with pytest.raises(NodeError, match="NaN or infinity for the background and every candidate"):
        paint(objective=FunctionObjective("nan", lambda x: x.sum((1, 2, 3)) * math.nan))


def test_the_render_follows_the_target_aspect_and_output_size():
    wide = objectives.objective_pixel(torch.rand(1, 3, 10, 20), "mse", 1.0)
    image, _, _ = paint(objective=wide, size=16, output_size=40)
    assert image.shape == (1, 3, 20, 40)


# -- in graphs --------------------------------------------------------------------------------


def _graph(tmp_path: Path, **greedy_params) -> dict:
    PILImage.new("RGB", (24, 16), (200, 40, 40)).save(tmp_path / "target.png")
    return {
        "artgraph": 1,
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "target.png"}},
            "shapes": {"type": "genome.triangles", "params": {"count": 4}},
            "score": {"type": "objective.pixel", "inputs": {"target": "photo"}},
            "search": {
                "type": "evolve.greedy",
                "inputs": {"genome": "shapes", "objective": "score"},
                "params": {"candidates": 4, "climb": 4, "size": 12, **greedy_params},
            },
            "curve": {"type": "history.plot", "inputs": {"history": "search.history"}},
            "save": {"type": "image.save", "inputs": {"image": "search.image"}, "params": {"path": "best.png"}},
        },
    }


def test_greedy_runs_in_a_graph_where_a_genetic_search_did(tmp_path):
    result = load_graph(_graph(tmp_path), base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path)
    (written,) = result.outputs["save.paths"]
    with PILImage.open(written) as saved:
        assert saved.size == (12, 8)  # the target's 3:2 aspect at long side 12


@pytest.mark.parametrize(
    ("params", "message"),
    [({"candidates": 0}, "candidates"), ({"batch": 0}, "batch"), ({"climb": -1}, "climb"), ({"size": 4}, "size")],
)
def test_bad_settings_are_validation_errors(tmp_path, params, message):
    with pytest.raises(artgraph.GraphError) as info:
        load_graph(_graph(tmp_path, **params), base_dir=tmp_path)
    assert any(message in p.message or message == p.node for p in info.value.problems), info.value.problems


def test_zero_shapes_is_refused(tmp_path):
    spec = _graph(tmp_path)
    spec["nodes"]["shapes"]["params"]["count"] = 0
    with pytest.raises(artgraph.GraphError, match="count"):
        load_graph(spec, base_dir=tmp_path)
    with pytest.raises(NodeError, match="at least one triangle"):
        genomes.triangles(0, 0.5, "white", "auto")


def test_moves_take_turns_at_four_sizes_and_shrink_over_the_climb():
    from artgraph.nodes.search.greedy import CLIMB_DECAY, move_scales

    scales = move_scales(9, 0.4)
    envelope = 0.4 * CLIMB_DECAY ** (torch.arange(9) / 8)  # from sigma down to CLIMB_DECAY of it
    turns = torch.tensor([1.0, 0.5, 0.25, 0.125, 1.0, 0.5, 0.25, 0.125, 1.0])
    assert torch.allclose(scales, envelope * turns)
    assert float(scales[0]) == pytest.approx(0.4) and float(scales[-1]) == pytest.approx(0.4 * CLIMB_DECAY)
    tops = scales[::4]  # the largest move of each turn shrinks
    assert torch.all(tops[1:] < tops[:-1])
    assert move_scales(1, 0.4).tolist() == pytest.approx([0.4])  # a single move: no shrinking
