"""What the evolutionary searches share: batched scoring, search state and checkpoints,
the ``_Search`` harness, and the params of the search nodes (genetic_algorithm.py,
annealing.py, greedy.py).

The searches minimise an :class:`~artgraph.Objective` over a
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

from artgraph import Context, Dict, Image, Input, Int, NodeError, Objective, ObjectiveType, Output, Param
from artgraph import Path as PathT
from artgraph import Tensor as TensorT

from .._tensorfile import read_safetensors, write_safetensors
from .genomes import Genome, GenomeType, render_size
from .hints import is_compute_bound, target_aspect

CHECKPOINT_FORMAT = "artgraph.search.checkpoint"
#: Images of at most this many pixels in total are scored in one call of the objective.
_SCORE_PIXELS = 1 << 21


# -- scoring ------------------------------------------------------------------------


class Scorer:
    """Renders and scores populations in batches; counts evaluations and bad scores."""

    def __init__(self, genome: Genome, objective: Objective, size: tuple[int, int], device: torch.device) -> None:
        self.genome, self.objective, self.size, self.device = genome, objective, size, device
        self.evaluations = 0
        self.non_finite = 0
        #: The renderer that draws what is scored; None: the genome's own.
        self.renderer: str | None = None

    @property
    def chunk(self) -> int:
        """Pictures scored per call of the objective (bounds memory)."""
        height, width = self.size
        return max(1, _SCORE_PIXELS // (height * width))

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        """Scores ``[P]`` (float64, CPU; non-finite scores become +inf)."""
        with torch.no_grad():
            parts = [
                self.score_images(self.genome.render(part, self.size, self.device, self.renderer))
                for part in params.split(self.chunk)
            ]
        return self.tally(torch.cat(parts))

    def score_images(self, images: torch.Tensor) -> torch.Tensor:
        """The objective's scores of ``images`` ``[B, 3, H, W]``: ``[B]``, float64 on the CPU, as given."""
        scores = self.objective(images)
        if not isinstance(scores, torch.Tensor) or scores.shape != (len(images),):
            shape = list(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise NodeError(
                f"the objective gave {shape} for {len(images)} images; "
                "an objective must give one score per image, shape [B]"
            )
        return scores.detach().to("cpu", torch.float64)

    def tally(self, scores: torch.Tensor) -> torch.Tensor:
        """Count the evaluations and the non-finite scores, which become +inf (the worst)."""
        bad = ~torch.isfinite(scores)
        if bad.any():
            self.non_finite += int(bad.sum())
            scores = scores.masked_fill(bad, math.inf)
        self.evaluations += len(scores)
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
    """What the searches share: render size, batched scorer, checkpoints, the final picture."""

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
        self.aspect = target_aspect(objective)
        self.shape = render_size(size, self.aspect)
        self.score = Scorer(genome, objective, self.shape, ctx.device)
        self.rng = ctx.rng
        #: The renderer of the previews and the output image; None: the genome's own.
        self.renderer: str | None = None

    def show(self, state: SearchState) -> None:
        """The best picture so far, as the node's preview (rendered only when one is due)."""
        self.ctx.preview(lambda: self.draw(state.best, self.shape))

    def draw(self, params: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One genome ``[dims]`` drawn as ``[1, 3, H, W]`` on the device."""
        return self.genome.render(params.unsqueeze(0), size, self.ctx.device, self.renderer)

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
        single = self.ctx.device.type == "cpu" and not is_compute_bound(self.score.objective)
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
        return self.draw(state.best, out), state.best, state.history


# -- ports and params of the search nodes -------------------------------------------------

_INPUTS = {"genome": Input(GenomeType), "objective": Input(ObjectiveType, description="lower is better")}


def _outputs(history: str) -> dict[str, Output]:
    """The outputs of a search: the best picture, its genes, and ``history`` (what each step records)."""
    return {
        "image": Output(Image, "the best picture found, rendered"),
        "best": Output(TensorT, "its parameters [dims]"),
        "history": Output(Dict, history),
    }


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
