"""Single-line drawings ("TSP art"): points, tours, and the line that draws them.

An image becomes a few hundred or thousand points, dense where the image is dark
(``points.stipple``, stipple.py); a closed tour through every point, as
short as we can make it, becomes one continuous line that never lifts the pen
(``evolve.ant_colony``, whose search lives in tsp.py), and ``tour.render``
draws that line. A short tour matters: long jumps across the picture show as
stray strokes, so the tour search is the heart of the effect.

Points live in the source image's pixel units (x right, y down), with the
image's width and height alongside, so a tour can be drawn at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageColor, ImageDraw

from artgraph import Bool, Context, Dict, Image, Input, Int, NodeError, Param, PortType, Str, node
from artgraph import Float as FloatT

from .._colour import colour
from .._imageio import long_side_size, pil_to_tensor
from .tsp import ant_colony_tour

# -- types ------------------------------------------------------------------


@dataclass(eq=False)
class PointSet:
    """Points ``[N,2]`` (x, y) in the source image's pixel units, and that image's size."""

    points: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``data.save``: ``{"points": [[x, y], ...], "width": W, "height": H}``."""
        return {"points": self.points.detach().cpu().tolist(), "width": self.width, "height": self.height}

    def __repr__(self) -> str:
        return f"PointSet({len(self)} points in {self.width}x{self.height})"


@dataclass(eq=False)
class Tour:
    """A closed tour: the points, the visiting order (a permutation) and its length in pixels."""

    points: torch.Tensor
    order: torch.Tensor
    length: float
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``data.save``: the points, the order, the length and the image size."""
        return {
            "points": self.points.detach().cpu().tolist(),
            "order": self.order.detach().cpu().tolist(),
            "length": self.length,
            "width": self.width,
            "height": self.height,
        }

    def __repr__(self) -> str:
        return f"Tour({len(self)} points, length {self.length:.1f} in {self.width}x{self.height})"


def _points_problem(points: object, width: object, height: object) -> str | None:
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 2:
        shape = list(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        return f"expected points as a tensor [N,2], got {shape}"
    if not points.is_floating_point():
        return f"expected float points, got dtype {points.dtype}"
    for name, size in (("width", width), ("height", height)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            return f"expected a positive whole {name}, got {size!r}"
    return None


def _check_points(value: object) -> str | None:
    if not isinstance(value, PointSet):
        return f"expected points (artgraph.nodes.lineart.tour.PointSet), got {type(value).__name__}"
    return _points_problem(value.points, value.width, value.height)


def _check_tour(value: object) -> str | None:
    if not isinstance(value, Tour):
        return f"expected a tour (artgraph.nodes.lineart.tour.Tour), got {type(value).__name__}"
    problem = _points_problem(value.points, value.width, value.height)
    if problem is not None:
        return problem
    order = value.order
    if not isinstance(order, torch.Tensor) or order.ndim != 1 or order.shape[0] != value.points.shape[0]:
        return f"expected the tour's order as a tensor [{value.points.shape[0]}], one entry per point"
    return None


Points = PortType(
    "Points",
    "PointSet(points [N,2] (x, y) in source-image pixels, width, height); memory cache only",
    value=_check_points,
)
TourT = PortType(
    "Tour",
    "Tour(points [N,2], order [N] (a permutation), length in pixels, width, height); memory cache only",
    value=_check_tour,
)


# -- nodes --------------------------------------------------------------------


@node(
    "evolve.ant_colony",
    seeded=True,
    category="lineart",
    inputs={"points": Input(Points, description="the points to visit")},
    params={
        "ants": Param(Int, 20, min=1, max=1000, description="ants per iteration, building tours together"),
        "iterations": Param(Int, 100, min=1, max=100_000, description="colony iterations"),
        "alpha": Param(FloatT, 1.0, min=0.0, max=10.0, description="pheromone influence"),
        "beta": Param(FloatT, 3.0, min=0.0, max=20.0, description="distance influence (short edges)"),
        "rho": Param(FloatT, 0.1, min=0.0, max=1.0, description="pheromone evaporation per iteration"),
        "two_opt": Param(Bool, True, description="polish each iteration's best tour and the final tour with 2-opt"),
        "seed": Param(Int, 0, min=0, description="random seed; the same seed gives the same tour"),
    },
    outputs={
        "tour": TourT,
        "length": FloatT,
        "history": Dict,
    },
)
def ant_colony(
    ctx: Context,
    points: PointSet,
    ants: int,
    iterations: int,
    alpha: float,
    beta: float,
    rho: float,
    two_opt: bool,
    seed: int,
) -> tuple[Tour, float, dict[str, list[float]]]:
    """Find a short closed tour through the points with an ant colony, polished by 2-opt.

    Ants walk short edges that earlier good tours used (pheromone), so the colony
    learns which edges belong together; 2-opt removes the crossings that remain.
    A shorter tour draws a cleaner single line. ``history`` holds the best-so-far
    and mean ant tour length per iteration, for ``history.plot``.
    """
    n = len(points)
    if n < 3:
        raise NodeError(f"a tour needs at least 3 points, got {n}; raise the stipple 'count'")
    with ctx.progress(iterations, "ants") as bar:
        result = ant_colony_tour(
            points.points,
            ants=ants,
            iterations=iterations,
            alpha=alpha,
            beta=beta,
            rho=rho,
            polish=two_opt,
            seed=seed,
            on_iteration=lambda _i, best, mean: bar.update(1, best=best, mean=mean),
        )
    ctx.log.info("tour through %d points: length %.1f px", n, result.length)
    tour = Tour(
        points.points.detach().cpu(),
        torch.from_numpy(result.order.copy()),
        result.length,
        points.width,
        points.height,
    )
    return tour, result.length, result.history


#: Drawing happens this many times larger, then shrinks (LANCZOS): an antialiased line.
SUPERSAMPLE = 4


@node(
    "tour.render",
    category="lineart",
    inputs={"tour": Input(TourT, description="the tour to draw")},
    params={
        "size": Param(Int, 512, min=8, max=16384, description="long side of the picture in pixels"),
        "width": Param(FloatT, 1.5, min=0.1, max=100.0, description="line width in output pixels"),
        "color": Param(Str, "black", rule=colour, description="line colour (a name, #rrggbb or rgb(...))"),
        "background": Param(Str, "white", rule=colour, description="paper colour"),
    },
    outputs={"image": Image},
)
def render(ctx: Context, tour: Tour, size: int, width: float, color: str, background: str) -> torch.Tensor:
    """Draw the tour as one closed, continuous, antialiased line: the single-line drawing.

    The picture keeps the source image's aspect; joints are rounded so sharp
    turns stay smooth, and drawing at 4× then shrinking gives clean edges.
    """
    ink = ImageColor.getcolor(color, "RGB")
    paper = ImageColor.getcolor(background, "RGB")
    out_h, out_w = long_side_size(tour.height, tour.width, size)
    canvas = PILImage.new("RGB", (out_w * SUPERSAMPLE, out_h * SUPERSAMPLE), paper)
    pts = tour.points.detach().cpu().double().numpy()[tour.order.detach().cpu().numpy()]
    pts = pts * np.array([out_w * SUPERSAMPLE / tour.width, out_h * SUPERSAMPLE / tour.height])
    if len(pts):
        line = [(float(x), float(y)) for x, y in pts] + [(float(pts[0, 0]), float(pts[0, 1]))]
        stroke = max(1, round(width * SUPERSAMPLE))
        ImageDraw.Draw(canvas).line(line, fill=ink, width=stroke, joint="curve")
    picture = canvas.resize((out_w, out_h), PILImage.Resampling.LANCZOS)
    return pil_to_tensor(picture).to(ctx.device)
