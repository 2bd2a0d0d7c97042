"""Opening image files that may come from a stranger.

An image's header says how large it is, and a 100-byte PNG can claim
20,000×20,000 pixels: :func:`open_image` refuses one that claims more than
``limits.IMAGE_PIXELS`` before a single pixel is decoded. Nodes that read
images (the built-in ones and plugins') open them with it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import limits
from .errors import NodeError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


class ImageTooLarge(NodeError, ValueError):
    """An image that claims more pixels than ``limits.IMAGE_PIXELS`` (refused before decoding).

    A :class:`NodeError` for the image nodes, and a ``ValueError`` for callers that
    treat any unreadable file alike."""

    def __init__(self, path: str | os.PathLike[str], claim: str) -> None:
        self.path = os.fspath(path)
        super().__init__(
            f"image {self.path} claims {claim}, more than artgraph decodes: "
            f"{limits.IMAGE_PIXELS.how_to_raise()} if you trust the file"
        )


def check_image_pixels(width: int, height: int, path: str | os.PathLike[str]) -> None:
    """Refuse (:class:`ImageTooLarge`) a width × height over ``limits.IMAGE_PIXELS``."""
    if width * height > limits.IMAGE_PIXELS.value:
        raise ImageTooLarge(path, f"{width:,}×{height:,} = {width * height:,} pixels")


@contextmanager
def _pil_threshold(pixels: int | None) -> Iterator[None]:
    """PIL's own decompression-bomb threshold (a process-wide setting) for the block."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def open_unchecked(path: str | os.PathLike[str]) -> PILImage:
    """``PIL.Image.open`` (lazy: reads the header, decodes nothing) without PIL's size check,
    so that the caller's check, which names width and height, is the one that speaks."""
    from PIL import Image

    with _pil_threshold(None):
        return Image.open(path)


@contextmanager
def open_image(path: str | os.PathLike[str]) -> Iterator[PILImage]:
    """An image opened for reading, refused (:class:`ImageTooLarge`) when its header claims
    more than ``limits.IMAGE_PIXELS``, before any pixel is decoded.

    Inside the block, PIL's own threshold is the same limit, so PIL's check never fires
    for an image under it; should a part of the file (a frame, a tile) claim more, PIL's
    DecompressionBombError or DecompressionBombWarning becomes the same error. (PIL's
    threshold is process-wide: artgraph runs nodes one at a time.)
    """
    from PIL import Image

    img = open_unchecked(path)
    try:
        check_image_pixels(img.width, img.height, path)
        with _pil_threshold(limits.IMAGE_PIXELS.value), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                yield img
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                found = re.search(r"\((\d+) pixels\)", str(exc))
                claim = f"a part of {int(found.group(1)):,} pixels" if found else "a part too large"
                raise ImageTooLarge(path, claim) from None
    finally:
        img.close()
