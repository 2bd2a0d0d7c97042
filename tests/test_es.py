"""evolve.es: evolution strategies (EvoTorch's PGPE, SNES, CMA-ES) over a genome, scored in batches."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import FunctionObjective, NodeError, load_graph
from artgraph.nodes.search import genomes
from artgraph.nodes.search.evolution_strategy import ALGORITHMS, es
from artgraph.nodes.style import objectives
from tests.conftest import make_ctx
from tests.conftest import paint_target as target


def evolve(seed: int = 0, **params):
    genome = params.pop("genome", None) or genomes.triangles(4, 0.8, "white", "auto")
    objective = params.pop("objective", None) or objectives.objective_pixel(target(), "mse", 1.0)
    settings = {"population": 8, "generations": 6, "size": 16, **params}
    return es(make_ctx(seed=seed), genome, objective, **settings)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_improves_on_its_start_and_counts_its_evaluations(algorithm):
    objective = objectives.objective_pixel(target(), "mse", 1.0)
    image, best, history = evolve(algorithm=algorithm, generations=15, objective=objective)
    assert len(history["generation"]) == 16 and history["generation"][-1] == 15
    assert history["best"][-1] < history["best"][0]
    assert all(a >= b for a, b in zip(history["best"], history["best"][1:], strict=False))
    assert best.min() >= 0 and best.max() <= 1
    genome = genomes.triangles(4, 0.8, "white", "auto")
    assert float(objective(genome.render(best.unsqueeze(0), (16, 16)))[0]) == pytest.approx(history["best"][-1])
    assert image.shape == (1, 3, 16, 16)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_same_seed_evolves_the_same_picture(algorithm):
    first, again, other = (evolve(seed=s, algorithm=algorithm) for s in (3, 3, 4))
    assert torch.equal(first[1], again[1]) and first[2] == again[2]
    assert not torch.equal(first[1], other[1])


def test_a_generation_is_scored_in_one_batch():
    pixel = objectives.objective_pixel(target(), "mse", 1.0)
    batches: list[int] = []

    def counted(images: torch.Tensor) -> torch.Tensor:
        batches.append(len(images))
        return pixel(images)

    evolve(objective=FunctionObjective("counted", counted), population=10, generations=3)
    assert batches == [1] + [10, 1] * 3  # the first centre; then each generation's samples and its centre


def test_every_genome_evolves():
    for genome in (
        genomes.circles(4, 0.8, "black", "auto", 0.4),
        genomes.strokes(4, 0.9, "#808080", "auto", 0.6, 0.2),
    ):
        _, best, history = evolve(genome=genome, generations=8)
        assert best.shape == (genome.dims,) and history["best"][-1] < history["best"][0]


def test_nan_scores_count_as_the_worst_and_are_reported(caplog):
    pixel = objectives.objective_pixel(target(), "mse", 1.0)

    def odd(images: torch.Tensor) -> torch.Tensor:
        scores = pixel(images)
        return torch.where(torch.arange(len(images)) % 3 == 1, math.nan, scores)

    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        _, _, history = evolve(objective=FunctionObjective("odd", odd), population=12)
    assert all(math.isfinite(v) for v in history["best"])
    assert "scored NaN or infinity and counted as the worst" in caplog.text
    with pytest.raises(NodeError, match="NaN or infinity for the starting picture"):
        evolve(objective=FunctionObjective("nan", lambda x: x.sum((1, 2, 3)) * math.nan))


def test_pgpe_needs_an_even_population(tmp_path: Path):
    with pytest.raises(NodeError, match="mirrored pairs"):
        evolve(population=7)
    evolve(population=7, algorithm="snes", generations=1)  # the others do not
    PILImage.new("RGB", (16, 16), (200, 40, 40)).save(tmp_path / "target.png")
    spec = {
        "artgraph": 1,
        "nodes": {
            "photo": {"type": "image.load", "params": {"path": "target.png"}},
            "shapes": {"type": "genome.triangles", "params": {"count": 3}},
            "score": {"type": "objective.pixel", "inputs": {"target": "photo"}},
            "search": {
                "type": "evolve.es",
                "inputs": {"genome": "shapes", "objective": "score"},
                "params": {"population": 7, "generations": 2, "size": 12},
            },
        },
    }
    with pytest.raises(artgraph.GraphError, match="mirrored pairs"):
        load_graph(spec, base_dir=tmp_path)
    spec["nodes"]["search"]["params"]["population"] = 8
    result = load_graph(spec, base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path)
    assert result["search.image"].shape == (1, 3, 12, 12)


def test_without_evotorch_the_node_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "evotorch", None)  # an import of it now fails
    with pytest.raises(NodeError, match=r"pip install 'artgraph\[es\]'"):
        evolve(generations=1)
