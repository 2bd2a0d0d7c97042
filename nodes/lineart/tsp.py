"""Short closed tours through points: the classic baseline and an ant colony.

These are plain numpy functions with no node in sight, so the benchmark and
anyone else can call them directly; ``evolve.ant_colony`` (tour.py) wraps
:func:`ant_colony_tour`.

The search is an Ant Colony System (Dorigo & Gambardella, 1997) polished with
2-opt, written with numpy so it stays fast in plain Python: the ants build their
tours together, one city per step for all ants at once, choosing among each
city's nearest neighbours (candidate lists); 2-opt scores the candidate moves of
the whole tour in one array expression and applies the best ones that do not
overlap, then checks every pair of edges before it stops. The plain
functions :func:`nearest_neighbour_tour`, :func:`two_opt` and
:func:`tour_length` are the classic baseline the colony is measured against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

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
