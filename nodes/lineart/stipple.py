"""Stippling: an image as points, dense where it is dark (``points.stipple``).

Points are drawn with probability proportional to darkness, then spread by
weighted Lloyd relaxation (Secord's weighted Voronoi stippling) so they look
placed by hand rather than sprinkled; they feed ``evolve.ant_colony`` for
single-line drawings.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention

from artgraph import Bool, Context, Image, Input, Int, NodeError, Param, node
from artgraph import Float as FloatT

from .tour import Points, PointSet


def _luminance(image: torch.Tensor) -> torch.Tensor:
    """One image [C,H,W] as luminance [H,W] in [0,1]; transparency shows as white paper."""
    channels = image.shape[0]
    if channels not in (1, 2, 3, 4):
        raise NodeError(f"cannot stipple an image with {channels} channels; give a gray, RGB or RGBA image")
    colour, alpha = (image[:-1], image[-1]) if channels in (2, 4) else (image, None)
    if colour.shape[0] == 3:
        lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    else:
        lum = colour[0]
    if alpha is not None:
        lum = lum * alpha + (1.0 - alpha)
    return lum.clamp(0.0, 1.0)


#: Most pixels the relaxation looks at; larger images are averaged down for it (at least 32 per point).
RELAX_PIXELS = 65_536
#: Each pixel's nearest point is looked for among its last one's this many nearest points.
RELAX_NEIGHBOURS = 16


def _knn(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's ``k`` nearest other points [N,k] (torch, chunked: fast for many points)."""
    n = len(points)
    k = max(1, min(k, n - 1))
    pts = torch.from_numpy(points).float()
    chunk = max(1, 4_000_000 // n)
    out = []
    for start in range(0, n, chunk):
        d = torch.cdist(pts[start : start + chunk], pts)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = math.inf
        out.append(d.topk(k, dim=1, largest=False).indices)
    return torch.cat(out).numpy()


def _assign(sx: np.ndarray, sy: np.ndarray, points: np.ndarray, knn: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Each pixel's nearest point, by walking the points' neighbour graph from a first guess.

    A pixel hops to whichever of its current point's nearest points is closer,
    until none is: O(pixels × k) per hop instead of O(pixels × points). The walk
    can stop short (about one pixel in a thousand, by a pixel or two); the
    relaxation does not mind, and the next iteration walks on from there.
    """
    every = np.arange(len(label))
    for _ in range(32):
        cand = np.concatenate([label[:, None], knn[label]], axis=1)
        d = (sx[:, None] - points[cand, 0]) ** 2 + (sy[:, None] - points[cand, 1]) ** 2
        better = cand[every, d.argmin(1)]
        if np.array_equal(better, label):
            break
        label = better
    return label


def _first_guess(sx: np.ndarray, sy: np.ndarray, points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each pixel's nearest point on a coarse grid of about four cells per point."""
    height, width = shape
    block = max(2, math.floor(math.sqrt(height * width / max(1, len(points))) / 2))
    ch, cw = math.ceil(height / block), math.ceil(width / block)
    gy, gx = np.meshgrid((np.arange(ch) + 0.5) * block, (np.arange(cw) + 0.5) * block, indexing="ij")
    centres = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
    chunk = max(1, 4_000_000 // len(points))
    pts = torch.from_numpy(points).float()
    nearest = torch.cat([torch.cdist(centres[s : s + chunk], pts).argmin(1) for s in range(0, len(centres), chunk)])
    cell = (sy // block).astype(np.int64) * cw + (sx // block).astype(np.int64)
    return nearest.numpy()[cell]


def _relax(ctx: Context, weight: torch.Tensor, points: np.ndarray, iterations: int) -> np.ndarray:
    """Weighted Lloyd relaxation (Secord's stippling): move each point to its cell's centroid.

    Each pixel belongs to its nearest point; the point moves to the darkness-
    weighted centre of its pixels. Repeated, points spread evenly while still
    following the tone, instead of clumping as random draws do.
    """
    height, width = weight.shape
    budget = max(RELAX_PIXELS, 32 * len(points))
    factor = max(1.0, math.sqrt(height * width / budget))
    small_h, small_w = max(1, round(height / factor)), max(1, round(width / factor))
    if (small_h, small_w) != (height, width):
        weight = F.interpolate(weight[None, None].float(), size=(small_h, small_w), mode="area")[0, 0]
    scale = np.array([width / small_w, height / small_h])
    rows, cols = np.nonzero(weight.double().numpy() > 0)
    mass = weight.double().numpy()[rows, cols]
    sx, sy = cols + 0.5, rows + 0.5  # pixel centres, in the (small) grid's units
    grid_pts = points / scale
    n = len(points)
    label = _first_guess(sx, sy, grid_pts, (small_h, small_w))
    anchor, reach = grid_pts, 0.0
    with ctx.progress(iterations, "relax") as bar:
        for _ in range(iterations):
            if reach == 0.0 or np.hypot(*(grid_pts - anchor).T).mean() > reach:
                # The neighbour lists only steer the search, so they are renewed once points
                # have moved a quarter of their spacing, not on every iteration.
                knn = _knn(grid_pts, RELAX_NEIGHBOURS)
                anchor = grid_pts
                reach = max(0.25 * float(np.hypot(*(grid_pts[knn[:, 0]] - grid_pts).T).mean()), 1e-9)
            label = _assign(sx, sy, grid_pts, knn, label)
            cell = np.bincount(label, mass, minlength=n)
            has = cell > 0
            moved = grid_pts.copy()
            moved[has, 0] = np.bincount(label, mass * sx, minlength=n)[has] / cell[has]
            moved[has, 1] = np.bincount(label, mass * sy, minlength=n)[has] / cell[has]
            shift = float(np.hypot(*((moved - grid_pts) * scale).T).mean())
            grid_pts = moved
            bar.update(1, shift=shift)
    return grid_pts * scale


@node(
    "points.stipple",
    seeded=True,
    category="lineart",
    inputs={"image": Input(Image, description="the picture to stipple (the first image of the batch)")},
    params={
        "count": Param(Int, 1000, min=3, max=20_000, description="how many points"),
        "seed": Param(Int, 0, min=0, description="random seed of the point draw"),
        "invert": Param(Bool, False, description="false: dark areas get more points; true: light areas"),
        "relax": Param(Int, 10, min=0, max=1000, description="weighted Lloyd iterations that spread points evenly"),
        "gamma": Param(FloatT, 2.0, min=0.1, max=10.0, description="contrast: points follow darkness ** gamma"),
    },
    outputs={"points": Points},
)
def stipple(
    ctx: Context, image: torch.Tensor, count: int, seed: int, invert: bool, relax: int, gamma: float = 2.0
) -> PointSet:
    """Scatter points with density following the image's darkness, then even them out.

    A point lands in a pixel with probability proportional to its darkness (its
    lightness with ``invert``), jittered inside the pixel; weighted Lloyd
    relaxation then spreads them like hand stippling, so a tour through them
    reproduces the picture's tones. Relaxation evens density out (it settles near
    the square root of the weight), hence ``gamma``: the weight is darkness raised
    to it, and the default 2 gives a density that follows the darkness itself.
    """
    if image.ndim != 4 or image.shape[0] < 1:
        raise NodeError(f"expected an image batch [B,C,H,W], got shape {list(image.shape)}")
    if image.shape[0] > 1:
        ctx.log.warning("stippling the first of %d images", image.shape[0])
    lum = _luminance(image[0].detach().float().cpu())
    weight = (lum if invert else 1.0 - lum) ** gamma
    total = float(weight.double().sum())
    if not total > 0.0:
        if invert:
            raise NodeError("the image is black everywhere: there is nothing light to stipple; set 'invert: false'")
        raise NodeError("the image is white everywhere: there is nothing dark to stipple; set 'invert: true'")
    height, width = weight.shape
    rng = np.random.default_rng(seed)
    flat = weight.double().flatten().numpy()
    picked = rng.choice(flat.size, size=count, p=flat / flat.sum())
    jitter = rng.random((count, 2))
    points = np.stack([picked % width + jitter[:, 0], picked // width + jitter[:, 1]], axis=1)
    if relax > 0:
        points = _relax(ctx, weight, points, relax)
    ctx.log.info("stippled %d points on %dx%d", count, width, height)
    return PointSet(torch.from_numpy(points).float(), int(width), int(height))
