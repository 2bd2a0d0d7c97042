"""Palettes: a port type of our own, a node that makes one, a node that uses one.

``Palette`` shows how a plugin adds a port type: a :class:`~artgraph.PortType`
returned from the ``artgraph_register_types`` hook. Because it declares
``parents=("Tensor",)`` a palette may also feed any input that takes a Tensor,
and ``codec="tensor"`` lets the disk cache store it as safetensors, so an
expensive palette survives a restart.
"""

from __future__ import annotations

import torch

from artgraph import Context, Image, Input, Int, NodeError, Output, Param, PortType, node

from .effects import join_alpha, split_alpha

#: Pixels sampled for k-means: plenty for a stable palette, and bounded, so a
#: 16-megapixel image costs no more than a small one.
_MAX_SAMPLES = 65536
#: Pixels mapped at once by example.quantize, to bound the distance matrix.
_CHUNK = 1 << 18


def _check_palette(value: object) -> str | None:
    """Cheap run-time check of a produced palette (it runs on every output)."""
    if not isinstance(value, torch.Tensor):
        return f"expected a palette tensor [N,C], got {type(value).__name__}"
    if value.ndim != 2 or value.shape[0] < 1:
        return f"expected a palette tensor [N,C] with N >= 1, got shape {list(value.shape)}"
    if not value.is_floating_point():
        return f"expected float colours in [0,1], got dtype {value.dtype}"
    return None


Palette = PortType(
    "Palette",
    "colours as a float tensor [N,C] in [0,1], one row per colour, darkest first",
    parents=("Tensor",),
    value=_check_palette,
    codec="tensor",  # stored as safetensors by the disk cache
    on_device=True,  # kept on the run's device between nodes
)


def _luma_order(colours: torch.Tensor) -> torch.Tensor:
    """Sort colours darkest first, so the same picture gives the same palette order."""
    if colours.shape[1] == 3:
        weights = torch.tensor((0.299, 0.587, 0.114), device=colours.device, dtype=colours.dtype)
        key = colours @ weights
    else:
        key = colours.mean(dim=1)
    return colours[torch.argsort(key, stable=True)]


@node(
    "example.palette",
    category="example",
    seeded=True,
    inputs={"image": Input(Image, description="the picture (or batch) to take colours from")},
    params={
        "colors": Param(Int, 8, min=1, max=256, description="how many colours"),
        "iterations": Param(Int, 15, min=1, max=200, description="k-means refinement steps"),
        "seed": Param(Int, None, min=0, description="random seed; default: derived from the graph"),
    },
    outputs={"palette": Output(Palette, "[colors, C] colours, darkest first")},
)
def palette(ctx: Context, image: torch.Tensor, colors: int, iterations: int) -> torch.Tensor:
    """Find the main colours of an image (k-means, k-means++ start), darkest first.

    Random choices come from ``ctx.rng``, seeded by ``seed`` (or, when it is unset,
    by the node's cache key), so the same graph always gives the same palette and
    the node stays cacheable. Pixels of the whole batch are pooled into one palette.
    """
    colour, _ = split_alpha(image)
    pixels = colour.float().permute(0, 2, 3, 1).reshape(-1, colour.shape[1])
    if pixels.shape[0] > _MAX_SAMPLES:
        # Draw on the CPU generator, then move: same seed, same pixels on any device.
        pick = torch.randperm(pixels.shape[0], generator=ctx.rng)[:_MAX_SAMPLES]
        pixels = pixels[pick.to(pixels.device)]
    centres = _kmeans_plus_plus(pixels, colors, ctx.rng)
    with ctx.progress(iterations, desc=f"{ctx.node_id}: k-means") as bar:
        for _ in range(iterations):
            nearest = torch.cdist(pixels, centres).argmin(dim=1)
            sums = torch.zeros_like(centres).index_add_(0, nearest, pixels)
            counts = torch.bincount(nearest, minlength=centres.shape[0]).unsqueeze(1)
            # An empty cluster keeps its centre rather than collapsing to 0/0.
            moved = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
            shift = (moved - centres).abs().max().item()
            centres = moved
            bar.update(1, shift=shift)
            if shift < 1e-5:
                break
    ctx.log.info("palette of %d colours from %d pixels", centres.shape[0], pixels.shape[0])
    return _luma_order(centres.clamp(0.0, 1.0)).to(image.dtype)


def _kmeans_plus_plus(pixels: torch.Tensor, k: int, rng: torch.Generator) -> torch.Tensor:
    """k starting centres, each drawn with probability ~ squared distance to the others.

    Spreads the start over the image's colours, so k-means rarely ends in a poor
    local minimum. With fewer distinct colours than k, some centres repeat.
    """
    first = int(torch.randint(pixels.shape[0], (1,), generator=rng))
    centres = [pixels[first]]
    closest = ((pixels - pixels[first]) ** 2).sum(dim=1)
    for _ in range(1, k):
        weights = closest.double().cpu()
        if float(weights.sum()) <= 0.0:
            centres.append(centres[-1])
            continue
        index = int(torch.multinomial(weights, 1, generator=rng))
        centres.append(pixels[index])
        closest = torch.minimum(closest, ((pixels - pixels[index]) ** 2).sum(dim=1))
    return torch.stack(centres)


@node(
    "example.quantize",
    category="example",
    inputs={
        "image": Input(Image),
        "palette": Input(Palette, description="from example.palette (of this or another image)"),
    },
    outputs={"image": Image},
)
def quantize(image: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Repaint every pixel with the nearest palette colour; alpha is kept.

    A palette taken from another image transfers that image's colour scheme.
    """
    colour, alpha = split_alpha(image)
    b, c, h, w = colour.shape
    if palette.shape[1] != c:
        raise NodeError(
            f"the palette has {palette.shape[1]} channels but the image has {c} colour channels; "
            "take the palette from an image of the same mode (RGB or L)"
        )
    pixels = colour.float().permute(0, 2, 3, 1).reshape(-1, c)
    colours = palette.to(device=pixels.device, dtype=torch.float32)
    out = torch.empty_like(pixels)
    for start in range(0, pixels.shape[0], _CHUNK):
        part = pixels[start : start + _CHUNK]
        out[start : start + _CHUNK] = colours[torch.cdist(part, colours).argmin(dim=1)]
    out = out.reshape(b, h, w, c).permute(0, 3, 1, 2).to(image.dtype)
    return join_alpha(out, alpha)


NODES = [palette, quantize]
