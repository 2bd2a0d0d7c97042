"""evolve.es: evolution strategies over a genome (PGPE as es-clip uses, SNES, CMA-ES), from EvoTorch.

An evolution strategy keeps a Gaussian search distribution over the genes — a
centre and a spread — instead of a population: each generation it samples
``population`` genomes around the centre, scores them in one batch, and moves
the centre (and adapts the spread) towards the better ones. Every shape moves
at once, every generation, as in es-clip (Tian and Ha, 2021: PGPE with ClipUp
over 50 triangles, scored by CLIP or by pixel distance).

The update rules are EvoTorch's (``evotorch.algorithms``: PGPE with the ClipUp
optimiser and centred ranking, SNES, CMA-ES); this node gives them a Problem
whose fitness is artgraph's batched :class:`~.harness.Scorer` (the genome
draws the whole population, the objective scores it in one call), seeded from
the node's generator. Samples may leave [0, 1]: they are clamped before they
are drawn, and the centre is kept in [0, 1]. The centre is scored too every
generation (es-clip's answer is the centre); the best picture seen, centre or
sample, is the node's output. NaN scores count as the worst (ranking methods
only need an order).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from artgraph import Context, Int, NodeError, Objective, Param, Str, node
from artgraph import Float as FloatT

from .genomes import Genome
from .harness import _INPUTS, _SIZE_PARAMS, SearchState, _outputs, _Search

ALGORITHMS = ("pgpe", "snes", "cmaes")
#: The centre's learning rate when ``lr`` is not set: PGPE's (ClipUp's step; its top speed is
#: twice this), SNES's and CMA-ES's (``c_m``) own defaults.
DEFAULT_LR = {"pgpe": 0.05, "snes": 1.0, "cmaes": 1.0}
#: PGPE's learning rate of the spread (es-clip's and EvoTorch's examples use 0.1).
PGPE_STDEV_LR = 0.1


def _import_evotorch() -> Any:
    """EvoTorch, imported quietly: its import warns about torch.jit and about a logging set up
    before it (the CLI's), neither of which a user can act on."""
    # Not a line per Problem and optimiser either; set before the import, which logs.
    logging.getLogger("evotorch").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import evotorch  # type: ignore[import-untyped]
            import evotorch.algorithms  # type: ignore[import-untyped]
    except ImportError:
        raise NodeError("evolve.es needs EvoTorch, which is not installed: pip install 'artgraph[es]'") from None
    logging.getLogger("evotorch").setLevel(logging.WARNING)
    return evotorch


def _finite_mean(scores: torch.Tensor) -> float:
    finite = scores[torch.isfinite(scores)]
    return float(finite.mean()) if len(finite) else math.inf


def _searcher(algorithm: str, problem: Any, population: int, sigma: float, lr: float, centre: torch.Tensor) -> Any:
    algorithms = _import_evotorch().algorithms
    CMAES, PGPE, SNES = algorithms.CMAES, algorithms.PGPE, algorithms.SNES  # noqa: N806

    start = centre.numpy()  # EvoTorch copies it with torch.tensor(), which warns about a tensor

    if algorithm == "pgpe":
        return PGPE(
            problem,
            popsize=population,
            center_learning_rate=lr,
            stdev_learning_rate=PGPE_STDEV_LR,
            stdev_init=sigma,
            center_init=start,
            optimizer="clipup",
        )
    if algorithm == "snes":
        return SNES(problem, popsize=population, stdev_init=sigma, center_learning_rate=lr, center_init=start)
    return CMAES(problem, popsize=population, stdev_init=sigma, c_m=lr, center_init=start)


def _check_es(params: Mapping[str, object]) -> list[tuple[str, str]]:
    algorithm, population = params.get("algorithm"), params.get("population")
    if algorithm == "pgpe" and isinstance(population, int) and population % 2:
        return [(f"PGPE samples in mirrored pairs: 'population' ({population}) must be even", "use an even number")]
    return []


@node(
    "evolve.es",
    seeded=True,
    category="search",
    inputs=_INPUTS,
    params={
        "algorithm": Param(Str, "pgpe", choices=ALGORITHMS, description="pgpe (as es-clip), snes or cmaes"),
        "population": Param(Int, 16, min=2, max=100_000, description="genomes sampled per generation"),
        "generations": Param(Int, 300, min=0),
        "sigma": Param(
            FloatT, 0.05, min=1e-6, max=1.0, description="initial spread of the samples (genes are in [0, 1])"
        ),
        "lr": Param(
            FloatT, None, min=0.0, max=10.0, description="the centre's learning rate; default 0.05 (pgpe), 1 (others)"
        ),
        **_SIZE_PARAMS,
    },
    outputs=_outputs("per generation: generation, best (so far), mean (the samples'), centre (its score)"),
    check=_check_es,
)
def es(
    ctx: Context,
    genome: Genome,
    objective: Objective,
    algorithm: str = "pgpe",
    population: int = 16,
    generations: int = 300,
    sigma: float = 0.05,
    lr: float | None = None,
    size: int = 64,
    output_size: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """An evolution strategy: sample genomes around a centre, score them in one batch, move the centre.

    Costs ``population + 1`` scored pictures per generation (the samples and the centre).
    """
    evotorch = _import_evotorch()
    if algorithm not in ALGORITHMS:
        raise NodeError(f"unknown algorithm '{algorithm}'; use one of {', '.join(ALGORITHMS)}")
    if algorithm == "pgpe" and population % 2:
        raise NodeError(f"PGPE samples in mirrored pairs: 'population' ({population}) must be even")
    search = _Search(ctx, "es", genome, objective, size, "", 0)
    score, rng = search.score, search.rng
    seed = int(torch.randint(0, 2**31 - 1, (), generator=rng))
    centre = genome.random(1, rng)[0]

    def fitness(samples: torch.Tensor) -> torch.Tensor:
        return score(samples.detach().clamp(0.0, 1.0)).to(torch.float32)

    problem = evotorch.Problem(
        "min", fitness, solution_length=genome.dims, initial_bounds=(0.0, 1.0), vectorized=True, seed=seed
    )
    with search.running():
        first = score(centre.unsqueeze(0))
        if not torch.isfinite(first).all():
            raise NodeError("the objective gave NaN or infinity for the starting picture (the first centre)")
        state = SearchState("es", centre.unsqueeze(0), first, centre.clone(), float(first[0]))
        state.history = {"generation": [0], "best": [state.best_score], "mean": [math.nan], "centre": [float(first[0])]}
        searcher = _searcher(algorithm, problem, population, sigma, DEFAULT_LR[algorithm] if lr is None else lr, centre)
        with ctx.progress(generations, "evolving") as bar:
            while state.step < generations:
                ctx.stop_if_cancelled()
                searcher.step()
                samples = searcher.population.values.detach().clamp(0.0, 1.0).cpu()
                scores = searcher.population.evals[:, 0].detach().to("cpu", torch.float64)
                scores = scores.masked_fill(~torch.isfinite(scores), math.inf)
                state.improve(samples, scores)
                middle = _centre(searcher).clamp(0.0, 1.0)
                _set_centre(searcher, middle)
                middle_score = score(middle.unsqueeze(0))
                if float(middle_score[0]) < state.best_score:
                    state.best, state.best_score, state.stale = middle.clone(), float(middle_score[0]), 0
                state.population, state.scores = samples, scores
                state.step += 1
                state.evaluations = score.evaluations
                for key, value in (
                    ("generation", state.step),
                    ("best", state.best_score),
                    ("mean", _finite_mean(scores)),
                    ("centre", float(middle_score[0])),
                ):
                    state.history[key].append(value)
                bar.update(1, best=state.best_score)
                search.show(state)
        return search.finish(state, output_size)


def _centre(searcher: Any) -> torch.Tensor:
    """The centre of the search distribution, on the CPU."""
    return torch.as_tensor(searcher.status["center"]).detach().to("cpu", torch.float32)


def _set_centre(searcher: Any, centre: torch.Tensor) -> None:
    """Keep the centre in [0, 1] (genes outside it mean nothing: they are clamped when drawn)."""
    if hasattr(searcher, "_distribution"):  # PGPE, SNES
        searcher._distribution.parameters["mu"].copy_(centre.to(searcher._distribution.parameters["mu"]))
    elif hasattr(searcher, "m"):  # CMA-ES
        searcher.m.copy_(centre.to(searcher.m))
