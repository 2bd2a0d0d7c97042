"""Pixel optimisation: follow the gradient of an objective (Gatys' method)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import torch

from artgraph import Context, Dict, Image, Input, Int, NodeError, Objective, ObjectiveType, Param, Str, node
from artgraph import Float as FloatT

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


@dataclass
class Outcome:
    image: torch.Tensor
    history: dict[str, list[float]]
    snapshots: list[torch.Tensor] = field(default_factory=list)


class _Diverged(Exception):
    def __init__(self, step: int) -> None:
        self.step = step


def optimize_pixels(
    ctx: Context,
    objective: Objective,
    start: torch.Tensor,
    steps: int,
    optimizer: str,
    lr: float | None,
    save_every: int = 0,
    desc: str = "optimising",
) -> Outcome:
    """Minimise ``objective`` over the pixels of ``start``; ``steps`` counts objective
    evaluations (as neural-style counts L-BFGS iterations).

    Adam's pixels are clamped to [0,1] after every step. L-BFGS's are not (as in
    neural-style): clamping inside its closure spoils its curvature estimates and
    makes the loss jump about; the result is clamped at the end.

    Objectives are means over pixels, so their gradient per pixel shrinks as the
    image grows. PyTorch's L-BFGS keeps a curvature pair only when ``y·s > 1e-10``;
    from 256 px on (earlier for small losses) the pairs fall under that bar, it
    never builds its Hessian estimate and crawls along the raw gradient. So L-BFGS
    is given the loss multiplied by the number of values per image — a sum over
    pixels, as neural-style's losses are. L-BFGS is otherwise blind to the scale
    of the loss (its first step is normalised, later ones are quasi-Newton), so
    nothing else changes. Histories report the objective itself, unscaled.

    If the loss becomes NaN or infinite, stop, warn with the step, and return the
    last image whose loss was finite.
    """
    x = start.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    rate = DEFAULT_LR[optimizer] if lr is None else lr
    history: dict[str, list[float]] = {"step": [], "total": []}
    snapshots: list[torch.Tensor] = []
    last_good = x.detach().clone()
    evals = 0
    scale = float(x[0].numel()) if optimizer == "lbfgs" else 1.0

    def evaluate() -> torch.Tensor:
        nonlocal evals, last_good
        terms = objective.terms(x)
        # An objective has at least one term, so the sum is a tensor, never sum()'s start 0.
        per_image = cast(torch.Tensor, sum(terms.values()))
        loss = per_image.sum()
        evals += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            raise _Diverged(evals)
        last_good = x.detach().clamp(0, 1)
        history["step"].append(evals)
        history["total"].append(value)
        for name, term in terms.items():
            history.setdefault(name, []).append(float(term.detach().sum()))
        if save_every and evals % save_every == 0:
            snapshots.append(last_good)
        bar.update(1, loss=value)
        ctx.preview(last_good)
        if scale != 1.0:
            loss = loss * scale
        loss.backward()
        return loss

    with ctx.progress(steps, desc) as bar:
        try:
            if optimizer == "lbfgs":
                lbfgs = torch.optim.LBFGS(
                    [x],
                    lr=rate,
                    max_iter=steps,
                    max_eval=steps,
                    tolerance_grad=-1,
                    tolerance_change=-1,
                    history_size=100,
                )

                def closure() -> torch.Tensor:
                    lbfgs.zero_grad(set_to_none=True)
                    return evaluate()

                lbfgs.step(closure)
            else:
                adam = torch.optim.Adam([x], lr=rate)
                for _ in range(steps):
                    adam.zero_grad(set_to_none=True)
                    evaluate()
                    adam.step()
                    with torch.no_grad():
                        x.clamp_(0, 1)
        except _Diverged as stop:
            ctx.log.warning("the loss became NaN/inf at step %d; keeping the last good image", stop.step)
            history["stopped_at"] = [float(stop.step)]
            return Outcome(last_good, history, snapshots)
        finally:
            objective.release()  # the memoised activations of the last step
    with torch.no_grad():
        final = x.detach().clamp_(0, 1)
    return Outcome(final, history, snapshots)


def _check(params: Mapping[str, object]) -> list[str]:
    lr = params.get("lr")
    if isinstance(lr, (int, float)) and lr <= 0:  # a Float param: a float or None by now
        return ["'lr' must be above 0"]
    return []


@node(
    "optimize.image",
    category="style",
    seeded=True,
    inputs={
        "objective": Input(ObjectiveType),
        "init": Input(Image, optional=True, description="starting image; omit for noise of 'size'"),
    },
    params={
        "size": Param(Int, None, min=8, max=8192, description="side of the noise image when there is no init"),
        "steps": Param(Int, 300, min=1, max=100_000, description="objective evaluations"),
        "optimizer": Param(Str, "lbfgs", choices=("lbfgs", "adam")),
        "lr": Param(FloatT, None, description="step size; default 1.0 for lbfgs, 0.02 for adam"),
        "seed": Param(Int, 0, min=0, description="seed of the starting noise"),
        "save_every": Param(Int, 0, min=0, description="keep a snapshot every N steps (0: none)"),
    },
    outputs={
        "image": Image,
        "history": Dict,
        "snapshots": Image,
    },
    check=_check,
)
def optimize_image(
    ctx: Context,
    objective: Objective,
    init: torch.Tensor | None,
    size: int | None,
    steps: int,
    optimizer: str,
    lr: float | None,
    save_every: int,
):
    """Optimise pixels to minimise an objective (L-BFGS or Adam); history has each term per step."""
    if init is None:
        if size is None:
            raise NodeError("give an 'init' image or a 'size' for a noise start")
        init = torch.rand(1, 3, size, size, generator=ctx.rng).to(ctx.device)
    outcome = optimize_pixels(ctx, objective, init, steps, optimizer, lr, save_every)
    snapshots = torch.cat(outcome.snapshots) if outcome.snapshots else outcome.image
    return outcome.image, outcome.history, snapshots
