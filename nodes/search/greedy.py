"""evolve.greedy: paint with one shape at a time, as fogleman's primitive does.

The genome's shapes are placed in order, each once and for good. For each, the
best of ``candidates`` random shapes is refined by ``climb`` mutations (hill
climbing, in rounds of ``batch`` mutations of the best shape so far: the best of
a round is kept when it is better), and drawn over the picture so far if the
objective, scoring the new picture, says it is better. Otherwise the shape stays
transparent: a shape never makes the picture worse.

Candidates are scored in batches on the device: a round's shapes are drawn over
the picture so far together and the objective scores them in one call. With
``objective.pixel`` a candidate's colour is not searched but solved
(colour_fit.py): the alpha-blended colour that best fits the target under the
shape. For its plain mean squared error even drawing is skipped: colours and
scores come from one matrix product per round, each candidate also gets the
best of four opacities (¼, ½, ¾ or all of ``alpha_max``) for free, and the
random candidates' points (corners, centres) fall where the picture is most
wrong (pixels drawn with odds proportional to their squared error). With any
other objective colour and opacity are genes, mutated like the others, and
candidates are uniformly random.

A mutation moves one gene, or one of the genome's points (a corner's x and y
together), by N(0, s²); the mutations take turns at four sizes of move, s =
``sigma``, ``sigma``/2, /4 and /8, so every round both explores and refines, and
the whole cycle shrinks to a quarter over each shape's climb (explore first,
refine last, as evolve.genetic's schedule does over a run).

The pictures are drawn as the genome's ``torch`` renderer draws them (pixel
centres), whatever its ``renderer``: the output image is exactly the picture
that was scored.
"""

from __future__ import annotations

import math

import torch

from artgraph import Context, Int, NodeError, Objective, Param, node
from artgraph import Float as FloatT

from .colour_fit import ColourFit, PixelDelta
from .genomes import Genome, blend
from .harness import _CHECKPOINT_PARAMS, _INPUTS, _SIZE_PARAMS, Scorer, SearchState, _outputs, _Search

#: The opacities (shares of ``alpha_max``) a shape chooses from when scores come in closed form.
OPACITY_LEVELS = (0.25, 0.5, 0.75, 1.0)
#: Mutations take turns at this many sizes of move: sigma, sigma/2, sigma/4, sigma/8.
MOVE_SIZES = 4
#: Over one shape's climb the moves shrink to this share of their first size (measured at 64 px,
#: 50 triangles, 3 photos × 2 seeds: +0.1 to +0.65 dB over a fixed cycle at 20,000 scored
#: shapes, within ±0.2 dB at 4,800).
CLIMB_DECAY = 0.25


class Painter:
    """The picture so far, and candidate shapes scored over it in batches."""

    def __init__(self, genome: Genome, scorer: Scorer, objective: Objective) -> None:
        self.genome, self.scorer = genome, scorer
        self.size, self.device = scorer.size, scorer.device
        self.delta = PixelDelta.of(objective, self.size, self.device)
        self.fit = None if self.delta else ColourFit.of(objective, self.size, self.device)
        self.levels = torch.tensor(OPACITY_LEVELS, device=self.device)
        background = torch.tensor(genome.background, device=self.device, dtype=torch.float32)
        self.set_canvas(background.view(1, 3, 1, 1).expand(1, 3, *self.size).clone())

    @property
    def mutable_genes(self) -> torch.Tensor:
        """The genes hill climbing moves: all but those solved (colour; opacity in closed form)."""
        genes = torch.arange(self.genome.genes)
        if self.delta is not None:
            return genes[:-4]
        if self.fit is not None:
            return torch.cat([genes[:-4], genes[-1:]])
        return genes

    def random_shapes(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` random shapes ``[count, genes]`` (CPU). Where the picture's error per pixel is
        known (``objective.pixel``), their points (corners, centres) fall on pixels drawn with
        odds proportional to it: new shapes go where the picture is most wrong."""
        shapes = torch.rand(count, self.genome.genes, generator=generator)
        if self.delta is not None:
            height, width = self.size
            odds = self.delta.errors + 1e-12  # a perfect picture: anywhere
            for x, y in self.genome.points:
                pixel = torch.multinomial(odds, count, replacement=True, generator=generator)
                shapes[:, x] = ((pixel % width).float() + shapes[:, x]) / width  # the uniform gene: where in it
                shapes[:, y] = ((pixel // width).float() + shapes[:, y]) / height
        return shapes

    def set_canvas(self, canvas: torch.Tensor) -> None:
        """Make ``canvas`` ``[1, 3, H, W]`` the picture so far."""
        self.canvas = canvas
        if self.delta is not None:
            self.delta.set_canvas(canvas)

    def _parts(self, shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Coverage ``[B, H, W]``, opacity ``[B]`` and colour ``[B, 3]`` of shapes ``[B, genes]``."""
        cover = self.genome.shape_coverage(shapes, self.size)
        return cover, shapes[:, -1] * self.genome.alpha_max, shapes[:, -4:-1]

    def score(self, shapes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shapes ``[N, genes]`` (CPU) with their solved genes filled in, and their scores ``[N]``
        (float64, CPU; NaN and infinity become +inf and are counted by the scorer)."""
        solved, scores = [], []
        with torch.no_grad():
            for part in shapes.to(self.device, torch.float32).split(self.scorer.chunk):
                cover, alpha, colour = self._parts(part)
                if self.delta is not None:
                    opacity = self.levels.expand(len(part), -1)
                    colour, pick, part_scores = self.delta.solve(cover, opacity * self.genome.alpha_max, colour)
                    part = torch.cat([part[:, :-4], colour, self.levels[pick].unsqueeze(1)], 1)
                else:
                    if self.fit is not None:
                        colour = self.fit.solve(self.canvas, cover, alpha, colour)
                        part = torch.cat([part[:, :-4], colour, part[:, -1:]], 1)
                    part_scores = self.scorer.score_images(blend(self.canvas, cover, alpha, colour))
                solved.append(part)
                scores.append(part_scores)
        return torch.cat(solved).cpu(), self.scorer.tally(torch.cat(scores).cpu())

    def draw(self, shape: torch.Tensor) -> torch.Tensor:
        """The picture so far with ``shape`` ``[genes]`` drawn over it, ``[1, 3, H, W]``."""
        with torch.no_grad():
            cover, alpha, colour = self._parts(shape.to(self.device, torch.float32).unsqueeze(0))
            return blend(self.canvas, cover, alpha, colour)

    def judge(self, picture: torch.Tensor) -> float:
        """The objective's score of one picture (+inf, counted, when it is not finite)."""
        with torch.no_grad():
            return float(self.scorer.tally(self.scorer.score_images(picture))[0])


def mutate_shape(shape: torch.Tensor, which: torch.Tensor, noise: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """Copies of ``shape`` ``[genes]``, one per entry of ``which``: gene ``which[i]`` moved by
    ``noise[i, 0]`` and its ``partner`` (itself when it has none) by ``noise[i, 1]``; kept in [0, 1]."""
    rows = torch.arange(len(which))
    out = shape.unsqueeze(0).repeat(len(which), 1)
    out[rows, which] += noise[:, 0]
    other = partner[which]
    out[rows, other] += torch.where(other != which, noise[:, 1], 0.0)
    return out.clamp_(0.0, 1.0)


def partners(genome: Genome) -> torch.Tensor:
    """For each gene of a shape, the gene a mutation moves with it: the other coordinate of its
    point (a corner, a centre), else itself."""
    partner = torch.arange(genome.genes)
    for a, b in genome.points:
        partner[a], partner[b] = b, a
    return partner


def move_scales(climb: int, sigma: float) -> torch.Tensor:
    """The size (std) of each of ``climb`` mutations: they take turns at ``sigma``, /2, /4 and
    /8, and the whole cycle shrinks geometrically to ``CLIMB_DECAY`` of itself over the climb —
    explore while the shape is rough, refine once it has found its place."""
    step = torch.arange(climb)
    cycle = torch.exp2(-(step % MOVE_SIZES).float())
    return sigma * cycle * CLIMB_DECAY ** (step / max(climb - 1, 1))


def best_shape(
    painter: Painter,
    candidates: int,
    climb: int,
    batch: int,
    sigma: float,
    generator: torch.Generator,
    ctx: Context | None = None,
) -> tuple[torch.Tensor, float]:
    """The best of ``candidates`` random shapes, hill-climbed by ``climb`` mutations in rounds of
    ``batch``; with its score (+inf when every one scored NaN)."""
    genome = painter.genome
    shapes, scores = painter.score(painter.random_shapes(candidates, generator))
    pick = int(torch.argmin(scores))
    best, best_score = shapes[pick], float(scores[pick])
    genes, partner = painter.mutable_genes, partners(genome)
    which = genes[torch.randint(0, len(genes), (climb,), generator=generator)]
    noise = torch.randn(climb, 2, generator=generator) * move_scales(climb, sigma).unsqueeze(1)
    for start in range(0, climb, batch):
        if ctx is not None:
            ctx.stop_if_cancelled()
        end = min(start + batch, climb)
        shapes, scores = painter.score(mutate_shape(best, which[start:end], noise[start:end], partner))
        pick = int(torch.argmin(scores))
        if float(scores[pick]) < best_score:
            best, best_score = shapes[pick], float(scores[pick])
    return best, best_score


@node(
    "evolve.greedy",
    seeded=True,
    category="search",
    inputs=_INPUTS,
    params={
        "candidates": Param(Int, 64, min=1, max=100_000, description="random shapes tried for each shape placed"),
        "climb": Param(
            Int, 320, min=0, max=10_000_000, description="mutations of the best candidate (hill climbing; 0: none)"
        ),
        "batch": Param(Int, 16, min=1, max=100_000, description="mutations scored together per round of climbing"),
        "sigma": Param(FloatT, 0.5, min=0.0, max=1.0, description="largest move of a mutation (std; also /2, /4, /8)"),
        **_SIZE_PARAMS,
        **_CHECKPOINT_PARAMS,
    },
    outputs=_outputs("per shape: step (shapes placed so far) and best (the picture's score)"),
)
def greedy(
    ctx: Context,
    genome: Genome,
    objective: Objective,
    candidates: int = 64,
    climb: int = 320,
    batch: int = 16,
    sigma: float = 0.5,
    size: int = 64,
    output_size: int = 0,
    checkpoint: str = "checkpoints/evolve.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Paint one shape at a time (fogleman's primitive): each the best of random candidates,
    hill-climbed, and kept only if it makes the picture better.

    Each shape costs ``candidates + climb`` scored candidates: a genome of N shapes
    costs N × (candidates + climb). With ``objective.pixel`` colours are solved, not
    searched. A shape that would not improve the picture stays transparent.
    """
    search = _Search(ctx, "greedy", genome, objective, size, checkpoint, checkpoint_every)
    search.renderer = "torch"  # the picture painted shape by shape is the torch renderer's
    painter = Painter(genome, search.score, objective)
    with search.running():
        if resume:
            state = search.resume(resume)
            painter.set_canvas(search.draw(state.best, search.shape))
        else:
            first = painter.judge(painter.canvas)
            blank = torch.zeros(genome.dims)  # opacity 0: a shape not placed (yet) draws nothing
            scores = torch.tensor([first], dtype=torch.float64)
            state = SearchState("greedy", blank.unsqueeze(0).clone(), scores, blank, first)
            state.history = {"step": [0], "best": [first]}
            state.extra = {"skipped": 0.0}
        with ctx.progress(max(genome.count - state.step, 0), "painting") as bar:
            while state.step < genome.count:
                scored = search.score.evaluations
                shape, score = best_shape(painter, candidates, climb, batch, sigma, search.rng, ctx)
                if not math.isfinite(score) and not math.isfinite(state.best_score):
                    raise NodeError("the objective gave NaN or infinity for the background and every candidate")
                picture = painter.draw(shape)
                if score < state.best_score and (judged := painter.judge(picture)) < state.best_score:
                    painter.set_canvas(picture)
                    state.best = state.best.clone()
                    state.best.view(genome.count, genome.genes)[state.step] = shape
                    state.best_score = judged
                else:
                    state.extra["skipped"] += 1
                state.population = state.best.unsqueeze(0).clone()  # the one individual (stored apart)
                state.scores = torch.tensor([state.best_score], dtype=torch.float64)
                state.step += 1
                state.evaluations += search.score.evaluations - scored
                state.history["step"].append(state.step)
                state.history["best"].append(state.best_score)
                bar.update(1, best=state.best_score)
                ctx.preview(painter.canvas)
                search.save(state)
        if state.extra["skipped"]:
            ctx.log.info("%d of %d shapes would not improve the picture", state.extra["skipped"], genome.count)
        return search.finish(state, output_size)
