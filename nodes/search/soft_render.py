"""A differentiable renderer for every genome: soft edges that sharpen into the hard picture.

The ``torch`` renderer covers a pixel when its centre is inside a shape: a step
function of the shape's genes, whose gradient is zero almost everywhere. Here a
shape covers a pixel by ``sigmoid(d / softness)``, where ``d`` is how far inside
the shape the pixel centre is, in pixels (the genome's ``signed_distance``,
negative outside). The shapes are then alpha-composited in order exactly as
the ``torch`` renderer composites them (:func:`~.genomes.blend`), each over
the pixels its edge can reach, so every gene — corners, centres, radii,
angles, colours, opacities — gets a gradient from any differentiable objective.

``softness`` is the width of the edge in pixels. Wide edges let a shape feel
pixels a little beyond its outline (so a gradient can move it); as the
softness falls towards 0 the coverage becomes the step function and the picture
becomes the ``torch`` renderer's: :func:`softness` sharpens the edges over an
optimisation, from :data:`SOFT_START` to :data:`SOFT_END` px.
"""

from __future__ import annotations

import torch

from .genomes import Genome, _pixel_centres, blend

#: Edge width (px at the render size) at the first step of a polish, and at the last.
SOFT_START, SOFT_END = 1.0, 0.05
#: A shape is drawn this many edge widths (+ 1 px) beyond its outline's bounding box:
#: sigmoid(-10) < 1e-4.
EDGE_REACH = 10.0


def softness(step: int, steps: int, start: float = SOFT_START, end: float = SOFT_END) -> float:
    """The edge width at ``step`` of ``steps``: from ``start`` down to ``end``, geometrically."""
    progress = step / max(steps - 1, 1)
    return start * (end / start) ** min(max(progress, 0.0), 1.0)


def soft_coverage(genome: Genome, params: torch.Tensor, size: tuple[int, int], soft: float) -> torch.Tensor:
    """``[P, T, H, W]`` in (0, 1): how much each shape of ``params`` ``[P, dims]`` covers each pixel
    (every shape over the whole picture: for tests and pictures of the edges, not for speed)."""
    height, width = size
    xs, ys = _pixel_centres(height, width, params.device)
    shapes = params.view(len(params), genome.count, genome.genes)
    return torch.sigmoid(genome.signed_distance(shapes[..., :-4], xs, ys, height, width, scale=1.0 / soft))


def windows(
    genome: Genome, params: torch.Tensor, size: tuple[int, int], soft: float
) -> list[tuple[int, int, int, int]]:
    """Per shape, the pixels ``(x0, y0, x1, y1)`` (end excluded) where its soft edge can reach:
    its outline's bounding box, grown by :data:`EDGE_REACH` edge widths, within the picture
    (the same for every picture of the batch: the union of theirs)."""
    height, width = size
    shapes = params.detach().view(len(params), genome.count, genome.genes)
    box = genome.bounding_box(shapes[..., :-4], height, width).to("cpu", torch.float64)  # [P, T, 4]
    reach = EDGE_REACH * soft + 1.0
    low, high = (box[..., :2].amin(0) - reach).floor(), (box[..., 2:].amax(0) + reach).ceil()
    limit = torch.tensor([width, height], dtype=torch.float64)
    low, high = low.clamp(min=0).minimum(limit), high.clamp(min=0).minimum(limit)
    return [(int(a), int(b), int(c), int(d)) for (a, b), (c, d) in zip(low.tolist(), high.tolist(), strict=True)]


def soft_render(genome: Genome, params: torch.Tensor, size: tuple[int, int], soft: float) -> torch.Tensor:
    """Draw ``params`` ``[P, dims]`` as ``[P, 3, H, W]`` with edges ``soft`` px wide; differentiable
    in ``params``. Composited as the ``torch`` renderer composites, later shapes on top.

    Each shape is drawn only over the pixels its edge can reach (:func:`windows`):
    beyond them its coverage is under 1e-4 and counts as 0. A polish of 240 small
    strokes at 128 px runs about ten times faster so than testing every shape
    against every pixel."""
    if params.ndim != 2 or params.shape[1] != genome.dims:
        raise ValueError(f"expected genomes of shape [P, {genome.dims}] for {genome}, got {list(params.shape)}")
    height, width = size
    xs, ys = _pixel_centres(height, width, params.device)
    shapes = params.view(len(params), genome.count, genome.genes)
    geometry, alpha, colour = shapes[..., :-4], shapes[..., -1] * genome.alpha_max, shapes[..., -4:-1]
    background = torch.tensor(genome.background, device=params.device, dtype=params.dtype)
    picture = background.view(1, 3, 1, 1).expand(len(params), 3, height, width).clone()
    for t, (x0, y0, x1, y1) in enumerate(windows(genome, params, size, soft)):
        if x1 <= x0 or y1 <= y0:
            continue  # wholly outside the picture
        distance = genome.signed_distance(
            geometry[:, t : t + 1], xs[..., x0:x1], ys[..., y0:y1, :], height, width, scale=1.0 / soft
        )
        under = picture[:, :, y0:y1, x0:x1].clone()
        picture[:, :, y0:y1, x0:x1] = blend(under, torch.sigmoid(distance[:, 0]), alpha[:, t], colour[:, t])
    return picture
