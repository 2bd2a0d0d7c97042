"""optimize.shapes: polish every shape of a genome at once by gradient, against any differentiable objective.

The searches (greedy, genetic, annealing, ES) only ask an objective for scores.
artgraph's objectives also have gradients, so the shapes themselves can follow
them: the genome is drawn by the soft renderer (soft_render.py: coverage from
signed distances, composited in order), the objective scores that picture, and
Adam moves every gene of every shape jointly. The edges sharpen over the steps
(from 1 px wide to 1/20 px), so the picture being optimised becomes the hard
one; genes are kept in [0, 1] after each step.

What counts is the hard picture: at ``EVALUATIONS`` evenly spaced steps (and
at the start and the end) the genome is drawn by its ``torch`` renderer and
scored, and the best genome so far is what the node returns. So the polish
never gives back a worse picture than its start, and ``history`` says what the
hard render scored.
"""

from __future__ import annotations

import math
from typing import cast

import torch

from artgraph import Context, Input, Int, NodeError, Objective, Param, node
from artgraph import Float as FloatT
from artgraph import Tensor as TensorT

from .genomes import Genome
from .harness import _INPUTS, _SIZE_PARAMS, SearchState, _outputs, _Search
from .hints import declared_non_differentiable
from .soft_render import soft_render, softness

#: The hard picture is scored at about this many evenly spaced steps (plus the start and the end).
EVALUATIONS = 100
#: Genes per shape of each kind of genome, for the message about an ``init`` of another genome.
_GENES = {"triangle": 10, "circle": 7, "stroke": 9}
SEARCHES = "evolve.greedy, evolve.genetic, evolve.anneal or evolve.es"


def _could_be(numbers: int) -> str:
    """What genomes have ``numbers`` genes: '70 triangles or 100 circles'."""
    kinds = [f"{numbers // genes} {kind}s" for kind, genes in _GENES.items() if numbers % genes == 0]
    return " or ".join(kinds) if kinds else "no genome of triangles, circles or strokes"


def check_init(genome: Genome, init: torch.Tensor) -> torch.Tensor:
    """``init`` as ``[dims]`` (float32, CPU), or a NodeError that names its genome and this one."""
    if not isinstance(init, torch.Tensor) or not init.is_floating_point():
        raise NodeError(f"'init' must be the 'best' of a search (a float tensor), got {type(init).__name__}")
    params = init.detach().to("cpu", torch.float32)
    if params.ndim == 2 and params.shape[0] == 1:
        params = params[0]
    if params.ndim != 1 or params.numel() != genome.dims:
        numbers = params.numel()
        raise NodeError(
            f"'init' is from another genome: {numbers} numbers of shape {list(params.shape)}, which is "
            f"{_could_be(numbers) if params.ndim == 1 else 'not a genome'}; this genome is {genome.count} "
            f"{genome.kind}s ({genome.genes} genes each, {genome.dims} numbers). Polish the 'best' of a search "
            "over this same genome"
        )
    if not torch.isfinite(params).all() or params.min() < 0.0 or params.max() > 1.0:
        raise NodeError(f"'init' holds values outside [0, 1] (or NaN): not the genes of {genome}")
    return params


def require_gradient(objective: Objective, terms: dict[str, torch.Tensor]) -> None:
    """Refuse an objective whose scores (or a term of them) carry no gradient to the picture."""
    flat = [name for name, value in terms.items() if not value.requires_grad]
    if flat:
        raise NodeError(
            f"the objective {objective.name!r} is not differentiable (no gradient from its term(s) "
            f"{', '.join(repr(n) for n in flat)}); optimize.shapes follows gradients. Use a search, which "
            f"needs only scores: {SEARCHES}"
        )


def _loss(objective: Objective, pictures: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    terms = objective.terms(pictures)
    total = cast(torch.Tensor, sum(terms.values()))
    return total.sum(), terms


@node(
    "optimize.shapes",
    seeded=True,
    category="search",
    inputs={
        **_INPUTS,
        "init": Input(
            TensorT, optional=True, description="the 'best' of any search over this genome; random if omitted"
        ),
    },
    params={
        "steps": Param(Int, 300, min=0, max=1_000_000, description="Adam steps (edges sharpen from 1 to 1/20 px)"),
        "lr": Param(FloatT, 0.005, min=0.0, max=1.0, description="Adam's learning rate (genes are in [0, 1])"),
        **_SIZE_PARAMS,
    },
    outputs=_outputs(
        "per scoring of the hard picture: step, best (its best score so far), score (now), soft (the soft loss)"
    ),
)
def shapes(
    ctx: Context,
    genome: Genome,
    objective: Objective,
    init: torch.Tensor | None = None,
    steps: int = 300,
    lr: float = 0.005,
    size: int = 64,
    output_size: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Polish all shapes jointly by gradient: a soft, differentiable drawing of the genome whose edges
    sharpen over the steps, Adam on every gene, the best hard picture kept.

    Give it the ``best`` of evolve.greedy (or any search) to refine, or nothing
    to start from random shapes. The objective must be differentiable (pixel,
    content, style, their sums, a plugin's differentiable score).
    """
    named = declared_non_differentiable(objective)
    if named:
        raise NodeError(
            f"the objective {objective.name!r} says it is not differentiable ({', '.join(named)}); "
            f"optimize.shapes follows gradients. Use a search, which needs only scores: {SEARCHES}"
        )
    search = _Search(ctx, "shapes", genome, objective, size, "", 0)
    search.renderer = search.score.renderer = "torch"  # the picture the soft renderer converges to
    score, device = search.score, ctx.device
    start = check_init(genome, init) if init is not None else genome.random(1, search.rng)[0]
    every = max(1, steps // EVALUATIONS)
    skipped = 0
    with search.running():
        first = float(score(start.unsqueeze(0))[0])
        if not math.isfinite(first):
            raise NodeError("the objective gave NaN or infinity for the starting picture")
        state = SearchState("shapes", start.unsqueeze(0), torch.tensor([first], dtype=torch.float64), start, first)
        state.history = {"step": [0], "best": [first], "score": [first], "soft": [math.nan]}
        params = start.to(device).unsqueeze(0).clone().requires_grad_(True)
        adam = torch.optim.Adam([params], lr=lr)
        with ctx.progress(steps, "polishing") as bar:
            for step in range(steps):
                ctx.stop_if_cancelled()
                adam.zero_grad(set_to_none=True)
                loss, terms = _loss(objective, soft_render(genome, params, search.shape, softness(step, steps)))
                if step == 0:
                    require_gradient(objective, terms)
                soft = float(loss.detach())
                if math.isfinite(soft):
                    loss.backward()
                if not math.isfinite(soft) or params.grad is None or not torch.isfinite(params.grad).all():
                    skipped += 1  # a NaN step moves nothing
                else:
                    adam.step()
                    with torch.no_grad():
                        params.clamp_(0.0, 1.0)
                del loss, terms
                if (step + 1) % every == 0 or step + 1 == steps:
                    current = params.detach().cpu()
                    scores = score(current)
                    state.improve(current, scores)
                    state.step, state.evaluations = step + 1, score.evaluations
                    for key, value in (("step", step + 1), ("best", state.best_score)):
                        state.history[key].append(value)
                    state.history["score"].append(float(scores[0]))
                    state.history["soft"].append(soft)
                    search.show(state)
                bar.update(1, best=state.best_score)
    if skipped:
        ctx.log.warning("%d of %d steps gave a NaN or infinite loss or gradient and were skipped", skipped, steps)
    return search.finish(state, output_size)
