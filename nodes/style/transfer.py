"""``style.transfer``: Gatys et al.'s neural style transfer, ready-made.

Built from the same pieces as the objective nodes — content and style
objectives on one VGG, an optional total-variation term, pixel optimisation —
with the options users of neural-style expect: several styles with blend
weights, style scale, original colours, random or content init, multi-scale
stages.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
import torch.nn.functional as F  # noqa: N812

from artgraph import Bool, Context, Dict, Image, Input, Int, List, Model, NodeError, Param, Str, Sum, node
from artgraph import Float as FloatT

from .._imageio import long_side_size
from .features import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, check_layer_params
from .objectives import CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT, ContentObjective, StyleObjective, TVObjective
from .optimize import optimize_pixels
from .vgg import as_rgb

# ITU-R BT.601 luma and the YIQ chroma axes: the split neural-style uses for
# "original colors" (keep the content's chroma, take the result's luminance).
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(images), images)


def yiq_to_rgb(images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(images), images)


def keep_colors(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance of ``result`` with the chroma (I, Q) of ``content``."""
    content = (
        F.interpolate(content, size=result.shape[-2:], mode="bicubic", align_corners=False)
        if content.shape[-2:] != result.shape[-2:]
        else content
    )
    mixed = torch.cat([rgb_to_yiq(result)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(mixed).clamp(0, 1)


def _check(params: Mapping[str, object]) -> list[str]:
    out = check_layer_params("content_layers", "style_layers")(params)
    scales = params.get("scales")
    if isinstance(scales, list) and any(b < a for a, b in itertools.pairwise(scales)):
        out.append("'scales' must grow from stage to stage, e.g. [128, 256]")
    return out


@node(
    "style.transfer",
    category="style",
    seeded=True,
    inputs={
        "content": Input(Image),
        "style": Input(List(Image), description="one or more style images"),
        "model": Input(Model, description="from vgg.model"),
    },
    params={
        "steps": Param(Int, 300, min=1, max=100_000, description="objective evaluations per stage"),
        "optimizer": Param(Str, "lbfgs", choices=("lbfgs", "adam")),
        "lr": Param(FloatT, None, description="step size; default 1.0 for lbfgs, 0.02 for adam"),
        "content_weight": Param(FloatT, CONTENT_WEIGHT, min=0.0),
        "style_weight": Param(FloatT, STYLE_WEIGHT, min=0.0),
        "tv_weight": Param(FloatT, TV_WEIGHT, min=0.0, description="L1 total variation (smoothness)"),
        "content_layers": Param(List(Str), DEFAULT_CONTENT_LAYERS),
        "style_layers": Param(List(Str), DEFAULT_STYLE_LAYERS),
        "style_blend": Param(List(FloatT), None, min=0.0, description="one weight per style image"),
        "style_scale": Param(FloatT, 1.0, min=0.05, max=8.0, description="style size relative to the content"),
        "init": Param(Str, "content", choices=("content", "random")),
        "seed": Param(Int, 0, min=0, description="seed of the random init"),
        "preserve_colors": Param(Bool, False, description="keep the content's colours (luminance-only transfer)"),
        "scales": Param(List(Int), None, min=16, max=8192, description="multi-scale: long side of each stage"),
    },
    outputs={"image": Image, "history": Dict},
    check=_check,
)
def style_transfer(
    ctx: Context,
    content: torch.Tensor,
    style: list[torch.Tensor],
    model: object,
    steps: int,
    optimizer: str,
    lr: float | None,
    content_weight: float,
    style_weight: float,
    tv_weight: float,
    content_layers: list[str],
    style_layers: list[str],
    style_blend: list[float] | None,
    style_scale: float,
    init: str,
    preserve_colors: bool,
    scales: list[int] | None,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Paint the content in the style of the style image(s) (Gatys et al., 2016)."""
    if content.shape[0] != 1:
        raise NodeError(f"style.transfer takes one content image, got a batch of {content.shape[0]}")
    content_rgb = as_rgb(content)
    if preserve_colors:
        # Transfer on luminance only: the styles lose their colours, the content keeps its own.
        style = [rgb_to_yiq(as_rgb(s))[:, :1].expand(-1, 3, -1, -1) for s in style]
    parts = [
        (ContentObjective(model, content_rgb, content_layers, content_weight), 1.0),
        (StyleObjective(model, style, style_layers, None, style_blend, style_scale, style_weight), 1.0),
    ]
    if tv_weight > 0:
        parts.append((TVObjective(tv_weight), 1.0))
    objective = Sum(parts)

    h, w = content_rgb.shape[-2:]
    sizes = [long_side_size(h, w, s) for s in scales] if scales else [(h, w)]
    history: dict[str, list[float]] = {}
    image: torch.Tensor | None = None
    for stage, size in enumerate(sizes, start=1):
        if image is None:
            if init == "random":
                image = torch.rand(1, 3, *size, generator=ctx.rng).to(content.device)
            else:
                image = F.interpolate(content_rgb, size=size, mode="bicubic", antialias=True, align_corners=False)
        else:
            image = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
        label = f"stage {stage}/{len(sizes)} {size[1]}x{size[0]}" if len(sizes) > 1 else "style transfer"
        outcome = optimize_pixels(ctx, objective, image, steps, optimizer, lr, desc=label)
        image = outcome.image
        offset = history["step"][-1] if history.get("step") else 0
        for key, values in outcome.history.items():
            shifted = [v + offset for v in values] if key == "step" else values
            history.setdefault(key, []).extend(shifted)
        history.setdefault("stage", []).extend([float(stage)] * len(outcome.history["step"]))
        if "stopped_at" in outcome.history:
            break
    assert image is not None
    if preserve_colors:
        image = keep_colors(image, content_rgb)
    return image, history
