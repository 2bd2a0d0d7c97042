"""Print-shop effects: posterize and halftone.

Both nodes take any batch ``[B,C,H,W]`` of float images in [0,1] and return a
batch of the same size on the same device. An alpha channel (C == 2 or C == 4,
PIL's "LA" and "RGBA") is passed through untouched: it describes where the
image is, not what colour it is, so an effect should not change it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention

from artgraph import Float, Image, Input, Int, NodeError, Output, Param, Str, node

#: Rec. 601 luma weights, the ones PIL uses for convert("L"), so "gray" here
#: matches image.load's mode L.
_LUMA = (0.299, 0.587, 0.114)


def split_alpha(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(colour, alpha)``; alpha is None unless C is 2 (gray+alpha) or 4 (RGBA)."""
    if image.shape[1] in (2, 4):
        return image[:, :-1], image[:, -1:]
    return image, None


def join_alpha(colour: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    return colour if alpha is None else torch.cat([colour, alpha.to(colour.dtype)], dim=1)


# --- posterize ---------------------------------------------------------------


@node(
    "example.posterize",
    category="example",
    inputs={"image": Input(Image, description="any float image batch [B,C,H,W] in [0,1]")},
    params={
        "levels": Param(Int, 4, min=2, max=256, description="tone levels per channel (2 = pure on/off)"),
    },
    outputs={"image": Output(Image, "same size and channels, alpha untouched")},
)
def posterize(image: torch.Tensor, levels: int) -> torch.Tensor:
    """Reduce every colour channel to a few evenly spaced tone levels.

    Levels include both ends (0 and 1), so black stays black, white stays white
    and ``levels=2`` gives pure on/off channels, like a screen print with one ink
    per channel. Rounding to the nearest level (not flooring) keeps the mean
    brightness of smooth gradients. Alpha is kept as it is.
    """
    if levels < 2:  # also reached when the value is wired from another node
        raise NodeError(f"levels must be at least 2, got {levels}")
    colour, alpha = split_alpha(image)
    steps = levels - 1
    out = torch.round(colour.clamp(0.0, 1.0) * steps) / steps
    return join_alpha(out, alpha)


# --- halftone ----------------------------------------------------------------

#: Screen angles of the C, M, Y and K plates relative to the ``angle`` param (the
#: K plate's angle). With the default 45° these are the classic 15°, 75°, 0°, 45°:
#: the cyan, magenta and black screens sit 30° apart, which keeps their moiré
#: fine (the "rosette"), and yellow, the least visible ink, takes the 15° gap.
_CMYK_OFFSETS = (-30.0, 30.0, -45.0, 0.0)
#: Coverage this close to 0 or 1 prints as paper or solid ink.
_SNAP = 1e-4


def _spot_area(d: torch.Tensor) -> torch.Tensor:
    """Fraction of a unit cell within distance ``d`` of its centre.

    This is the *spot function* of a round-dot screen: a pixel at distance d is
    inked when the cell's tone exceeds it, so a tone t inks exactly a fraction t
    of every cell. Dots grow as circles until they touch the cell edges (t =
    pi/4), then join, leaving shrinking holes at the corners. For d > 1/2 the
    circle is clipped by the four edges, each cutting off a circular segment.
    """
    d = d.clamp(0.0, math.sqrt(0.5))
    circle = math.pi * d * d
    r = d.clamp(min=0.5)
    segment = r * r * torch.acos(0.5 / r) - 0.5 * torch.sqrt((r * r - 0.25).clamp(min=0.0))
    return torch.where(d > 0.5, circle - 4.0 * segment, circle)


def _spot_slope(d: torch.Tensor) -> torch.Tensor:
    """d(spot area)/dd: the length of the circle of radius d inside the cell.

    Used to antialias the dot edges: it converts "one pixel further out" into
    "this much more tone", so the edge is a one-pixel ramp instead of a jagged step.
    """
    d = d.clamp(0.0, math.sqrt(0.5))
    r = d.clamp(min=0.5)
    return torch.where(d > 0.5, 2.0 * math.pi * d - 8.0 * d * torch.acos(0.5 / r), 2.0 * math.pi * d)


def _screen(ink: torch.Tensor, cell: int, angles: tuple[float, ...]) -> torch.Tensor:
    """Turn continuous ink coverage ``[B,K,H,W]`` into antialiased dots, one angle per plate.

    For each pixel we find its cell on a grid of ``cell``-pixel squares rotated by
    the plate's angle, read the plate's mean coverage around that cell's centre,
    and ink the pixel when the spot function at its distance from the centre is
    below that coverage.
    """
    _, plates, height, width = ink.shape
    device = ink.device
    # Mean coverage around every pixel (a box as large as a cell, odd so that it
    # is centred). Sampled at the cell centres below, this is the tone of a cell.
    k = cell | 1
    mean = F.avg_pool2d(ink, k, stride=1, padding=k // 2, count_include_pad=False)

    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5  # pixel centres
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    out = torch.empty_like(ink)
    for p in range(plates):
        theta = math.radians(angles[p])
        cos, sin = math.cos(theta), math.sin(theta)
        u = (x * cos + y * sin) / cell  # pixel position in (rotated) cell units
        v = (y * cos - x * sin) / cell
        cu, cv = torch.floor(u) + 0.5, torch.floor(v) + 0.5  # centre of its cell
        dist = torch.hypot(u - cu, v - cv)
        cx = (cu * cos - cv * sin) * cell  # that centre back in pixels
        cy = (cu * sin + cv * cos) * cell
        grid = torch.stack([2.0 * cx / width - 1.0, 2.0 * cy / height - 1.0], dim=-1)
        grid = grid.unsqueeze(0).expand(ink.shape[0], -1, -1, -1)
        tone = F.grid_sample(
            mean[:, p : p + 1], grid, mode="bilinear", padding_mode="border", align_corners=False
        ).squeeze(1)
        # Interpolation leaves solid ink at 0.9999999: snap to paper / solid so
        # that those stay exact instead of showing the half-inked ramp below.
        paper, solid = tone <= _SNAP, tone >= 1.0 - _SNAP
        spot = _spot_area(dist)
        # Tone change across one pixel; at least a pixel's share of the cell,
        # as the slope vanishes at the very centre and the corners.
        ramp = (_spot_slope(dist) / cell).clamp(min=1.0 / (cell * cell))
        dots = ((tone - spot) / ramp + 0.5).clamp(0.0, 1.0)
        out[:, p] = torch.where(paper, 0.0, torch.where(solid, 1.0, dots))
    return out


@node(
    "example.halftone",
    category="example",
    inputs={"image": Input(Image, description="gray, gray+alpha, RGB or RGBA batch")},
    params={
        "cell": Param(Int, 8, min=2, max=512, description="dot spacing in pixels (screen cell size)"),
        "angle": Param(Float, 45.0, min=-360.0, max=360.0, description="screen angle in degrees (K plate in cmyk)"),
        "mode": Param(
            Str,
            "gray",
            choices=("gray", "cmyk"),
            description="gray: one black screen; cmyk: four screens at classic angles",
        ),
    },
    outputs={"image": Output(Image, "the print: same size and channels, alpha untouched")},
)
def halftone(image: torch.Tensor, cell: int, angle: float, mode: str) -> torch.Tensor:
    """Reprint an image as a round-dot halftone screen, as a printing press would.

    Each screen cell gets one dot whose area matches the cell's mean ink coverage
    (a cell of 30 % coverage gets a dot over 30 % of it), so tones survive the
    screening: after antialiasing to pixels, flat tones print within a few
    percent of their value. ``gray`` prints one black screen of the luma (Rec. 601, as PIL's
    "L"). ``cmyk`` separates RGB into cyan, magenta, yellow and black with the
    simple device-independent formula (K = 1 - max(R,G,B), full gray-component
    replacement; no ICC profile), screens each ink at its own angle and overprints
    them as ideal subtractive inks. The output has the input's size and channels;
    alpha is kept.
    """
    if cell < 2:
        raise NodeError(f"cell must be at least 2 pixels, got {cell}")
    colour, alpha = split_alpha(image)
    channels = colour.shape[1]
    if channels not in (1, 3):
        raise NodeError(
            f"halftone needs a gray (1), gray+alpha (2), RGB (3) or RGBA (4) image, got {image.shape[1]} channels"
        )
    x = colour.float().clamp(0.0, 1.0)
    if mode == "gray":
        if channels == 3:
            weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            luma = (x * weights).sum(dim=1, keepdim=True)
        else:
            luma = x
        paper = 1.0 - _screen(1.0 - luma, cell, (angle,))
        out = paper.expand(-1, channels, -1, -1)
    elif mode == "cmyk":
        rgb = x if channels == 3 else x.expand(-1, 3, -1, -1)
        black = 1.0 - rgb.amax(dim=1, keepdim=True)
        # Where K is 1 the colour inks are undefined (0/0); no colour ink is right.
        cmy = ((1.0 - rgb - black) / (1.0 - black).clamp(min=1e-6)).clamp(0.0, 1.0)
        inks = _screen(torch.cat([cmy, black], dim=1), cell, tuple(angle + o for o in _CMYK_OFFSETS))
        rgb_out = (1.0 - inks[:, :3]) * (1.0 - inks[:, 3:])
        # A gray input has no colour ink (C = M = Y = 0), so its print is gray too.
        out = rgb_out if channels == 3 else rgb_out[:, :1]
    else:
        raise NodeError(f"unknown mode '{mode}'; use 'gray' or 'cmyk'")
    return join_alpha(out.to(image.dtype), alpha)


NODES = [posterize, halftone]
