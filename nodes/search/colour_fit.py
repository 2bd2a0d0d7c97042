"""The colour of a shape that best fits a pixel objective, solved instead of searched.

A shape with coverage ``m`` (0 or 1 per pixel), opacity ``a`` and colour ``c`` drawn
over the picture so far ``k`` gives ``k + a·m·(c − k)``. ``objective.pixel`` compares
``L(picture)`` with its target ``T``, where ``L`` is the identity, or the area
shrink to a coarse ``resolution``; both are linear. So, channel by channel, the
difference is a line in ``c``::

    L(picture) − T = c·g − r,   g = a·L(m),   r = T − L(k) + a·L(m·k)

and the best colour has a closed form:

* ``mse`` — least squares: ``c = Σ g·r / Σ g²``. With ``L`` the identity that is
  ``mean(k) + mean(T − k) / a`` over the pixels the shape covers.
* ``l1`` — ``Σ |c·g − r| = Σ g·|c − r/g|``: the median of ``r/g`` weighted by ``g``.

Both are convex in ``c``, so the solution clamped to [0, 1] is the best colour a
gene can hold. :class:`PixelDelta` goes one step further for the plain mean
squared error (the default ``objective.pixel``): it gets every candidate's colour
*and score* from one matrix product of the coverages with a few per-pixel sums of
the picture and the target, without drawing a single candidate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

from artgraph import Objective
from artgraph.nodes.style.objectives import PixelObjective, resize_to


def _fits(objective: Objective) -> bool:
    """Whether the objective is a pixel distance to one RGB target (whose colours can be solved)."""
    if not isinstance(objective, PixelObjective) or objective.metric not in ("mse", "l1"):
        return False
    target = objective.target
    return target.ndim == 4 and target.shape[0] == 1 and target.shape[1] == 3


def _coarse_size(objective: PixelObjective, size: tuple[int, int]) -> tuple[int, int] | None:
    """The size the objective shrinks pictures of ``size`` to before comparing; None: it does not."""
    if not objective.resolution or max(size) <= objective.resolution:
        return None
    factor = objective.resolution / max(size)
    return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))


class ColourFit:
    """Solves the colours of candidate shapes for a pixel objective at one render size."""

    def __init__(self, objective: PixelObjective, size: tuple[int, int], device: torch.device) -> None:
        self.metric = objective.metric
        self.coarse = _coarse_size(objective, size)
        self.target = resize_to(objective.target.to(device, torch.float32), self.coarse or size)

    @classmethod
    def of(cls, objective: Objective, size: tuple[int, int], device: torch.device) -> ColourFit | None:
        """A solver for ``objective``, or None when its colours cannot be solved (search them)."""
        return cls(objective, size, device) if _fits(objective) and isinstance(objective, PixelObjective) else None

    def _shrink(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.coarse, mode="area") if self.coarse else x

    def solve(
        self, canvas: torch.Tensor, cover: torch.Tensor, alpha: torch.Tensor, fallback: torch.Tensor
    ) -> torch.Tensor:
        """The best colours ``[B, 3]`` of shapes with coverage ``cover`` ``[B, H, W]`` and opacity
        ``alpha`` ``[B]`` over ``canvas`` ``[1, 3, H, W]``; ``fallback`` ``[B, 3]`` where a shape
        covers nothing or is transparent (any colour is as good as another there)."""
        m = cover.unsqueeze(1)
        a = alpha.view(-1, 1, 1, 1)
        g = (a * self._shrink(m)).flatten(2)  # [B, 1, Q]
        r = (self.target - self._shrink(canvas) + a * self._shrink(m * canvas)).flatten(2)  # [B, 3, Q]
        if self.metric == "mse":
            weight = (g * g).sum(-1)  # [B, 1]
            colour = (g * r).sum(-1) / weight.clamp_min(1e-12)
        else:
            weight = g.sum(-1)
            colour = weighted_median(r / g.clamp_min(1e-12), g.expand_as(r))
        return torch.where(weight > 1e-12, colour.clamp(0.0, 1.0), fallback.to(colour))


def weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Over the last dimension: the value where the cumulative weight first reaches half the total
    (a minimiser of ``Σ w·|c − v|``). Entries of weight 0 do not count."""
    order = torch.argsort(values, dim=-1)
    ranked, ranked_weights = values.gather(-1, order), weights.gather(-1, order)
    cumulative = ranked_weights.cumsum(-1)
    half = cumulative[..., -1:] / 2
    index = (cumulative < half).sum(-1, keepdim=True).clamp_max(values.shape[-1] - 1)
    return ranked.gather(-1, index).squeeze(-1)


class PixelDelta:
    """Colours, opacities and scores of candidate shapes under the plain mean squared error, in closed form.

    Over the pixels ``q`` a shape covers (``m`` is 0 or 1), with ``d = k − T``, drawing it
    with opacity ``a`` and colour ``c`` changes the sum of squared errors by, per channel::

        Δ = Σ m·[(d + a(c − k))² − d²] = 2a·(c·M(d) − M(d·k)) + a²·(c²·S − 2c·M(k) + M(k²))

    where ``M(x) = Σ m·x`` and ``S = Σ m``; minimising it in ``c`` gives the least-squares
    colour. All the ``M`` of a batch are one product ``m @ P`` of the coverages ``[B, Q]``
    with the per-pixel columns ``P`` ``[Q, 13]`` (1, d, k, d·k, k²), in float64; after it,
    trying several opacities per shape costs next to nothing.
    """

    def __init__(self, objective: PixelObjective, size: tuple[int, int], device: torch.device) -> None:
        self.weight = objective.weight
        self.target = resize_to(objective.target.to(device, torch.float32), size)
        self.columns = torch.empty(0)
        self.count, self.total = 1, 0.0
        #: The squared error of each pixel ``[H·W]`` (summed over channels), on the CPU.
        self.errors = torch.empty(0)

    @classmethod
    def of(cls, objective: Objective, size: tuple[int, int], device: torch.device) -> PixelDelta | None:
        """The closed form for a plain ``objective.pixel`` with ``mse`` at full resolution, else None."""
        if type(objective) is not PixelObjective or not _fits(objective) or objective.metric != "mse":
            return None
        return None if _coarse_size(objective, size) else cls(objective, size, device)

    def set_canvas(self, canvas: torch.Tensor) -> None:
        """Precompute the per-pixel columns of the picture so far ``[1, 3, H, W]``."""
        k = canvas[0].flatten(1).to(torch.float64)  # [3, Q]
        d = k - self.target[0].flatten(1).to(torch.float64)
        self.columns = torch.cat([torch.ones_like(k[:1]), d, k, d * k, k * k]).T.contiguous()  # [Q, 13]
        self.count = k.numel()
        self.errors = (d * d).sum(0).cpu()
        self.total = float(self.errors.sum())

    def solve(
        self, cover: torch.Tensor, alpha: torch.Tensor, fallback: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For shapes with coverage ``cover`` ``[B, H, W]`` and opacities to choose from ``alpha``
        ``[B, A]``: the best colours ``[B, 3]`` (``fallback`` ``[B, 3]`` where a shape draws
        nothing), which opacity is best ``[B]`` (an index into ``A``), and the objective's
        scores ``[B]`` (float64) of the picture with each shape drawn so."""
        sums = cover.flatten(1).to(torch.float64) @ self.columns  # [B, 13]
        s, m_d, m_k, m_dk, m_kk = sums.unsqueeze(1).split([1, 3, 3, 3, 3], 2)  # [B, 1, 1 or 3]
        a = alpha.to(torch.float64).unsqueeze(2)  # [B, A, 1]
        drawn = (s > 0) & (a > 0)
        colour = ((m_k - m_d / torch.where(drawn, a, 1.0)) / s.clamp_min(1.0)).clamp_(0.0, 1.0)
        colour = torch.where(drawn, colour, fallback.unsqueeze(1).to(colour)).float().double()  # as a gene holds it
        delta = 2 * a * (colour * m_d - m_dk) + a * a * (colour * colour * s - 2 * colour * m_k + m_kk)
        scores = (self.total + delta.sum(2)) * (self.weight / self.count)  # [B, A]
        best, pick = scores.min(1)
        rows = torch.arange(len(sums), device=sums.device)
        return colour[rows, pick].float(), pick, best
