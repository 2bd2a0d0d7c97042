"""optimize.shapes: the soft renderer of every genome, and the gradient polish through it."""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch

from artgraph import FunctionObjective, NodeError
from artgraph.nodes.search import genomes
from artgraph.nodes.search.genomes import _pixel_centres
from artgraph.nodes.search.greedy import greedy
from artgraph.nodes.search.polish import shapes
from artgraph.nodes.search.soft_render import SOFT_END, SOFT_START, soft_render, softness
from artgraph.nodes.style import objectives
from tests.conftest import make_ctx
from tests.conftest import paint_target as target
from tests.conftest import seeded as gen
from tests.conftest import small_genomes as every_genome


def polish(seed: int = 0, **params):
    genome = params.pop("genome", None) or genomes.triangles(6, 0.8, "white", "auto")
    objective = params.pop("objective", None) or objectives.objective_pixel(target(), "mse", 1.0)
    settings = {"steps": 40, "lr": 0.01, "size": 16, **params}
    return shapes(make_ctx(seed=seed), genome, objective, **settings)


# -- the soft renderer -----------------------------------------------------------------------


@pytest.mark.parametrize("genome", every_genome(30), ids=lambda g: g.kind)
def test_the_signed_distance_has_the_coverages_sign(genome):
    params = genome.random(4, gen(1)).view(4, genome.count, genome.genes)
    xs, ys = _pixel_centres(20, 28, torch.device("cpu"))
    hard = genome._coverage(params[..., :-4], xs, ys, 20, 28)
    distance = genome.signed_distance(params[..., :-4], xs, ys, 20, 28)
    assert 0.01 < hard.mean() < 0.99
    assert torch.equal((distance >= 0).float(), hard)


@pytest.mark.parametrize("genome", every_genome(30), ids=lambda g: g.kind)
def test_the_soft_picture_becomes_the_hard_one_as_edges_sharpen(genome):
    params = genome.random(3, gen(2))
    hard = genome.render(params, (24, 32), renderer="torch")
    gaps = [float((soft_render(genome, params, (24, 32), s) - hard).abs().mean()) for s in (2.0, SOFT_START, 0.2)]
    end = float((soft_render(genome, params, (24, 32), SOFT_END) - hard).abs().mean())
    assert gaps[0] > gaps[1] > gaps[2] > end  # sharper edges, closer pictures
    assert end < 0.01  # at the end of a polish: under 1 % of the range, on average
    # Far sharper still, only pixel centres within rounding of an outline may differ.
    assert float(((soft_render(genome, params, (24, 32), 1e-4) - hard).abs() > 0.01).float().mean()) < 0.002


def test_softness_falls_from_the_start_to_the_end():
    values = [softness(step, 50) for step in range(50)]
    assert values[0] == pytest.approx(SOFT_START) and values[-1] == pytest.approx(SOFT_END)
    assert all(a > b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("genome", every_genome(3), ids=lambda g: g.kind)
def test_every_gene_of_every_shape_gets_a_gradient(genome):
    params = genome.random(1, gen(3)).view(genome.count, genome.genes)
    params[:, :2] = torch.tensor([[0.3, 0.3], [0.6, 0.4], [0.45, 0.7]]) if genome.kind != "triangle" else params[:, :2]
    params[:, -1] = 0.6  # every shape visible, none hiding the others
    params = params.reshape(1, -1).requires_grad_(True)
    picture = soft_render(genome, params, (24, 24), 1.5)
    ((picture - target(24)) ** 2).mean().backward()
    assert params.grad is not None
    dead = (params.grad.view(genome.count, genome.genes) == 0).nonzero().tolist()
    assert not dead, f"no gradient for (shape, gene) {dead} of {genome.gene_names}"


# -- the polish ----------------------------------------------------------------------------


@pytest.mark.parametrize("genome", every_genome(6), ids=lambda g: g.kind)
def test_polish_lowers_the_pixel_error_of_a_greedy_start(genome):
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    _, start, _ = greedy(make_ctx(), genome, objective, candidates=8, climb=16, batch=8, size=16)
    before = float(objective(genome.render(start.unsqueeze(0), (16, 16), renderer="torch"))[0])
    image, best, history = polish(genome=genome, objective=objective, init=start, steps=60)
    after = float(objective(image)[0])
    assert after < 0.9 * before, (before, after)
    assert history["best"][0] == pytest.approx(before) and history["best"][-1] == pytest.approx(after)
    assert all(a >= b for a, b in zip(history["best"], history["best"][1:], strict=False))
    assert torch.equal(image, genome.render(best.unsqueeze(0), (16, 16), renderer="torch"))
    assert best.min() >= 0 and best.max() <= 1


def test_polish_from_random_shapes_is_seeded_and_reproducible():
    first = polish(seed=5, steps=10)
    again = polish(seed=5, steps=10)
    other = polish(seed=6, steps=10)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert first[2] == again[2]
    assert not torch.equal(first[1], other[1])


def test_polish_renders_the_output_size_and_keeps_a_start_it_cannot_better():
    genome = genomes.triangles(4, 0.8, "white", "auto")
    start = genome.random(1, gen(4))[0]
    image, best, history = polish(genome=genome, init=start, steps=0, output_size=40)
    assert image.shape == (1, 3, 40, 40) and torch.equal(best, start)
    assert history["step"] == [0]


def test_an_init_from_another_genome_is_refused_naming_both():
    seventy = genomes.triangles(70, 0.5, "white", "auto").random(1, gen())[0]  # 700 numbers
    with pytest.raises(NodeError) as info:
        polish(genome=genomes.triangles(50, 0.5, "white", "auto"), init=seventy)
    message = str(info.value)
    assert "70 triangles or 100 circles" in message and "50 triangles" in message
    with pytest.raises(NodeError, match=r"18 strokes.*6 triangles"):
        polish(init=torch.rand(162))  # 18 strokes for a genome of 6 triangles
    with pytest.raises(NodeError, match=r"outside \[0, 1\]"):
        polish(init=torch.full((60,), 2.0))


def test_a_non_differentiable_objective_is_refused_with_the_searches_suggested():
    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    detached = FunctionObjective("ranked", lambda images: pixel(images).detach())
    with pytest.raises(NodeError, match=r"'ranked' is not differentiable.*evolve\.greedy"):
        polish(objective=detached)
    declared = FunctionObjective("count", lambda images: pixel(images))
    declared.differentiable = False  # type: ignore[attr-defined]
    with pytest.raises(NodeError, match=r"says it is not differentiable \(count\).*evolve\.genetic"):
        polish(objective=pixel + declared)


def test_nan_losses_are_skipped_and_reported(caplog):
    pixel = objectives.objective_pixel(target(), "mse", 1.0)

    def nan_when_soft(images: torch.Tensor) -> torch.Tensor:
        return pixel(images) * (math.nan if images.requires_grad else 1.0)

    start = genomes.triangles(6, 0.8, "white", "auto").random(1, gen(7))[0]
    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        _, best, history = polish(objective=FunctionObjective("odd", nan_when_soft), init=start, steps=5)
    assert torch.equal(best, start)  # no step was taken
    assert all(math.isfinite(v) for v in history["best"])
    assert "5 of 5 steps gave a NaN or infinite loss" in caplog.text
    with pytest.raises(NodeError, match="NaN or infinity for the starting picture"):
        polish(objective=FunctionObjective("nan", lambda x: x.sum((1, 2, 3)) * math.nan))


def test_nan_scores_of_the_hard_picture_count_as_the_worst(caplog):
    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    calls = {"n": 0}

    def nan_after_the_start(images: torch.Tensor) -> torch.Tensor:
        if not images.requires_grad:
            calls["n"] += 1
            if calls["n"] > 1:
                return pixel(images) * math.nan
        return pixel(images)

    start = genomes.triangles(6, 0.8, "white", "auto").random(1, gen(8))[0]
    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        _, best, history = polish(objective=FunctionObjective("odd", nan_after_the_start), init=start, steps=4)
    assert torch.equal(best, start) and math.isinf(history["score"][-1])
    assert "scored NaN or infinity and counted as the worst" in caplog.text
