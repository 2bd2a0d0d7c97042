"""evolve.genetic: a genetic algorithm over a genome's pictures (tournaments, crossover, mutation, elites)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from artgraph import Context, Int, NodeError, Objective, Param, Str, node
from artgraph import Float as FloatT

from .genomes import CROSSOVERS, Genome
from .harness import _CHECKPOINT_PARAMS, _INPUTS, _SIZE_PARAMS, SearchState, _outputs, _Search

#: The default mutation rate changes this many genes per child, on average.
FIVE_GENES = 5.0
#: The default mutation sigma falls geometrically over the run from the first to the second.
SIGMA_SCHEDULE = (0.5, 0.05)


def _finite_mean(scores: torch.Tensor) -> float:
    finite = scores[torch.isfinite(scores)]
    return float(finite.mean()) if len(finite) else math.inf


# -- the genetic algorithm ----------------------------------------------------------------


def tournament(scores: torch.Tensor, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``count`` winners, each the best of ``size`` individuals drawn at random."""
    entrants = torch.randint(0, len(scores), (count, size), generator=generator)
    return entrants.gather(1, scores[entrants].argmin(1, keepdim=True)).squeeze(1)


@dataclass(frozen=True)
class GeneticSettings:
    tournament: int
    crossover: str
    crossover_rate: float
    mutation_rate: float
    mutation_sigma: float
    elite: int


def next_generation(
    genome: Genome,
    population: torch.Tensor,
    scores: torch.Tensor,
    settings: GeneticSettings,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The elite (unchanged, with their scores) and the new children (to be scored)."""
    size = len(population)
    elite = torch.argsort(scores, stable=True)[: settings.elite]
    n = size - settings.elite
    parents = tournament(scores, 2 * n, settings.tournament, generator)
    first, second = population[parents[:n]], population[parents[n:]]
    crossed = genome.crossover(first, second, settings.crossover, generator)
    mate = (torch.rand(n, generator=generator) < settings.crossover_rate).unsqueeze(1)
    children = genome.mutate(
        torch.where(mate, crossed, first), settings.mutation_rate, settings.mutation_sigma, generator
    )
    return elite, children


def annealed_sigma(step: int, generations: int) -> float:
    """The default mutation sigma of generation ``step`` (0-based) of ``generations``.

    It falls geometrically from ``start`` in the first generation to ``end`` in the
    last (``SIGMA_SCHEDULE``): ``start · (end / start) ** (step / (generations − 1))``. The schedule
    follows the budget: at 2,000 evaluations the whole run is spent in big steps
    that find where the shapes go, at 50,000 most of it refines them.
    """
    start, end = SIGMA_SCHEDULE
    if generations <= 1:
        return start
    share = min(max(step / (generations - 1), 0.0), 1.0)
    return start * (end / start) ** share


def _check_genetic(params: Mapping[str, object]) -> list[tuple[str, str]]:
    problems = []
    population, elite, size = params.get("population"), params.get("elite"), params.get("tournament")
    if isinstance(population, int) and isinstance(elite, int) and elite >= population:
        problems.append(
            (f"'elite' ({elite}) must be smaller than 'population' ({population})", "keep 1 to a few elites")
        )
    if isinstance(population, int) and isinstance(size, int) and size > population:
        problems.append((f"'tournament' ({size}) is larger than 'population' ({population})", "use 2 to 5"))
    return problems


@node(
    "evolve.genetic",
    seeded=True,
    category="search",
    inputs=_INPUTS,
    params={
        "population": Param(Int, 16, min=2, max=100_000, description="pictures per generation"),
        "generations": Param(Int, 1000, min=0),
        **_SIZE_PARAMS,
        "tournament": Param(Int, 3, min=1, description="individuals per tournament (selection pressure)"),
        "crossover": Param(Str, "uniform", choices=CROSSOVERS, description="uniform and one_point swap whole shapes"),
        "crossover_rate": Param(FloatT, 0.5, min=0.0, max=1.0, description="share of children with two parents"),
        "mutation_rate": Param(
            FloatT, None, min=0.0, max=1.0, description="chance that a gene is mutated; default 5 / genes"
        ),
        "mutation_sigma": Param(
            FloatT,
            None,
            min=0.0,
            max=1.0,
            description="std of the Gaussian mutation; default falls from 0.5 to 0.05 over the generations",
        ),
        "elite": Param(Int, 4, min=0, description="best individuals copied unchanged"),
        "patience": Param(Int, 0, min=0, description="stop after N generations without improvement (0: never)"),
        **_CHECKPOINT_PARAMS,
    },
    outputs=_outputs("per generation: generation, best (so far) and mean score"),
    check=_check_genetic,
)
def genetic(
    ctx: Context,
    genome: Genome,
    objective: Objective,
    population: int = 16,
    generations: int = 1000,
    size: int = 64,
    output_size: int = 0,
    tournament: int = 3,
    crossover: str = "uniform",
    crossover_rate: float = 0.5,
    mutation_rate: float | None = None,
    mutation_sigma: float | None = None,
    elite: int = 4,
    patience: int = 0,
    checkpoint: str = "checkpoints/evolve.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Evolve a population of pictures: tournament selection, crossover, Gaussian mutation, elitism.

    The default mutation rate changes about five genes per child whatever the
    genome's size: 0.01 for 50 triangles (500 genes), which is what worked best
    there; a fixed rate would scramble big genomes and barely touch small ones.
    The default mutation sigma follows the budget (:func:`annealed_sigma`): it
    falls from 0.5 to 0.05 over ``generations``, so the run explores first and
    refines last whatever its length. A ``mutation_sigma`` that is set stays fixed.
    """
    if mutation_rate is None:
        mutation_rate = min(1.0, FIVE_GENES / genome.dims)
    scheduled = mutation_sigma is None
    sigma = annealed_sigma(0, generations) if mutation_sigma is None else mutation_sigma
    search = _Search(ctx, "genetic", genome, objective, size, checkpoint, checkpoint_every)
    score, rng = search.score, search.rng
    settings = GeneticSettings(tournament, crossover, crossover_rate, mutation_rate, sigma, elite)
    with search.running():
        if resume:
            state = search.resume(resume)
            if len(state.population) != population:
                raise NodeError(f"{resume} holds a population of {len(state.population)}, not {population}")
        else:
            people = genome.random(population, rng)
            scores = score(people)
            if not torch.isfinite(scores).any():
                raise NodeError("the objective gave NaN or infinity for every individual of the first population")
            state = SearchState("genetic", people, scores, people[0].clone(), math.inf)
            state.improve(people, scores)
            state.stale, state.evaluations = 0, score.evaluations
            state.history = {"generation": [0], "best": [state.best_score], "mean": [_finite_mean(scores)]}
        with ctx.progress(max(generations - state.step, 0), "evolving") as bar:
            while state.step < generations:
                if patience and state.stale >= patience:
                    ctx.log.info("no improvement in %d generations; stopped at generation %d", patience, state.step)
                    break
                if scheduled:
                    settings = replace(settings, mutation_sigma=annealed_sigma(state.step, generations))
                elite_index, children = next_generation(genome, state.population, state.scores, settings, rng)
                child_scores = score(children)
                state.population = torch.cat([state.population[elite_index], children])
                state.scores = torch.cat([state.scores[elite_index], child_scores])
                state.improve(state.population, state.scores)
                state.step += 1
                state.evaluations += len(children)
                for key, value in (
                    ("generation", state.step),
                    ("best", state.best_score),
                    ("mean", _finite_mean(state.scores)),
                ):
                    state.history[key].append(value)
                bar.update(1, best=state.best_score)
                search.show(state)
                search.save(state)
        return search.finish(state, output_size)
