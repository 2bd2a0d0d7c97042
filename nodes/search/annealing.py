"""evolve.anneal: simulated annealing over a genome's pictures, one shape moved at a time."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from artgraph import Context, Int, NodeError, Objective, Param, Str, node
from artgraph import Float as FloatT

from .genomes import Genome
from .harness import _CHECKPOINT_PARAMS, _INPUTS, _SIZE_PARAMS, SearchState, _outputs, _Search

SCHEDULES = ("exponential", "linear")


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


def _check_anneal(params: Mapping[str, object]) -> list[tuple[str, str]]:
    start, end, schedule = params.get("t_start"), params.get("t_end"), params.get("schedule")
    if isinstance(start, float) and isinstance(end, float):
        if end > start:
            return [(f"'t_end' ({end}) is above 't_start' ({start})", "annealing cools: make t_end smaller")]
        if schedule == "exponential" and end <= 0:
            return [("an exponential schedule cannot reach 0", "set t_end above 0, or use schedule: linear")]
    return []


@node(
    "evolve.anneal",
    seeded=True,
    category="search",
    inputs=_INPUTS,
    params={
        "steps": Param(Int, 3000, min=0),
        **_SIZE_PARAMS,
        "t_start": Param(FloatT, 0.01, min=0.0, description="starting temperature, relative to the first score"),
        "t_end": Param(FloatT, 1e-5, min=0.0, description="final temperature, relative to the first score"),
        "schedule": Param(Str, "exponential", choices=SCHEDULES),
        "batch": Param(Int, 8, min=1, max=100_000, description="neighbours scored per step (the best one is proposed)"),
        "sigma": Param(FloatT, 0.1, min=0.0, max=1.0, description="size of a move: std of the change to one shape"),
        **_CHECKPOINT_PARAMS,
    },
    outputs=_outputs("per step: step, best, current"),
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
    checkpoint: str = "checkpoints/evolve.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Simulated annealing: move one shape at a time, sometimes accepting a worse picture while hot.

    Temperatures are relative to the first picture's score, so the same schedule
    suits a pixel distance of 0.05 and a style loss of 5,000: a move that makes the
    score worse by ``d`` is taken with probability ``exp(-d / (T · |first score|))``.
    """
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
                search.show(state)
                search.save(state)
        return search.finish(state, output_size)
