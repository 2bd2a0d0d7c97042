"""Small pictures of a node's work in progress, for ``ctx.preview`` (see :mod:`artgraph.events`).

A preview is the first image of a batch, at most 512 px on its long side, as a
JPEG written atomically over the node's previous one: a viewer shows the newest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .files import atomic_path

#: The long side of a preview, at most.
PREVIEW_SIZE = 512


def write_preview(image: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``image`` (a tensor [B,C,H,W] or [C,H,W] in [0, 1]; 1, 3 or 4 channels) to ``path``."""
    import torch
    from PIL import Image as PILImage

    with torch.no_grad():
        picture = image.detach()
        if picture.ndim == 4:
            picture = picture[0]
        if picture.ndim != 3 or picture.shape[0] not in (1, 3, 4):
            raise ValueError(f"a preview is an image [B,C,H,W] with 1, 3 or 4 channels, got {list(image.shape)}")
        array = (picture[:3].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    pil = PILImage.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    pil.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), PILImage.Resampling.LANCZOS)
    target = Path(path)
    with atomic_path(target, confined=False) as tmp:  # the run's own report, not a node's result
        pil.save(tmp, format="JPEG", quality=85)
    return target
