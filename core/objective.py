"""Objectives: a score per image, lower is better, composable.

An :class:`Objective` maps a batch of images ``[B,C,H,W]`` to scores ``[B]``. It
is differentiable where its parts are, so a pixel optimiser can follow its
gradient, and it scores a whole population in one batched call, so a genetic
algorithm can use the very same value. Objectives compose like numbers:
``content + 1e6 * style`` is an objective too, and its :meth:`terms` still
report each part, for loss histories.

The engine knows nothing about what an objective measures: nodes build them
(VGG content and style losses, pixel distances, a plugin's CLIP score), and
what a consumer may want to know besides the score (the shape of the target a
search paints, whether scoring is compute-bound) is an optional protocol of
that consumer (see ``artgraph.nodes.search.harness``), not part of this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class Objective(ABC):
    """Base class: implement :meth:`terms` (each term a ``[B]`` tensor, weighted)."""

    name: str = "objective"

    @abstractmethod
    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted parts of the score, by name, each ``[B]``; their sum is the score."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The total score per image, ``[B]``."""
        parts = list(self.terms(images).values())
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    def release(self) -> None:
        """Let go of what scoring the last images left behind (memoised activations and
        the autograd graph they hold); the targets stay.

        Consumers call it when they are done scoring (an optimisation or a search
        ends), so memory is free for the nodes that run next while the objective
        itself may stay cached for a later run. The default holds nothing.
        """
        return None

    def __add__(self, other: Objective) -> Objective:
        return Sum([(self, 1.0), (other, 1.0)])

    def __mul__(self, weight: float) -> Objective:
        return Sum([(self, float(weight))])

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"<Objective {self.name}>"


class FunctionObjective(Objective):
    """An objective from a function ``images -> [B]`` and a weight."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor], weight: float = 1.0) -> None:
        self.name, self.fn, self.weight = name, fn, float(weight)

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.name: self.weight * self.fn(images)}


class Sum(Objective):
    """A weighted sum of objectives; its terms are the weighted terms of its parts."""

    def __init__(self, parts: Iterable[tuple[Objective, float]]) -> None:
        self.parts = [(obj, float(w)) for obj, w in parts]
        if not self.parts:
            raise ValueError("a sum of objectives needs at least one objective")
        self.name = "+".join(obj.name for obj, _ in self.parts)

    def release(self) -> None:
        for obj, _ in self.parts:
            obj.release()

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for obj, weight in self.parts:
            for name, value in obj.terms(images).items():
                key, n = name, 2
                while key in out:
                    key, n = f"{name}_{n}", n + 1
                out[key] = weight * value
        return out
