"""Conversions between PIL images and artgraph Image tensors ([B,C,H,W] in [0,1])."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image as PILImage

MODES_BY_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}


def pil_to_tensor(img: PILImage.Image) -> torch.Tensor:
    """A PIL image as a float32 tensor [1,C,H,W] in [0,1] on the CPU."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(torch.float32).div_(255.0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> PILImage.Image:
    """One image [C,H,W] (or [1,C,H,W]) in [0,1] as a PIL image (clamped, rounded)."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    channels = image.shape[0]
    if channels not in MODES_BY_CHANNELS:
        raise ValueError(f"cannot save an image with {channels} channels (need 1, 3 or 4)")
    pixels = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).cpu().numpy()
    if channels == 1:
        array = array[:, :, 0]
    return PILImage.fromarray(array, mode=MODES_BY_CHANNELS[channels])


def long_side_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is ``long_side``; at least 1 px each."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
