"""Animations: a batch of images as an animated GIF."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention

from artgraph import Bool, Context, Image, Input, Int, NodeError, Param, atomic_path, node
from artgraph import Float as FloatT
from artgraph import Path as PathT

from .._imageio import tensor_to_pil


@node(
    "image.save_gif",
    category="image",
    output_node=True,
    inputs={"image": Input(Image, description="the frames, as a batch [B,C,H,W]")},
    params={
        "path": Param(PathT, file="output", suffixes=(".gif",), description="a .gif file, under the output folder"),
        "fps": Param(FloatT, 12.0, min=0.1, max=50.0, description="frames per second (GIF timing is in 1/100 s)"),
        "scale": Param(Int, 1, min=1, max=64, description="enlarge each frame this many times (nearest pixel)"),
        "loop": Param(Bool, True, description="play forever (false: play once)"),
    },
    outputs={"path": PathT},
)
def save_gif(ctx: Context, image: torch.Tensor, path: str, fps: float, scale: int, loop: bool) -> str:
    """Write a batch of images as an animated GIF, one frame per image, written atomically."""
    if image.ndim != 4 or image.shape[0] < 1:
        raise NodeError(f"expected a batch of frames [B,C,H,W], got shape {list(image.shape)}")
    if image.shape[1] == 4:
        image = image[:, :3] * image[:, 3:] + (1 - image[:, 3:])  # over white: GIF has no partial alpha
    if image.shape[1] not in (1, 3):
        raise NodeError(f"cannot write frames with {image.shape[1]} channels as a GIF (need 1, 3 or 4)")
    if scale > 1:
        image = F.interpolate(image, scale_factor=scale, mode="nearest")
    frames = [tensor_to_pil(frame) for frame in image.detach().float().cpu()]
    duration = max(20, round(1000.0 / fps / 10) * 10)
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": duration}
    if loop:
        options["loop"] = 0
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", optimize=False, **options)
    ctx.log.info("wrote %s (%d frames, %d ms each)", path, len(frames), duration)
    return os.fspath(path)
