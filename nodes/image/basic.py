"""Foundation image nodes: load, save, resize, grid."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from PIL import Image as PILImage
from PIL import ImageOps, PngImagePlugin

from artgraph import (
    Context,
    Image,
    Input,
    Int,
    List,
    NodeError,
    Param,
    Str,
    atomic_path,
    node,
    open_image,
    png_text_chunks,
)
from artgraph import Float as FloatT
from artgraph import Path as PathT

from .._imageio import long_side_size, pil_to_tensor, tensor_to_pil
from .._tensorfile import one_line

_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


@node(
    "image.load",
    category="image",
    params={
        "path": Param(PathT, file="input", description="image file to read"),
        "size": Param(Int, None, min=1, max=16384, description="resize so the long side is this many pixels"),
        "mode": Param(Str, "RGB", choices=("RGB", "L", "RGBA"), description="colour mode"),
    },
    outputs={"image": Image},
)
def load(ctx: Context, path: str, size: int | None, mode: str) -> torch.Tensor:
    """Read an image file into a batch of one, optionally resized (long side).

    An image whose header claims more than ``limits.IMAGE_PIXELS`` is refused before
    it is decoded (ARTGRAPH_MAX_IMAGE_PIXELS raises the limit)."""
    try:
        with open_image(path) as img:
            img = ImageOps.exif_transpose(img)
            img = img.convert(mode)
            if size is not None:
                h, w = long_side_size(img.height, img.width, size)
                img = img.resize((w, h), PILImage.Resampling.LANCZOS)
            tensor = pil_to_tensor(img)
    except NodeError:
        raise
    except FileNotFoundError:
        raise NodeError(f"image file not found: {path}") from None
    except Exception as exc:  # OSError, SyntaxError, struct.error...: what PIL raises for a broken file
        raise NodeError(f"cannot read image {path}: {one_line(exc)}") from None
    return tensor.to(ctx.device)


def _check_save(params: Mapping[str, object]) -> list[tuple[str, str]]:
    path = str(params.get("path") or "")
    fmt = params.get("format")
    if fmt is None and Path(path).suffix.lower() not in _SAVE_FORMATS:
        return [
            (
                f"cannot tell the image format of '{path}'",
                f"use a suffix among {', '.join(sorted(_SAVE_FORMATS))} or set 'format'",
            )
        ]
    return []


@node(
    "image.save",
    category="image",
    output_node=True,
    params={
        "path": Param(PathT, file="output", description="file to write, under the output folder"),
        "format": Param(
            Str,
            None,
            choices=("PNG", "JPEG", "WEBP", "BMP", "TIFF"),
            description="image format; default: from the suffix",
        ),
        "quality": Param(Int, 95, min=1, max=100, description="JPEG/WEBP quality"),
    },
    inputs={"image": Input(Image)},
    outputs={"paths": List(PathT)},
    check=_check_save,
)
def save(ctx: Context, image: torch.Tensor, path: str, format: str | None, quality: int) -> list[str]:
    """Write an image atomically; a batch of B > 1 becomes STEM_0000.png, STEM_0001.png, ...

    PNG files carry the graph that made them (text chunks), so
    ``artgraph run --from FILE.png`` re-runs it exactly.
    """
    target = Path(path)
    fmt = format or _SAVE_FORMATS[target.suffix.lower()]
    batch = image.shape[0]
    if batch == 1:
        targets = [target]
    else:
        targets = [target.with_name(f"{target.stem}_{i:04d}{target.suffix}") for i in range(batch)]
    written = []
    for i, out in enumerate(targets):
        pil = tensor_to_pil(image[i])
        options: dict[str, object] = {}
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            for key, value in png_text_chunks(ctx.provenance).items():
                info.add_itxt(key, value, zip=True)
            options["pnginfo"] = info
        elif fmt in ("JPEG", "WEBP"):
            options["quality"] = quality
            if fmt == "JPEG" and pil.mode == "RGBA":
                pil = pil.convert("RGB")
        with atomic_path(out) as tmp:
            pil.save(tmp, format=fmt, **options)
        written.append(os.fspath(out))
        ctx.log.info("wrote %s", out)
    return written


_INTERPOLATION = ("bilinear", "bicubic", "nearest", "area")


def _check_resize(params: Mapping[str, object]) -> list[str]:
    size, width, height = params.get("size"), params.get("width"), params.get("height")
    if size is None and width is None and height is None:
        return ["give 'size' (long side) or 'width' and/or 'height'"]
    if size is not None and (width is not None or height is not None):
        return ["give either 'size' or 'width'/'height', not both"]
    return []


@node(
    "image.resize",
    category="image",
    inputs={"image": Input(Image)},
    params={
        "size": Param(Int, None, min=1, max=16384, description="long side in pixels (keeps aspect)"),
        "width": Param(Int, None, min=1, max=16384, description="width; alone keeps the aspect"),
        "height": Param(Int, None, min=1, max=16384, description="height; alone keeps the aspect"),
        "mode": Param(Str, "bicubic", choices=_INTERPOLATION, description="interpolation"),
    },
    outputs={"image": Image},
    check=_check_resize,
)
def resize(image: torch.Tensor, size: int | None, width: int | None, height: int | None, mode: str) -> torch.Tensor:
    """Resize a batch of images (antialiased when shrinking)."""
    h, w = image.shape[-2:]
    if size is not None:
        new_h, new_w = long_side_size(h, w, size)
    elif width is not None and height is not None:
        new_h, new_w = height, width
    elif width is not None:
        new_h, new_w = max(1, round(h * width / w)), width
    else:
        assert height is not None
        new_h, new_w = height, max(1, round(w * height / h))
    if (new_h, new_w) == (h, w):
        return image
    antialias = mode in ("bilinear", "bicubic")
    out = F.interpolate(
        image, size=(new_h, new_w), mode=mode, antialias=antialias, align_corners=False if antialias else None
    )
    return out.clamp_(0.0, 1.0)


@node(
    "image.grid",
    category="image",
    inputs={"images": Input(List(Image), description="images or batches; all are laid out in order")},
    params={
        "columns": Param(Int, None, min=1, max=1024, description="columns; default: a near-square grid"),
        "padding": Param(Int, 2, min=0, max=256, description="pixels between cells"),
        "background": Param(FloatT, 1.0, min=0.0, max=1.0, description="grey level of the padding"),
    },
    outputs={"image": Image},
)
def grid(images: list[torch.Tensor], columns: int | None, padding: int, background: float) -> torch.Tensor:
    """Lay images out in a grid; smaller images are centred in cells as large as the largest."""
    tiles = [img for batch in images for img in batch]
    if not tiles:
        raise NodeError("no images to lay out")
    channels = max(t.shape[0] for t in tiles)
    cell_h = max(t.shape[1] for t in tiles)
    cell_w = max(t.shape[2] for t in tiles)
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    ref = tiles[0]
    canvas = torch.full(
        (channels, rows * cell_h + (rows + 1) * padding, cols * cell_w + (cols + 1) * padding),
        float(background),
        dtype=ref.dtype,
        device=ref.device,
    )
    if channels == 4:
        canvas[3] = 1.0
    for index, tile in enumerate(tiles):
        tile = _match_channels(tile, channels)
        r, c = divmod(index, cols)
        top = padding + r * (cell_h + padding) + (cell_h - tile.shape[1]) // 2
        left = padding + c * (cell_w + padding) + (cell_w - tile.shape[2]) // 2
        canvas[:, top : top + tile.shape[1], left : left + tile.shape[2]] = tile
    return canvas.unsqueeze(0)


def _match_channels(tile: torch.Tensor, channels: int) -> torch.Tensor:
    have = tile.shape[0]
    if have == channels:
        return tile
    if have == 1:
        tile = tile.expand(3, *tile.shape[1:]) if channels >= 3 else tile
        have = tile.shape[0]
    if channels == 4 and have == 3:
        return torch.cat([tile, torch.ones_like(tile[:1])], dim=0)
    if channels == 3 and have == 4:
        return tile[:3]
    return tile
