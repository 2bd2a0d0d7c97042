"""Genomes, their renderers and operators, and the genetic and annealing searches."""

from __future__ import annotations

import itertools
import json
import logging
import math
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import FunctionObjective, NodeError, load_graph
from artgraph.nodes import search as evolve
from artgraph.nodes._tensorfile import write_safetensors
from artgraph.nodes.search import genetic_algorithm, genomes
from artgraph.nodes.style import objectives
from artgraph.progress import ProgressBase
from tests.conftest import make_ctx
from tests.conftest import paint_target as target
from tests.conftest import seeded as gen

RENDERERS = ("pil", "torch")


def every_genome(renderer: str = "auto") -> list[genomes.Genome]:
    return [
        genomes.triangles(20, 0.6, "white", renderer),
        genomes.circles(20, 0.6, "black", renderer, 0.3),
        genomes.strokes(30, 0.8, "#808080", renderer, 0.4, 0.1),
    ]


# -- renderers ------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", RENDERERS)
def test_one_opaque_triangle_covers_what_it_should(renderer):
    genome = genomes.triangles(1, 1.0, "white", renderer)
    # Corners (2, 2), (14, 2), (2, 14) on a 16 px square: the lower-left half, red.
    params = torch.tensor([[2 / 16, 2 / 16, 14 / 16, 2 / 16, 2 / 16, 14 / 16, 1.0, 0.0, 0.0, 1.0]])
    image = genome.render(params, (16, 16))[0]
    assert image.shape == (3, 16, 16)
    assert image[:, 4, 4].tolist() == pytest.approx([1.0, 0.0, 0.0])  # well inside
    assert image[:, 13, 13].tolist() == pytest.approx([1.0, 1.0, 1.0])  # beyond the hypotenuse
    assert image[:, 0, 8].tolist() == pytest.approx([1.0, 1.0, 1.0])  # above the top edge
    red = (image[1] < 0.5).float().sum()
    assert 60 <= red <= 95  # about half of 12×12 px


@pytest.mark.parametrize("renderer", RENDERERS)
def test_later_shapes_are_composited_on_top(renderer):
    genome = genomes.circles(2, 0.5, "black", renderer, 1.0)
    red_then_blue = torch.tensor([[0.5, 0.5, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 0.0, 1.0, 1.0]])
    blue_then_red = red_then_blue.view(1, 2, 7).flip(1).reshape(1, 14)
    first, second = genome.render(torch.cat([red_then_blue, blue_then_red]), (8, 8))[:, :, 4, 4]
    # black -> half red -> half blue on top: (0.25, 0, 0.5); and the other way round.
    assert first.tolist() == pytest.approx([0.25, 0.0, 0.5], abs=0.01)
    assert second.tolist() == pytest.approx([0.5, 0.0, 0.25], abs=0.01)


@pytest.mark.parametrize("index", range(3))
def test_both_renderers_draw_the_same_pictures(index):
    pil, dense = every_genome("pil")[index], every_genome("torch")[index]
    params = pil.random(6, gen(index))
    a, b = pil.render(params, (32, 24)), dense.render(params, (32, 24))
    assert a.shape == b.shape == (6, 3, 32, 24)
    difference = (a - b).abs()
    assert difference.mean() < 0.05  # they differ along edges only (Pillow fills the pixels an edge touches)
    assert (difference > 0.25).float().mean() < 0.06


def test_stroke_angle_and_circle_radius_mean_what_they_say():
    strokes = genomes.strokes(1, 1.0, "white", "torch", 0.8, 0.1)
    flat = strokes.render(torch.tensor([[0.5, 0.5, 1.0, 0.0, 0.5, 0, 0, 0, 1.0]]), (32, 32))[0, 0] < 0.5
    upright = strokes.render(torch.tensor([[0.5, 0.5, 1.0, 0.5, 0.5, 0, 0, 0, 1.0]]), (32, 32))[0, 0] < 0.5
    assert flat.any(0).sum() > 3 * flat.any(1).sum()  # wide: angle 0 is horizontal
    assert upright.any(1).sum() > 3 * upright.any(0).sum()  # angle 0.5 is a quarter turn
    circles = genomes.circles(1, 1.0, "white", "torch", 0.25)
    disc = circles.render(torch.tensor([[0.5, 0.5, 1.0, 0, 0, 0, 1.0]]), (40, 40))[0, 0] < 0.5
    assert disc.sum() == pytest.approx(math.pi * 10.5**2, rel=0.1)  # radius 0.5 + 0.25 × 40 px


def test_transparent_shapes_leave_the_background():
    for genome in every_genome("pil") + every_genome("torch"):
        params = genome.random(2, gen()).view(2, genome.count, genome.genes)
        params[..., -1] = 0.0
        image = genome.render(params.view(2, -1), (8, 8))
        assert torch.allclose(image, torch.tensor(genome.background).view(1, 3, 1, 1).expand_as(image), atol=1e-6)


def test_render_refuses_the_wrong_number_of_genes():
    genome = genomes.triangles(3, 0.5, "white", "auto")
    with pytest.raises(NodeError, match=r"shape \[P, 30\]"):
        genome.render(torch.rand(2, 29), (8, 8))


def test_bad_colours_are_errors():
    with pytest.raises(NodeError, match="not a colour"):
        genomes.triangles(3, 0.5, "blurple", "auto")


# -- operators ------------------------------------------------------------------------


def test_uniform_and_one_point_crossover_swap_whole_shapes():
    genome = genomes.triangles(40, 0.5, "white", "auto")
    a, b = torch.zeros(50, genome.dims), torch.ones(50, genome.dims)
    for method in ("uniform", "one_point"):
        child = genome.crossover(a, b, method, gen()).view(50, 40, 10)
        per_shape = child.mean(-1)
        assert ((per_shape == 0) | (per_shape == 1)).all(), "a shape was cut in two"
        share = per_shape.mean().item()
        assert 0.3 < share < 0.7, "genes should come from both parents"
        if method == "one_point":
            # a prefix of shapes from the first parent, the rest from the second
            assert (per_shape[:, 1:] >= per_shape[:, :-1]).all()


def test_blend_crossover_stays_near_the_parents():
    genome = genomes.triangles(10, 0.5, "white", "auto")
    a, b = torch.full((200, genome.dims), 0.4), torch.full((200, genome.dims), 0.6)
    child = genome.crossover(a, b, "blend", gen())
    assert child.min() >= 0.3 - 1e-6 and child.max() <= 0.7 + 1e-6  # BLX-0.5
    assert child.std() > 0.05


def test_mutation_rate_is_respected_and_genes_stay_in_range():
    genome = genomes.triangles(50, 0.5, "white", "auto")
    params = genome.random(200, gen())
    for rate in (0.0, 0.05, 0.3):
        mutated = genome.mutate(params, rate, 0.5, gen(1))
        changed = (mutated != params).float().mean().item()
        assert changed == pytest.approx(rate, abs=0.01)
        assert mutated.min() >= 0.0 and mutated.max() <= 1.0


def test_perturb_moves_exactly_one_shape():
    genome = genomes.circles(10, 0.5, "white", "auto", 0.3)
    params = torch.full((30, genome.dims), 0.5)
    moved = genome.perturb(params, 0.1, gen()).view(30, 10, 7)
    shapes_changed = (moved != 0.5).any(-1).sum(-1)
    assert (shapes_changed == 1).all()


def test_bigger_tournaments_select_better_individuals():
    scores = torch.arange(100, dtype=torch.float64)
    means = [evolve.tournament(scores, 5000, k, gen()).double().mean().item() for k in (1, 2, 5)]
    assert means[0] == pytest.approx(49.5, abs=2.5)  # size 1: no pressure
    assert means[0] > means[1] > means[2]
    assert means[2] < 20


def test_elites_survive_unchanged():
    genome = genomes.triangles(5, 0.5, "white", "auto")
    population = genome.random(10, gen())
    scores = torch.arange(10, 0, -1, dtype=torch.float64)
    settings = evolve.GeneticSettings(3, "uniform", 0.5, 0.5, 0.2, 3)
    elite, children = evolve.next_generation(genome, population, scores, settings, gen())
    assert elite.tolist() == [9, 8, 7]
    assert children.shape == (7, genome.dims)


# -- scoring --------------------------------------------------------------------------


def test_a_population_is_scored_in_one_call_and_equals_one_by_one():
    genome = genomes.triangles(10, 0.5, "white", "auto")
    calls = []
    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    counting = FunctionObjective("pixel", lambda x: calls.append(len(x)) or pixel(x))
    scorer = evolve.Scorer(genome, counting, (16, 16), torch.device("cpu"))
    population = genome.random(12, gen())
    together = scorer(population)
    assert calls == [12]
    alone = torch.cat([scorer(population[i : i + 1]) for i in range(12)])
    assert torch.allclose(together, alone)
    assert scorer.evaluations == 24


def test_nan_scores_count_as_the_worst_and_are_reported(caplog):
    genome = genomes.triangles(4, 0.5, "white", "auto")

    def half_nan(images: torch.Tensor) -> torch.Tensor:
        scores = images.mean(dim=(1, 2, 3))
        scores[::2] = float("nan")
        return scores

    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        _, _, history = evolve.genetic(
            make_ctx(), genome, FunctionObjective("odd", half_nan), population=8, generations=3, size=8
        )
    assert all(math.isfinite(v) for v in history["best"])
    assert "scored NaN or infinity and counted as the worst" in caplog.text
    with pytest.raises(NodeError, match="every individual"):
        evolve.genetic(make_ctx(), genome, FunctionObjective("nan", lambda x: x.sum((1, 2, 3)) * math.nan), size=8)


def test_an_objective_must_score_each_image():
    genome = genomes.triangles(4, 0.5, "white", "auto")
    with pytest.raises(NodeError, match=r"one score per image, shape \[B\]"):
        evolve.genetic(make_ctx(), genome, FunctionObjective("sum", lambda x: x.sum()), population=6, size=8)


# -- the genetic algorithm --------------------------------------------------------------


def _ga(seed: int = 0, **params):
    genome = params.pop("genome", None) or genomes.triangles(10, 0.6, "white", "auto")
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    settings = {"population": 12, "generations": 8, "size": 16, **params}
    return evolve.genetic(make_ctx(seed=seed), genome, objective, **settings)


def test_genetic_search_improves_and_records_its_history():
    image, best, history = _ga(generations=25)
    assert image.shape == (1, 3, 16, 16) and best.shape == (100,)
    assert history["generation"] == list(range(26))
    assert history["best"][-1] < history["best"][0]
    assert all(b >= a for a, b in zip(history["best"][1:], history["best"][:-1], strict=True))
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    assert objective(image).item() == pytest.approx(history["best"][-1], rel=1e-5)


def test_the_same_seed_gives_the_same_search():
    assert torch.equal(_ga(3)[1], _ga(3)[1])
    assert not torch.equal(_ga(3)[1], _ga(4)[1])


@pytest.mark.parametrize("crossover", ["uniform", "blend", "one_point"])
def test_every_crossover_runs(crossover):
    _, _, history = _ga(crossover=crossover, generations=3)
    assert len(history["best"]) == 4


def test_patience_stops_a_search_that_no_longer_improves():
    flat = FunctionObjective("flat", lambda x: torch.zeros(len(x)))
    _, _, history = evolve.genetic(
        make_ctx(), genomes.triangles(3, 0.5, "white", "auto"), flat, population=6, generations=50, size=8, patience=3
    )
    assert len(history["generation"]) == 4  # generation 0, then three without improvement


def test_the_render_follows_the_target_aspect_and_output_size():
    wide = objectives.objective_pixel(torch.rand(1, 3, 10, 20), "mse", 1.0)
    genome = genomes.circles(3, 0.5, "white", "auto", 0.3)
    image, _, _ = evolve.genetic(make_ctx(), genome, wide, population=6, generations=1, size=16)
    assert image.shape == (1, 3, 8, 16)
    image, _, _ = evolve.genetic(make_ctx(), genome, wide, population=6, generations=1, size=16, output_size=64)
    assert image.shape == (1, 3, 32, 64)


class _Interrupt(Exception):
    pass


class _StopAfter(ProgressBase):
    """A progress reporter that interrupts the run at its ``count``-th update (as Ctrl-C would)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, total: int, desc: str) -> _StopAfter:
        return self

    def update(self, n: int = 1, **metrics: float) -> None:
        self.count -= n
        if self.count <= 0:
            raise _Interrupt


@pytest.mark.parametrize("sigma", [None, 0.1])
def test_genetic_checkpoint_resume_continues_identically(tmp_path, sigma):
    # The default sigma follows the planned generations, so the run is interrupted, not shortened.
    checkpoint = str(tmp_path / "ga.safetensors")
    _, best_whole, history_whole = _ga(generations=6, mutation_sigma=sigma)
    genome, objective = genomes.triangles(10, 0.6, "white", "auto"), objectives.objective_pixel(target(), "mse", 1.0)
    with pytest.raises(_Interrupt):  # interrupted in generation 4, after the checkpoint of generation 3
        evolve.genetic(
            make_ctx(progress=_StopAfter(4)),
            genome,
            objective,
            population=12,
            generations=6,
            size=16,
            mutation_sigma=sigma,
            checkpoint=checkpoint,
            checkpoint_every=3,
        )
    _, best, history = _ga(generations=6, resume=checkpoint, mutation_sigma=sigma)
    assert history["generation"][:4] == [0, 1, 2, 3] and len(history["generation"]) == 7
    assert torch.equal(best, best_whole)
    assert history == history_whole


def test_checkpoints_of_another_search_or_genome_are_refused(tmp_path):
    checkpoint = str(tmp_path / "ga.safetensors")
    _ga(generations=2, checkpoint=checkpoint, checkpoint_every=1)
    with pytest.raises(NodeError, match="another genome"):
        _ga(generations=3, resume=checkpoint, genome=genomes.triangles(11, 0.6, "white", "auto"))
    with pytest.raises(NodeError, match="population of 12, not 14"):
        _ga(generations=3, resume=checkpoint, population=14)
    with pytest.raises(NodeError, match=r"checkpoint of evolve\.genetic, not of evolve\.anneal"):
        _anneal(steps=3, resume=checkpoint)
    pickle = tmp_path / "state.pt"
    torch.save({"population": torch.zeros(1)}, pickle)
    with pytest.raises(NodeError, match="pickle"):
        _ga(resume=str(pickle))
    foreign = tmp_path / "foreign.safetensors"
    write_safetensors(foreign, {"x": torch.zeros(1)}, {"format": "something else"})
    with pytest.raises(NodeError, match="not an artgraph search checkpoint"):
        _ga(resume=str(foreign))


def test_a_tampered_checkpoint_is_refused_in_one_line(tmp_path):
    from safetensors import safe_open

    checkpoint = str(tmp_path / "ga.safetensors")
    _ga(generations=2, checkpoint=checkpoint, checkpoint_every=1)
    with safe_open(checkpoint, "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}
    tampered = tmp_path / "tampered.safetensors"
    for change, message in (
        ({"meta": {"history": [1, 2]}}, "incomplete search checkpoint"),
        ({"tensors": {"scores": torch.zeros(3, dtype=torch.float64)}}, "inconsistent"),
        ({"tensors": {"population": torch.zeros(12)}}, "genomes of shape"),
    ):
        write_safetensors(tampered, {**tensors, **change.get("tensors", {})}, {**meta, **change.get("meta", {})})
        with pytest.raises(NodeError, match=message):
            _ga(generations=3, resume=str(tampered))


def test_the_default_sigma_falls_from_big_steps_to_small_over_the_budget():
    start, end = genetic_algorithm.SIGMA_SCHEDULE
    assert (start, end) == (0.5, 0.05)
    for generations in (2, 165, 4165):  # about 2,000 and 50,000 evaluations with the defaults
        sigmas = [genetic_algorithm.annealed_sigma(g, generations) for g in range(generations)]
        assert sigmas[0] == pytest.approx(start) and sigmas[-1] == pytest.approx(end)
        assert all(b < a for a, b in itertools.pairwise(sigmas))
    # geometric: halfway through, the geometric mean of the ends
    assert genetic_algorithm.annealed_sigma(50, 101) == pytest.approx(math.sqrt(start * end))
    # it follows the budget: at the same generation, a longer run still takes bigger steps
    assert (
        genetic_algorithm.annealed_sigma(100, 165)
        < genetic_algorithm.annealed_sigma(100, 1665)
        < genetic_algorithm.annealed_sigma(100, 4165)
    )
    assert genetic_algorithm.annealed_sigma(0, 1) == start and genetic_algorithm.annealed_sigma(0, 0) == start


def _sigmas(monkeypatch, **params) -> list[float]:
    """The mutation sigma each generation of ``_ga(**params)`` used."""
    seen: list[float] = []
    breed = genetic_algorithm.next_generation

    def spy(genome, population, scores, settings, generator):
        seen.append(settings.mutation_sigma)
        return breed(genome, population, scores, settings, generator)

    monkeypatch.setattr(genetic_algorithm, "next_generation", spy)
    _ga(**params)
    monkeypatch.undo()
    return seen


def test_the_default_sigma_follows_the_schedule_and_a_set_sigma_stays(monkeypatch):
    assert _sigmas(monkeypatch, generations=9) == [genetic_algorithm.annealed_sigma(g, 9) for g in range(9)]
    assert _sigmas(monkeypatch, generations=9, mutation_sigma=0.1) == [0.1] * 9
    assert _sigmas(monkeypatch, generations=9, mutation_sigma=0.5) == [0.5] * 9


def test_the_default_sigma_beats_the_old_fixed_one_at_a_small_budget():
    # 10 triangles, 60 generations of 12 pictures (about 730 evaluations), three seeds
    genome = genomes.triangles(10, 0.6, "white", "auto")
    scheduled = [_ga(seed, genome=genome, generations=60)[2]["best"][-1] for seed in range(3)]
    fixed = [_ga(seed, genome=genome, generations=60, mutation_sigma=0.1)[2]["best"][-1] for seed in range(3)]
    assert sum(scheduled) < 0.9 * sum(fixed)


# -- simulated annealing -------------------------------------------------------------------


def _anneal(seed: int = 0, **params):
    genome = genomes.circles(8, 0.7, "white", "auto", 0.4)
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    settings = {"steps": 30, "size": 16, "batch": 4, **params}
    return evolve.anneal(make_ctx(seed=seed), genome, objective, **settings)


def test_annealing_accepts_worse_moves_when_hot_and_not_when_cold():
    assert evolve.accept_probability(-1.0, 0.0) == 1.0
    assert evolve.accept_probability(0.01, 1.0) > 0.99
    assert evolve.accept_probability(0.01, 1e-6) < 1e-100
    assert evolve.accept_probability(0.01, 0.0) == 0.0
    hot = _anneal(t_start=100.0, t_end=50.0, batch=1)[2]
    cold = _anneal(t_start=1e-9, t_end=1e-10, batch=1)[2]
    worse = [sum(b > a for a, b in zip(h["current"], h["current"][1:], strict=False)) for h in (hot, cold)]
    assert worse[0] > 5 and worse[1] == 0


def test_temperature_schedules_run_from_start_to_end():
    for schedule in ("exponential", "linear"):
        assert evolve.temperature(0, 100, 1.0, 0.01, schedule) == pytest.approx(1.0)
        assert evolve.temperature(99, 100, 1.0, 0.01, schedule) == pytest.approx(0.01)
    assert evolve.temperature(50, 101, 1.0, 0.01, "exponential") == pytest.approx(0.1)
    assert evolve.temperature(50, 101, 1.0, 0.0, "linear") == pytest.approx(0.5)


def test_annealing_improves_and_is_reproducible():
    image, best, history = _anneal(steps=60)
    assert history["best"][-1] < history["best"][0]
    assert len(history["step"]) == 61 and image.shape == (1, 3, 16, 16)
    assert torch.equal(best, _anneal(steps=60)[1])


def test_anneal_checkpoint_resume_continues_identically(tmp_path):
    checkpoint = str(tmp_path / "sa.safetensors")
    _, best_whole, history_whole = _anneal(steps=20)
    _anneal(steps=10, checkpoint=checkpoint, checkpoint_every=10)
    _, best, history = _anneal(steps=20, resume=checkpoint)
    assert torch.equal(best, best_whole)
    assert history == history_whole


# -- in graphs --------------------------------------------------------------------------------


def _graph(tmp_path: Path, **genetic_params) -> dict:
    PILImage.new("RGB", (24, 16), (200, 40, 40)).save(tmp_path / "target.png")
    return {
        "artgraph": 1,
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "target.png"}},
            "shapes": {"type": "genome.triangles", "params": {"count": 5}},
            "score": {"type": "objective.pixel", "inputs": {"target": "photo"}},
            "search": {
                "type": "evolve.genetic",
                "inputs": {"genome": "shapes", "objective": "score"},
                "params": {"population": 6, "generations": 3, "size": 12, "elite": 2, **genetic_params},
            },
            "save": {"type": "image.save", "inputs": {"image": "search.image"}, "params": {"path": "best.png"}},
        },
    }


def test_a_search_runs_in_a_graph(tmp_path):
    result = load_graph(_graph(tmp_path), base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path)
    (written,) = result.outputs["save.paths"]
    with PILImage.open(written) as saved:
        assert saved.size == (12, 8)  # the target's 3:2 aspect at long side 12


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"population": 1}, "population"),
        ({"size": 4}, "size"),
        ({"elite": 6}, "'elite' (6) must be smaller than 'population' (6)"),
        ({"tournament": 9}, "'tournament' (9) is larger than 'population' (6)"),
        ({"crossover": "two_point"}, "crossover"),
    ],
)
def test_bad_search_settings_are_validation_errors(tmp_path, params, message):
    with pytest.raises(artgraph.GraphError) as info:
        load_graph(_graph(tmp_path, **params), base_dir=tmp_path)
    assert any(message in p.message for p in info.value.problems)


def test_zero_shapes_is_a_validation_error(tmp_path):
    spec = _graph(tmp_path)
    spec["nodes"]["shapes"]["params"]["count"] = 0
    with pytest.raises(artgraph.GraphError, match="count"):
        load_graph(spec, base_dir=tmp_path)


def test_a_coarse_pixel_objective_ignores_detail():
    flat = torch.full((1, 3, 32, 32), 0.5)
    checker = (torch.arange(32).view(1, 32) + torch.arange(32).view(32, 1)) % 2
    detailed = checker.float().expand(1, 3, 32, 32)  # averages to 0.5 over any 2×2 block
    coarse = objectives.objective_pixel(flat, "mse", 1.0, resolution=8)
    fine = objectives.objective_pixel(flat, "mse", 1.0)
    assert coarse(detailed).item() == pytest.approx(0.0, abs=1e-6)
    assert fine(detailed).item() == pytest.approx(0.25)


@pytest.mark.parametrize("compute_bound", [False, True])
def test_cheap_objectives_are_scored_on_one_thread(compute_bound, monkeypatch):
    seen: list[int] = []

    class Probe(objectives.PixelObjective):
        def terms(self, images):
            seen.append(torch.get_num_threads())
            return super().terms(images)

    probe = Probe(target(), "mse", 1.0)
    probe.compute_bound = compute_bound
    before = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)  # as if PyTorch used three threads
    threads: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    evolve.genetic(make_ctx(), genomes.triangles(3, 0.5, "white", "auto"), probe, population=6, generations=2, size=8)
    assert threads == ([] if compute_bound else [1, 3])  # one thread while searching, then restored
    assert seen and torch.get_num_threads() == 3
    monkeypatch.undo()
    assert torch.get_num_threads() == before


def test_a_search_releases_its_objective_however_it_ends():
    released: list[int] = []

    class Probe(objectives.PixelObjective):
        def release(self):
            released.append(1)

    probe = Probe(target(), "mse", 1.0)
    evolve.genetic(make_ctx(), genomes.triangles(3, 0.5, "white", "auto"), probe, population=6, generations=2, size=8)
    assert released == [1]
    evolve.anneal(make_ctx(), genomes.circles(3, 0.5, "white", "auto", 0.3), probe, steps=2, size=8)
    assert released == [1, 1]


def test_vgg_objectives_are_compute_bound_and_sums_inherit_it():
    from artgraph.nodes.search.hints import is_compute_bound, target_aspect

    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    assert not is_compute_bound(pixel)
    heavy = FunctionObjective("net", lambda x: x.mean((1, 2, 3)))
    heavy.compute_bound = True  # the optional hint, on an instance
    assert is_compute_bound(pixel + heavy) and not is_compute_bound(pixel + pixel)
    assert objectives.ContentObjective.compute_bound and objectives.StyleObjective.compute_bound
    # The other hint: the target's shape, from the first part of a sum that knows it.
    wide = objectives.objective_pixel(torch.rand(1, 3, 10, 20), "mse", 1.0)
    assert target_aspect(heavy) is None and target_aspect(heavy + wide) == 2.0
