"""Sampling a trained generator: gan.sample, gan.interpolate, and the seeded latent draws they share."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from artgraph import Bool, Image, Input, Int, List, Model, NodeError, Output, Param, Str, node
from artgraph import Float as FloatT

from .models import Generator, _require_generator

SAMPLE_CHUNK = 500


# -- noise ----------------------------------------------------------------------


def draw_z(count: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """``count`` latent vectors on the CPU, the same for the same seed on any machine.

    With ``truncation`` t, each coordinate comes from the standard normal truncated to
    [-t, t] (inverse-CDF sampling, so the draw stays a fixed function of the seed)."""
    # Uniforms are drawn one per element in order (unlike CPU randn, whose vectorised
    # path depends on the size), so image i does not depend on count.
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.rand(count, z_dim, generator=gen, dtype=torch.float64)
    if truncation is None:
        return torch.special.ndtri(u.clamp_(1e-12, 1.0 - 1e-12)).to(torch.float32)
    t = float(truncation)
    if t <= 0:
        raise NodeError(f"'truncation' must be above 0, got {t}")
    lo = 0.5 * math.erfc(t / math.sqrt(2.0))  # Φ(-t)
    z = torch.special.ndtri(lo + u * (1.0 - 2.0 * lo))
    return z.clamp_(-t, t).to(torch.float32)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate(generator: Generator, z: torch.Tensor) -> torch.Tensor:
    """Run the generator in eval mode over ``z`` (any device) in chunks; [0,1] images."""
    _require_generator(generator)
    device = _device_of(generator)
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([generator.generate(chunk.to(device)) for chunk in z.split(SAMPLE_CHUNK)])
    finally:
        generator.train(was_training)


# -- sampling -------------------------------------------------------------------


@node(
    "gan.sample",
    seeded=True,
    category="gan",
    inputs={"generator": Input(Model)},
    params={
        "count": Param(Int, 64, min=1, max=100_000, description="how many images"),
        "seed": Param(Int, 0, min=0, description="seed of the latent vectors (image i is the same for any count)"),
        "truncation": Param(FloatT, None, min=0.01, max=10.0, description="draw z from N(0,1) truncated to ±this"),
    },
    outputs={"image": Output(Image, "a batch [count, C, H, W] in [0,1]")},
)
def sample(generator: Generator, count: int, seed: int, truncation: float | None) -> torch.Tensor:
    """Generate a batch of images; the same seed gives the same images on any machine."""
    _require_generator(generator)
    return generate(generator, draw_z(count, generator.z_dim, seed, truncation))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` ([D]) at fractions ``t`` ([T]) -> [T, D]."""
    t = t[:, None].to(a.dtype)
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega.sin().abs()) < 1e-6:  # (anti)parallel: fall back to lerp
        return torch.lerp(a, b, t)
    sin = omega.sin()
    return (torch.sin((1 - t) * omega) / sin) * a + (torch.sin(t * omega) / sin) * b


def _check_interpolate(params: Mapping[str, object]) -> list[str]:
    seeds = params.get("seeds")
    return [] if isinstance(seeds, list) and len(seeds) >= 2 else ["'seeds' needs two or more seeds"]


@node(
    "gan.interpolate",
    category="gan",
    inputs={"generator": Input(Model)},
    params={
        "seeds": Param(List(Int), [0, 1, 2], min=0, description="latent points to walk through (two or more)"),
        "steps": Param(Int, 16, min=1, max=10_000, description="frames from one seed to the next"),
        "method": Param(Str, "slerp", choices=("slerp", "lerp"), description="spherical or straight-line path"),
        "loop": Param(Bool, False, description="walk back from the last seed to the first (for looping GIFs)"),
        "truncation": Param(FloatT, None, min=0.01, max=10.0, description="truncated-normal latent points"),
    },
    outputs={"image": Output(Image, "the frames as a batch, for image.grid or image.save_gif")},
    check=_check_interpolate,
)
def interpolate(
    generator: Generator, seeds: list[int], steps: int, method: str, loop: bool, truncation: float | None = None
) -> torch.Tensor:
    """Frames walking between the latent points of several seeds (frame 0 is gan.sample of seeds[0])."""
    _require_generator(generator)
    if len(seeds) < 2:
        raise NodeError("'seeds' needs two or more seeds")
    points = [draw_z(1, generator.z_dim, s, truncation)[0] for s in seeds]
    pairs = list(zip(points, points[1:] + points[:1] if loop else points[1:], strict=False))
    t = torch.arange(steps, dtype=torch.float32) / steps
    path = [slerp(a, b, t) if method == "slerp" else torch.lerp(a, b, t[:, None]) for a, b in pairs]
    if not loop:
        path.append(points[-1][None])
    return generate(generator, torch.cat(path))
