"""Evolutionary search: genetic algorithms and simulated annealing that paint.

Both searches minimise an :class:`~artgraph.Objective` over a
:class:`~.genomes.Genome` — the same objectives that drive pixel optimisation,
so "50 triangles close to this photo" and "200 strokes in the style of this
painting" differ only in the graph. Scores are lower-is-better; a search for
``max f(x)`` is a search for ``min -f(x)``.

Every population is scored in batches: the genome draws ``[P, 3, H, W]`` and
the objective scores all of it in one call (chunked to bound memory), never P
calls of one image. An individual whose score is NaN or infinite counts as the
worst; the node says how many there were.

All randomness comes from the node's seeded CPU generator, so the same seed
gives the same search on any machine. The state of a search (population,
scores, best, history, generator state) is checkpointed as safetensors every
``checkpoint_every`` generations; a run resumed from a checkpoint continues
exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from artgraph import Context, Dict, Image, Input, Int, NodeError, Objective, ObjectiveType, Output, Param, Str, node
from artgraph import Float as FloatT
from artgraph import Path as PathT
from artgraph import Tensor as TensorT

from .genomes import CROSSOVERS, Genome, GenomeType, render_size
from .tensorfile import read_safetensors, write_safetensors

CHECKPOINT_FORMAT = "artgraph.search.checkpoint"
SCHEDULES = ("exponential", "linear")
#: The default mutation rate changes this many genes per child, on average.
FIVE_GENES = 5.0
#: Images of at most this many pixels in total are scored in one call of the objective.
_SCORE_PIXELS = 1 << 21


# -- scoring ------------------------------------------------------------------------


class Scorer:
    """Renders and scores populations in batches; counts evaluations and bad scores."""

    def __init__(self, genome: Genome, objective: Objective, size: tuple[int, int], device: torch.device) -> None:
        self.genome, self.objective, self.size, self.device = genome, objective, size, device
        self.evaluations = 0
        self.non_finite = 0

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Scores ``[P]`` (float64, CPU; non-finite scores become +inf)."""
        height, width = self.size
        chunk = max(1, _SCORE_PIXELS // (height * width))
        parts = []
        with torch.no_grad():
            for part in params.split(chunk):
                images = self.genome.render(part, self.size, self.device)
                scores = self.objective(images)
                if not isinstance(scores, torch.Tensor) or scores.shape != (len(part),):
                    shape = list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
                    raise NodeError(
                        f"the objective gave {shape} for {len(part)} images; "
                        "an objective must give one score per image, shape [B]"
                    )
                parts.append(scores.detach().to("cpu", torch.float64))
        scores = torch.cat(parts)
        bad = ~torch.isfinite(scores)
        if bad.any():
            self.non_finite += int(bad.sum())
            scores = scores.masked_fill(bad, math.inf)
        self.evaluations += len(params)
        return scores

    def report(self, ctx: Context) -> None:
        if self.non_finite:
            ctx.log.warning(
                "%d of %d individuals scored NaN or infinity and counted as the worst",
                self.non_finite,
                self.evaluations,
            )


# -- search state and checkpoints -------------------------------------------------------


@dataclass
class SearchState:
    """Everything a search needs to go on: a checkpoint holds exactly this."""

    search: str
    population: torch.Tensor
    scores: torch.Tensor
    best: torch.Tensor
    best_score: float
    step: int = 0
    evaluations: int = 0
    stale: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    def improve(self, params: torch.Tensor, scores: torch.Tensor) -> None:
        """Keep the best individual seen so far; count generations without improvement."""
        index = int(torch.argmin(scores))
        if float(scores[index]) < self.best_score:
            self.best, self.best_score, self.stale = params[index].clone(), float(scores[index]), 0
        else:
            self.stale += 1


def save_checkpoint(path: str, state: SearchState, genome: Genome, size: tuple[int, int], rng: torch.Generator) -> None:
    tensors = {
        "population": state.population,
        "scores": state.scores,
        "best": state.best,
        "rng": rng.get_state(),
    }
    meta = {
        "format": CHECKPOINT_FORMAT,
        "search": state.search,
        "genome": genome.config(),
        "size": list(size),
        "step": state.step,
        "evaluations": state.evaluations,
        "best_score": state.best_score,
        "stale": state.stale,
        "history": state.history,
        "extra": state.extra,
    }
    write_safetensors(path, tensors, meta)


def load_checkpoint(path: str, search: str, genome: Genome, size: tuple[int, int], rng: torch.Generator) -> SearchState:
    """Read a search checkpoint; refuse one made by another search, genome or render size."""
    tensors, meta = read_safetensors(path, "checkpoint", "Checkpoints are written by the search itself.")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise NodeError(f"{path} is not an artgraph search checkpoint")
    if meta.get("search") != search:
        raise NodeError(f"{path} is a checkpoint of evolve.{meta.get('search')}, not of evolve.{search}")
    if meta.get("genome") != genome.config():
        raise NodeError(
            f"{path} was made with another genome ({meta.get('genome')}); this graph's is {genome.config()}. "
            "Use the same genome settings, or start afresh without 'resume'"
        )
    if list(meta.get("size", [])) != list(size):
        raise NodeError(
            f"{path} was rendered at {meta.get('size')} (H, W), this search at {list(size)}; use the same 'size'"
        )
    try:
        rng.set_state(tensors["rng"])
        state = SearchState(
            search=search,
            population=tensors["population"],
            scores=tensors["scores"].to(torch.float64),
            best=tensors["best"],
            best_score=float(meta["best_score"]),
            step=int(meta["step"]),
            evaluations=int(meta["evaluations"]),
            stale=int(meta["stale"]),
            history={k: list(v) for k, v in meta["history"].items()},
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise NodeError(f"{path} is an incomplete search checkpoint: {type(exc).__name__}: {exc}") from None
    population, scores, best = state.population, state.scores, state.best
    if population.ndim != 2 or population.shape[-1] != genome.dims:
        raise NodeError(f"{path} holds genomes of shape {list(population.shape)}, this genome has {genome.dims} genes")
    if list(scores.shape) != [population.shape[0]] or list(best.shape) != [genome.dims]:
        raise NodeError(
            f"{path} is inconsistent: {population.shape[0]} genomes, {list(scores.shape)} scores, "
            f"a best genome of shape {list(best.shape)}; start afresh without 'resume'"
        )
    return state


class _Search:
    """What both searches share: render size, batched scorer, checkpoints, the final picture."""

    def __init__(
        self,
        ctx: Context,
        kind: str,
        genome: Genome,
        objective: Objective,
        size: int,
        checkpoint: str,
        checkpoint_every: int,
    ) -> None:
        self.ctx, self.kind, self.genome = ctx, kind, genome
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.aspect = objective.aspect()
        self.shape = render_size(size, self.aspect)
        self.score = Scorer(genome, objective, self.shape, ctx.device)
        self.rng = ctx.rng

    def resume(self, path: str) -> SearchState:
        state = load_checkpoint(path, self.kind, self.genome, self.shape, self.rng)
        self.ctx.log.info("resumed from %s at step %d", path, state.step)
        return state

    def save(self, state: SearchState, final: bool = False) -> None:
        """Write the state every ``checkpoint_every`` steps, and at the end when on at all."""
        if self.checkpoint_every and (final or state.step % self.checkpoint_every == 0):
            save_checkpoint(self.checkpoint, state, self.genome, self.shape, self.rng)
            self.ctx.log.info("checkpoint at step %d: %s", state.step, self.checkpoint)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around the search loop: one CPU thread unless the objective is compute-bound,
        and the objective released at the end, however the loop ends.

        A generation of small pictures is many small tensor operations; on all
        cores, each waits for a thread hand-off, and for a whole time slice when
        another process holds a core (a search measured 8× slower on a two-core
        machine with one core busy). The thread count is restored afterwards.
        Releasing drops what the objective memoised for the last population (a
        VGG objective's activations), which would otherwise outlive the search.
        """
        single = self.ctx.device.type == "cpu" and not self.score.objective.compute_bound
        before = torch.get_num_threads()
        if single:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if single:
                torch.set_num_threads(before)
            self.score.objective.release()

    def finish(self, state: SearchState, output_size: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
        """The last checkpoint, the bad-score report, and the outputs (best picture, genes, history)."""
        self.save(state, final=True)
        self.score.report(self.ctx)
        out = render_size(output_size, self.aspect) if output_size else self.shape
        image = self.genome.render(state.best.unsqueeze(0), out, self.ctx.device)
        return image, state.best, state.history


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


def _check_genetic(params: dict[str, object]) -> list[tuple[str, str]]:
    problems = []
    population, elite, size = params.get("population"), params.get("elite"), params.get("tournament")
    if isinstance(population, int) and isinstance(elite, int) and elite >= population:
        problems.append(
            (f"'elite' ({elite}) must be smaller than 'population' ({population})", "keep 1 to a few elites")
        )
    if isinstance(population, int) and isinstance(size, int) and size > population:
        problems.append((f"'tournament' ({size}) is larger than 'population' ({population})", "use 2 to 5"))
    return problems


_CHECKPOINT_PARAMS = {
    "checkpoint": Param(
        PathT, "checkpoints/evolve.safetensors", file="output", description="where the search state is written"
    ),
    "checkpoint_every": Param(Int, 0, min=0, description="write the state every N steps and at the end (0: never)"),
    "resume": Param(PathT, None, file="input", description="a checkpoint to continue from"),
}
_SIZE_PARAMS = {
    "size": Param(Int, 64, min=8, max=4096, description="render size while searching (long side, px)"),
    "output_size": Param(Int, 0, min=0, max=8192, description="long side of the output image (0: same as size)"),
}


@node(
    "evolve.genetic",
    category="search",
    inputs={"genome": Input(GenomeType), "objective": Input(ObjectiveType, description="lower is better")},
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
        "mutation_sigma": Param(FloatT, 0.1, min=0.0, max=1.0, description="std of the Gaussian mutation"),
        "elite": Param(Int, 4, min=0, description="best individuals copied unchanged"),
        "seed": Param(Int, 0, min=0),
        "patience": Param(Int, 0, min=0, description="stop after N generations without improvement (0: never)"),
        **_CHECKPOINT_PARAMS,
    },
    outputs={
        "image": Output(Image, "the best individual, rendered"),
        "best": Output(TensorT, "the best individual's parameters [dims]"),
        "history": Output(Dict, "per generation: generation, best (so far) and mean score"),
    },
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
    mutation_sigma: float = 0.1,
    elite: int = 4,
    seed: int = 0,
    patience: int = 0,
    checkpoint: str = "checkpoints/evolve.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Evolve a population of pictures: tournament selection, crossover, Gaussian mutation, elitism.

    The default mutation rate changes about five genes per child whatever the
    genome's size: 0.01 for 50 triangles (500 genes), which is what worked best
    there; a fixed rate would scramble big genomes and barely touch small ones.
    """
    if mutation_rate is None:
        mutation_rate = min(1.0, FIVE_GENES / genome.dims)
    problems = _check_genetic({"population": population, "elite": elite, "tournament": tournament})
    if problems:
        raise NodeError(problems[0][0])
    search = _Search(ctx, "genetic", genome, objective, size, checkpoint, checkpoint_every)
    score, rng = search.score, search.rng
    settings = GeneticSettings(tournament, crossover, crossover_rate, mutation_rate, mutation_sigma, elite)
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
                search.save(state)
        return search.finish(state, output_size)


# -- simulated annealing -----------------------------------------------------------------


def temperature(step: int, steps: int, t_start: float, t_end: float, schedule: str) -> float:
    """The temperature at ``step`` of ``steps``: from ``t_start`` down to ``t_end``."""
    progress = step / max(steps - 1, 1)
    if schedule == "linear":
        return t_start + (t_end - t_start) * progress
    return t_start * (t_end / t_start) ** progress


def accept_probability(delta: float, temp: float) -> float:
    """Metropolis: always take a better move; a worse one with probability exp(-delta / T)."""
    if delta <= 0:
        return 1.0
    if temp <= 0:
        return 0.0
    return math.exp(-delta / temp)


def _check_anneal(params: dict[str, object]) -> list[tuple[str, str]]:
    start, end, schedule = params.get("t_start"), params.get("t_end"), params.get("schedule")
    if isinstance(start, float) and isinstance(end, float):
        if end > start:
            return [(f"'t_end' ({end}) is above 't_start' ({start})", "annealing cools: make t_end smaller")]
        if schedule == "exponential" and end <= 0:
            return [("an exponential schedule cannot reach 0", "set t_end above 0, or use schedule: linear")]
    return []


@node(
    "evolve.anneal",
    category="search",
    inputs={"genome": Input(GenomeType), "objective": Input(ObjectiveType, description="lower is better")},
    params={
        "steps": Param(Int, 3000, min=0),
        **_SIZE_PARAMS,
        "t_start": Param(FloatT, 0.01, min=0.0, description="starting temperature, relative to the first score"),
        "t_end": Param(FloatT, 1e-5, min=0.0, description="final temperature, relative to the first score"),
        "schedule": Param(Str, "exponential", choices=SCHEDULES),
        "batch": Param(Int, 8, min=1, max=100_000, description="neighbours scored per step (the best one is proposed)"),
        "sigma": Param(FloatT, 0.1, min=0.0, max=1.0, description="size of a move: std of the change to one shape"),
        "seed": Param(Int, 0, min=0),
        **_CHECKPOINT_PARAMS,
    },
    outputs={
        "image": Output(Image, "the best picture found, rendered"),
        "best": Output(TensorT, "its parameters [dims]"),
        "history": Output(Dict, "per step: step, best, current"),
    },
    check=_check_anneal,
)
def anneal(
    ctx: Context,
    genome: Genome,
    objective: Objective,
    steps: int = 3000,
    size: int = 64,
    output_size: int = 0,
    t_start: float = 0.01,
    t_end: float = 1e-5,
    schedule: str = "exponential",
    batch: int = 8,
    sigma: float = 0.1,
    seed: int = 0,
    checkpoint: str = "checkpoints/evolve.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Simulated annealing: move one shape at a time, sometimes accepting a worse picture while hot.

    Temperatures are relative to the first picture's score, so the same schedule
    suits a pixel distance of 0.05 and a style loss of 5,000: a move that makes the
    score worse by ``d`` is taken with probability ``exp(-d / (T · |first score|))``.
    """
    problems = _check_anneal({"t_start": t_start, "t_end": t_end, "schedule": schedule})
    if problems:
        raise NodeError(problems[0][0])
    search = _Search(ctx, "anneal", genome, objective, size, checkpoint, checkpoint_every)
    score, rng = search.score, search.rng
    with search.running():
        if resume:
            state = search.resume(resume)
        else:
            current = genome.random(1, rng)
            first = score(current)
            if not torch.isfinite(first).all():
                raise NodeError("the objective gave NaN or infinity for the starting picture")
            state = SearchState("anneal", current, first, current[0].clone(), float(first[0]))
            state.evaluations = score.evaluations
            state.extra = {"scale": abs(float(first[0])) or 1.0}
            state.history = {"step": [0], "best": [state.best_score], "current": [state.best_score]}
        scale = state.extra["scale"]
        with ctx.progress(max(steps - state.step, 0), "annealing") as bar:
            while state.step < steps:
                temp = temperature(state.step, steps, t_start, t_end, schedule) * scale
                neighbours = genome.perturb(state.population.expand(batch, -1), sigma, rng)
                scores = score(neighbours)
                pick = int(torch.argmin(scores))
                delta = float(scores[pick] - state.scores[0])
                if math.isfinite(delta) and float(torch.rand((), generator=rng)) < accept_probability(delta, temp):
                    state.population, state.scores = neighbours[pick : pick + 1].clone(), scores[pick : pick + 1]
                state.improve(neighbours, scores)
                state.step += 1
                state.evaluations += batch
                state.history["step"].append(state.step)
                state.history["best"].append(state.best_score)
                state.history["current"].append(float(state.scores[0]))
                bar.update(1, best=state.best_score)
                search.save(state)
        return search.finish(state, output_size)


NODES = [genetic, anneal]
