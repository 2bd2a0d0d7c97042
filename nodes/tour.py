"""Single-line drawings ("TSP art"): stipple an image, find a short closed tour, draw it.

An image becomes a few hundred or thousand points, dense where the image is dark
(:func:`stipple`); a closed tour through every point, as short as we can make it,
becomes one continuous line that never lifts the pen (:func:`ant_colony`), and
:func:`render` draws that line. A short tour matters: long jumps across the
picture show as stray strokes, so the tour search is the heart of the effect.

The search is an Ant Colony System (Dorigo & Gambardella, 1997) polished with
2-opt, written with numpy so it stays fast in plain Python: the ants build their
tours together, one city per step for all ants at once, choosing among each
city's nearest neighbours (candidate lists); 2-opt scores the candidate moves of
the whole tour in one array expression and applies the best ones that do not
overlap, then checks every pair of edges before it stops. The plain
functions :func:`nearest_neighbour_tour`, :func:`two_opt` and
:func:`tour_length` are the classic baseline the colony is measured against.

Points live in the source image's pixel units (x right, y down), with the
image's width and height alongside, so a tour can be drawn at any size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from PIL import Image as PILImage
from PIL import ImageColor, ImageDraw

from artgraph import Bool, Context, Dict, Image, Input, Int, NodeError, Param, PortType, Str, node
from artgraph import Float as FloatT

from .imageio import long_side_size, pil_to_tensor

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
        return f"expected points (artgraph.nodes.tour.PointSet), got {type(value).__name__}"
    return _points_problem(value.points, value.width, value.height)


def _check_tour(value: object) -> str | None:
    if not isinstance(value, Tour):
        return f"expected a tour (artgraph.nodes.tour.Tour), got {type(value).__name__}"
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
TYPES = [Points, TourT]


# -- tour geometry: the baseline and the shared building blocks --------------


def _xy(points: object) -> np.ndarray:
    """Points as a float64 array [N,2] (a tensor, an array or a list of pairs)."""
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().double().numpy()
    xy = np.asarray(points, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"expected points [N,2], got shape {list(xy.shape)}")
    return xy


def tour_length(xy: object, order: object) -> float:
    """The length of the closed tour visiting ``xy`` in ``order`` (back to the start)."""
    pts = _xy(xy)[np.asarray(order, dtype=np.int64)]
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*(pts - np.roll(pts, -1, axis=0)).T).sum())


def nearest_neighbour_tour(xy: object, start: int = 0) -> np.ndarray:
    """The greedy tour: from ``start``, always walk to the nearest unvisited point.

    About 25% longer than optimal on random points; the colony seeds its
    pheromone from this length and the benchmark polishes it with 2-opt.
    """
    pts = _xy(xy)
    n = len(pts)
    order = np.empty(n, dtype=np.int64)
    if n == 0:
        return order
    left = np.ones(n, dtype=bool)
    current = start
    for step in range(n):
        order[step] = current
        left[current] = False
        if step == n - 1:
            break
        d = ((pts - pts[current]) ** 2).sum(1)
        d[~left] = np.inf
        current = int(d.argmin())
    return order


def _neighbours(xy: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``k`` nearest other points, nearest first, and their distances [N,k].

    Chunked so that 10,000 points never need a full distance matrix.
    """
    n = len(xy)
    k = max(1, min(k, n - 1))
    index = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k), dtype=np.float64)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        d = np.hypot(xy[start:stop, None, 0] - xy[None, :, 0], xy[start:stop, None, 1] - xy[None, :, 1])
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(d, axis=1)[:, :k]
        part_d = np.take_along_axis(d, part, axis=1)
        by = np.argsort(part_d, axis=1, kind="stable")
        index[start:stop] = np.take_along_axis(part, by, axis=1)
        dist[start:stop] = np.take_along_axis(part_d, by, axis=1)
    return index, dist


def _dist(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between points ``a`` and ``b`` (index arrays of the same shape)."""
    return np.hypot(x[a] - x[b], y[a] - y[b])


def _neighbour_moves(
    x: np.ndarray,
    y: np.ndarray,
    tour: np.ndarray,
    pos: np.ndarray,
    nbr: np.ndarray,
    nbr_d: np.ndarray,
    rows: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Improving 2-opt moves whose new edge joins a point to one of its near neighbours.

    Scores the points at tour positions ``rows`` against all their neighbours at
    once, both ways round (the new edge following the point, or preceding it). A
    move ``(lo, hi)`` removes the edges leaving tour positions ``lo`` and ``hi``
    (``lo < hi``) and reverses ``tour[lo+1 : hi+1]``. Returns ``lo``, ``hi``, gain.
    """
    n = len(tour)
    a = tour[rows]
    after = tour[(rows + 1) % n]
    before = tour[rows - 1]
    j = pos[nbr[a]]  # [R,k]: where each neighbour c sits
    c_after = tour[(j + 1) % n]
    c_before = tour[j - 1]
    cand_d = nbr_d[a]
    # New edges (a, c) and (after a, after c) replace (a, after a) and (c, after c).
    gain_next = (
        _dist(x, y, a, after)[:, None] + _dist(x, y, nbr[a], c_after) - cand_d - _dist(x, y, after[:, None], c_after)
    )
    # New edges (c, a) and (before c, before a) replace (before a, a) and (before c, c).
    gain_prev = (
        _dist(x, y, before, a)[:, None]
        + _dist(x, y, c_before, nbr[a])
        - cand_d
        - _dist(x, y, before[:, None], c_before)
    )
    r_next, k_next = np.nonzero(gain_next > eps)
    r_prev, k_prev = np.nonzero(gain_prev > eps)
    lo = np.concatenate([rows[r_next], (rows[r_prev] - 1) % n])
    hi = np.concatenate([j[r_next, k_next], (j[r_prev, k_prev] - 1) % n])
    gain = np.concatenate([gain_next[r_next, k_next], gain_prev[r_prev, k_prev]])
    return np.minimum(lo, hi), np.maximum(lo, hi), gain


def _best_full_move(x: np.ndarray, y: np.ndarray, tour: np.ndarray, eps: float) -> tuple[int, int] | None:
    """The best of all 2-opt moves (every pair of edges), scored in chunks of rows.

    Candidate lists miss a move now and then; this exhaustive check makes the
    result a true 2-opt local optimum.
    """
    n = len(tour)
    px, py = x[tour], y[tour]
    nx, ny = np.roll(px, -1), np.roll(py, -1)
    edge = np.hypot(px - nx, py - ny)
    cols = np.arange(n)
    chunk = max(1, 2_000_000 // n)
    best: tuple[int, int] | None = None
    best_gain = eps
    for start in range(0, n - 2, chunk):
        rows = np.arange(start, min(n - 2, start + chunk))
        gain = (
            edge[rows, None]
            + edge[None, :]
            - np.hypot(px[rows, None] - px[None, :], py[rows, None] - py[None, :])
            - np.hypot(nx[rows, None] - nx[None, :], ny[rows, None] - ny[None, :])
        )
        gain[cols[None, :] <= rows[:, None] + 1] = -np.inf  # adjacent or repeated edges
        if start == 0:
            gain[0, n - 1] = -np.inf  # the last edge touches the first
        flat = int(gain.argmax())
        if float(gain.flat[flat]) > best_gain:
            best, best_gain = (int(rows[flat // n]), flat % n), float(gain.flat[flat])
    return best


def _independent(lo: np.ndarray, hi: np.ndarray, gain: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The best moves that touch disjoint stretches of the tour, best first.

    Moves on disjoint stretches neither share an edge nor move each other's
    points, so they can all be applied in one round and their gains add up.
    """
    taken = np.zeros(n + 2, dtype=bool)
    chosen: list[tuple[int, int]] = []
    for m in np.argsort(-gain, kind="stable")[:256]:
        a, b = int(lo[m]), int(hi[m])
        if not taken[a : b + 2].any():
            taken[a : b + 2] = True
            chosen.append((a, b))
    return chosen


def _reverse(tour: np.ndarray, pos: np.ndarray, lo: int, hi: int) -> None:
    """Apply the 2-opt move (lo, hi) in place: reverse ``tour[lo+1 : hi+1]``."""
    segment = tour[lo + 1 : hi + 1][::-1].copy()
    tour[lo + 1 : hi + 1] = segment
    pos[segment] = np.arange(lo + 1, hi + 1)


def _two_opt(xy: np.ndarray, order: np.ndarray, nbr: np.ndarray, nbr_d: np.ndarray, *, exhaustive: bool) -> np.ndarray:
    """2-opt with candidate lists, many independent moves per round; ``exhaustive``
    finishes with all-pairs checks so the result is a true 2-opt local optimum."""
    tour = np.array(order, dtype=np.int64, copy=True)
    n = len(tour)
    if n < 5:  # a move needs two edges that share no point; four points: try the three tours
        if n == 4:
            best = min((tour, tour[[0, 2, 1, 3]], tour[[0, 1, 3, 2]]), key=lambda t: tour_length(xy, t))
            return np.array(best)
        return tour
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    pos = np.empty(n, dtype=np.int64)
    pos[tour] = np.arange(n)
    # Gains below a billionth of the picture's size are rounding noise; with duplicate points
    # (zero distances) a smaller threshold would let the search cycle on them forever.
    eps = max(1e-9 * float(np.hypot(*np.ptp(xy, axis=0))), 1e-300)
    everywhere = np.arange(n)
    active: np.ndarray | None = None  # don't-look bits: points whose edges changed (None: all)
    while True:
        lo, hi, gain = _neighbour_moves(x, y, tour, pos, nbr, nbr_d, everywhere if active is None else pos[active], eps)
        if len(gain):
            moves = _independent(lo, hi, gain, n)
        elif active is not None:
            active = None  # nothing near the last changes: look at every point once more
            continue
        else:
            full = _best_full_move(x, y, tour, eps) if exhaustive else None
            if full is None:
                return tour
            moves = [full]
        ends = np.array(moves, dtype=np.int64)
        active = np.unique(tour[np.concatenate([ends[:, 0], ends[:, 0] + 1, ends[:, 1], (ends[:, 1] + 1) % n])])
        for lo_, hi_ in moves:
            _reverse(tour, pos, lo_, hi_)


#: Nearest neighbours each point considers first (candidate lists).
CANDIDATES = 12


def two_opt(xy: object, order: object) -> np.ndarray:
    """Improve a closed tour with 2-opt until no exchange of two edges shortens it.

    Never lengthens a tour: every applied move has a positive gain. Vectorised:
    each round scores all moves at once (candidate moves first, then every
    pair), so 1,000 points take well under a second.
    """
    pts = _xy(xy)
    tour = np.asarray(order, dtype=np.int64)
    if len(pts) < 5:
        return _two_opt(pts, tour, np.zeros((0, 1), np.int64), np.zeros((0, 1)), exhaustive=True)
    nbr, nbr_d = _neighbours(pts, CANDIDATES)
    return _two_opt(pts, tour, nbr, nbr_d, exhaustive=True)


# -- the ant colony -----------------------------------------------------------

#: Ant Colony System constants (Dorigo & Gambardella): how often an ant takes the best-looking
#: step instead of a random one, and how strongly a used edge decays towards the initial level.
EXPLOIT = 0.9
LOCAL_DECAY = 0.1
#: The initial pheromone, 1/(N * L_nn) in ACS, here the unit: the choice rule only sees ratios.
TAU0 = 1.0


@dataclass
class ColonyResult:
    """What the colony found: the order, its length and the per-iteration history."""

    order: np.ndarray
    length: float
    history: dict[str, list[float]]


def ant_colony_tour(
    xy: object,
    *,
    ants: int = 20,
    iterations: int = 100,
    alpha: float = 1.0,
    beta: float = 3.0,
    rho: float = 0.1,
    polish: bool = True,
    seed: int = 0,
    on_iteration: Callable[[int, float, float], None] | None = None,
) -> ColonyResult:
    """Search a short closed tour with an Ant Colony System; see :func:`ant_colony`.

    Pheromone lives on candidate edges only ([N,k], not [N,N]), so memory grows
    linearly with the number of points. ``on_iteration(i, best, mean)`` reports
    progress.
    """
    pts = _xy(xy)
    n = len(pts)
    if n < 3:
        raise ValueError("a tour needs at least 3 points")
    rng = np.random.default_rng(seed)
    nbr, nbr_d = _neighbours(pts, CANDIDATES)
    k = nbr.shape[1]

    nn_order = nearest_neighbour_tour(pts, start=int(rng.integers(n)))
    nn_length = max(tour_length(pts, nn_order), 1e-12)
    tau = np.full((n, k), TAU0)
    scale = nn_length / n  # a typical edge; keeps eta^beta near 1 whatever the pixel units
    eta_beta = (scale / np.maximum(nbr_d, 1e-9 * scale)) ** beta

    # The greedy tour only sets the pheromone scale; the best tour is the ants' own.
    best_order, best_length = nn_order, math.inf
    history: dict[str, list[float]] = {"iteration": [], "best": [], "mean": []}

    def deposit(order: np.ndarray, length: float) -> None:
        # Global update on the best tour's edges, both directions where they are candidates.
        a = np.concatenate([order, np.roll(order, -1)])
        b = np.concatenate([np.roll(order, -1), order])
        match = nbr[a] == b[:, None]
        has = match.any(1)
        col = match.argmax(1)
        rows, cols = a[has], col[has]
        gain = n * nn_length / length if length > 0 else float(n)  # 1/L_best in units of TAU0
        tau[rows, cols] = (1.0 - rho) * tau[rows, cols] + rho * gain

    for iteration in range(1, iterations + 1):
        tours = _construct(pts, nbr, tau, eta_beta, alpha, ants, rng)
        seg = pts[tours] - pts[np.roll(tours, -1, axis=1)]
        lengths = np.hypot(seg[..., 0], seg[..., 1]).sum(1)
        champion = tours[int(lengths.argmin())]
        if polish:
            champion = _two_opt(pts, champion, nbr, nbr_d, exhaustive=False)
        champion_length = tour_length(pts, champion)
        if champion_length < best_length:
            best_order, best_length = champion, champion_length
        deposit(best_order, best_length)
        mean = float(lengths.mean())
        history["iteration"].append(iteration)
        history["best"].append(best_length)
        history["mean"].append(mean)
        if on_iteration is not None:
            on_iteration(iteration, best_length, mean)

    if polish:
        best_order = _two_opt(pts, best_order, nbr, nbr_d, exhaustive=True)
        best_length = tour_length(pts, best_order)
        if history["best"]:
            history["best"][-1] = best_length
    return ColonyResult(_canonical(best_order), best_length, history)


def _construct(
    pts: np.ndarray,
    nbr: np.ndarray,
    tau: np.ndarray,
    eta_beta: np.ndarray,
    alpha: float,
    ants: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """All ants build their tours together, one step at a time: tours [ants, N].

    ACS's rule: mostly (``EXPLOIT``) take the candidate with the most
    ``tau^alpha * eta^beta``, else draw one in proportion to it; when every
    candidate is visited, walk to the nearest unvisited point. Each step fades
    the used edges' pheromone ``tau`` (in place) towards ``TAU0``.
    """
    n, k = nbr.shape
    x, y = pts[:, 0], pts[:, 1]
    every = np.arange(ants)
    base = every * n
    row_k = every * k
    tau_flat = tau.ravel()  # flat indices: one index array is cheaper than two
    offset = base[:, None]
    tours = np.empty((n, ants), dtype=np.int64)
    visited = np.zeros(ants * n, dtype=bool)
    seen = visited.reshape(ants, n)
    current = rng.integers(n, size=ants)
    tours[0] = current
    visited[base + current] = True
    explore = rng.random((n, ants)) >= EXPLOIT
    spins = rng.random((n, ants))
    fade = LOCAL_DECAY * TAU0
    keep = 1.0 - LOCAL_DECAY
    for step in range(1, n):
        cand = nbr[current]
        weight = tau[current] if alpha == 1.0 else tau[current] ** alpha
        weight *= eta_beta[current]
        weight[visited[offset + cand]] = 0.0
        cum = np.cumsum(weight, axis=1)
        total = cum[:, -1]
        # The roulette's pick is the first candidate whose running total passes the spin.
        spun = (cum[:, :-1] <= (spins[step] * total)[:, None]).sum(1)
        pick = np.where(explore[step], spun, weight.argmax(1))
        nxt = cand.ravel()[row_k + pick]
        if not total.all():
            stuck = total <= 0.0
            lost = np.flatnonzero(stuck)
            d = (x - x[current[lost], None]) ** 2 + (y - y[current[lost], None]) ** 2
            d[seen[lost]] = np.inf
            nxt[lost] = d.argmin(1)
            used = (current * k + pick)[~stuck]
        else:
            used = current * k + pick
        # Local update: used edges fade towards TAU0, so the ants behind try other edges.
        tau_flat[used] = keep * tau_flat[used] + fade
        visited[base + nxt] = True
        tours[step] = nxt
        current = nxt
    return tours.T


def _canonical(order: np.ndarray) -> np.ndarray:
    """The same cycle starting at point 0, so equal tours compare equal."""
    return np.roll(order, -int(np.flatnonzero(order == 0)[0]))


# -- nodes --------------------------------------------------------------------


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
    category="search",
    inputs={"image": Input(Image, description="the picture to stipple (the first image of the batch)")},
    params={
        "count": Param(Int, 1000, min=3, max=20_000, description="how many points"),
        "seed": Param(Int, 0, description="random seed of the point draw"),
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


@node(
    "evolve.ant_colony",
    category="search",
    inputs={"points": Input(Points, description="the points to visit")},
    params={
        "ants": Param(Int, 20, min=1, max=1000, description="ants per iteration, building tours together"),
        "iterations": Param(Int, 100, min=1, max=100_000, description="colony iterations"),
        "alpha": Param(FloatT, 1.0, min=0.0, max=10.0, description="pheromone influence"),
        "beta": Param(FloatT, 3.0, min=0.0, max=20.0, description="distance influence (short edges)"),
        "rho": Param(FloatT, 0.1, min=0.0, max=1.0, description="pheromone evaporation per iteration"),
        "two_opt": Param(Bool, True, description="polish each iteration's best tour and the final tour with 2-opt"),
        "seed": Param(Int, 0, description="random seed; the same seed gives the same tour"),
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


def _colour_problems(params: dict[str, object]) -> Iterator[tuple[str, str]]:
    for key in ("color", "background"):
        value = params.get(key)
        if not isinstance(value, str):
            continue
        try:
            ImageColor.getrgb(value)
        except ValueError:
            yield (f"'{value}' is not a colour ({key})", "use a name like 'black', '#1e90ff' or 'rgb(30, 144, 255)'")


def _check_render(params: dict[str, object]) -> list[tuple[str, str]]:
    return list(_colour_problems(params))


@node(
    "tour.render",
    category="search",
    inputs={"tour": Input(TourT, description="the tour to draw")},
    params={
        "size": Param(Int, 512, min=8, max=16384, description="long side of the picture in pixels"),
        "width": Param(FloatT, 1.5, min=0.1, max=100.0, description="line width in output pixels"),
        "color": Param(Str, "black", description="line colour (a name, #rrggbb or rgb(...))"),
        "background": Param(Str, "white", description="paper colour"),
    },
    outputs={"image": Image},
    check=_check_render,
)
def render(ctx: Context, tour: Tour, size: int, width: float, color: str, background: str) -> torch.Tensor:
    """Draw the tour as one closed, continuous, antialiased line: the single-line drawing.

    The picture keeps the source image's aspect; joints are rounded so sharp
    turns stay smooth, and drawing at 4× then shrinking gives clean edges.
    """
    problems = list(_colour_problems({"color": color, "background": background}))
    if problems:
        raise NodeError(f"{problems[0][0]}; {problems[0][1]}")
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


NODES = [stipple, ant_colony, render]
