"""What a search may learn from an objective besides its scores: an optional protocol.

An objective may say the shape of the target it compares against (``aspect()``:
width ÷ height), so a search paints a portrait target as a portrait, and that
scoring is a network's forward pass (``compute_bound = True``), which already
uses every CPU core, so a search should not pin it to one thread. Neither is
part of :class:`artgraph.Objective`: this is search policy, and an objective
that says nothing gets the defaults (square pictures, one thread on the CPU).
A sum of objectives answers from its parts. An objective may also say it has
no gradient (``differentiable = False``: a count, a lookup, a non-differentiable
library), so ``optimize.shapes`` refuses it before any work; one that says
nothing is probed (its scores must carry a gradient).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from artgraph import Objective, Sum


@runtime_checkable
class Framed(Protocol):
    """An objective that compares against a target of a known shape."""

    def aspect(self) -> float | None:
        """Width ÷ height of the target; None when any shape will do."""


@runtime_checkable
class ComputeBound(Protocol):
    """An objective that declares whether scoring fills every CPU core (a network's forward pass)."""

    compute_bound: bool


@runtime_checkable
class MaybeDifferentiable(Protocol):
    """An objective that declares whether its scores have a gradient."""

    differentiable: bool


def declared_non_differentiable(objective: Objective) -> list[str]:
    """The names of the parts of ``objective`` that say they have no gradient (none: it may have one)."""
    if isinstance(objective, Sum):
        return [name for part, _ in objective.parts for name in declared_non_differentiable(part)]
    if isinstance(objective, MaybeDifferentiable) and not objective.differentiable:
        return [objective.name]
    return []


def target_aspect(objective: Objective) -> float | None:
    """The target's width ÷ height, if the objective (or a part of a sum) says; else None."""
    if isinstance(objective, Sum):
        return next((a for a in (target_aspect(part) for part, _ in objective.parts) if a is not None), None)
    return objective.aspect() if isinstance(objective, Framed) else None


def is_compute_bound(objective: Objective) -> bool:
    """Whether scoring is dominated by big tensor operations (any part of a sum makes the sum so)."""
    if isinstance(objective, Sum):
        return any(is_compute_bound(part) for part, _ in objective.parts)
    return bool(objective.compute_bound) if isinstance(objective, ComputeBound) else False
