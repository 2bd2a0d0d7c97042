"""Objective nodes: content, style, total variation, pixel distance, weighted sums.

Every objective scores a batch ``[B,C,H,W]`` with one value per image (lower is
better), so the same object drives gradient descent on pixels and batched
scoring of a whole population. Targets (content features, blended Gram
matrices) are computed once per resolution, without gradients, and kept on the
device; the objective adapts to whatever size it is asked to score.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812

from artgraph import Float, Image, Input, Int, List, Model, NodeError, Objective, ObjectiveType, Param, Str, Sum, node

from .features import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, check_layer_params, feature_source, gram

log = logging.getLogger("artgraph.nodes.objectives")

#: Default weights, calibrated so that content + style with these weights gives an
#: image that is clearly stylised and still clearly shows the content (features of
#: every weight set are brought to ImageNet magnitudes by the model, see vgg.py).
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 3.0e3
TV_WEIGHT = 0.0


def resize_to(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (antialiased) to ``size`` = (H, W) unless it already is."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def _per_image(x: torch.Tensor) -> torch.Tensor:
    """The mean over everything but the batch dimension (no copy, whatever the layout)."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def _size(images: torch.Tensor) -> tuple[int, int]:
    """(H, W) of an image batch: the key of the per-resolution targets."""
    return images.shape[-2], images.shape[-1]


def _sum(losses: Iterable[torch.Tensor]) -> torch.Tensor:
    """The per-image losses of the layers added up: a tensor, there being at least one layer."""
    return cast(torch.Tensor, sum(losses))


def _aspect(image: torch.Tensor) -> float:
    return image.shape[-1] / image.shape[-2]


class ContentObjective(Objective):
    """Mean squared distance between VGG features of the image and of the target."""

    name = "content"
    compute_bound = True

    def __init__(self, model: object, target: torch.Tensor, layers: Sequence[str], weight: float) -> None:
        self.source = feature_source(model)
        self.source.want(layers)
        self.target = target.detach()
        self.layers, self.weight = list(layers), float(weight)
        self._targets: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.target_computations = 0

    def targets(self, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        if size not in self._targets:
            with torch.no_grad():
                self._targets[size] = self.source.model(resize_to(self.target, size), self.layers)
            self.target_computations += 1
        return self._targets[size]

    def aspect(self) -> float:
        return _aspect(self.target)

    def release(self) -> None:
        self.source.forget()

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        target = self.targets(_size(images))
        feats = self.source(images, self.layers)
        loss = _sum(_per_image((feats[name] - target[name]) ** 2) for name in self.layers)
        return {self.name: self.weight * loss}


class StyleObjective(Objective):
    """Mean squared distance between Gram matrices and a blend of the styles' Grams."""

    name = "style"
    compute_bound = True

    def __init__(
        self,
        model: object,
        styles: Sequence[torch.Tensor],
        layers: Sequence[str],
        layer_weights: Sequence[float] | None,
        blend: Sequence[float] | None,
        scale: float,
        weight: float,
    ) -> None:
        if not styles:
            raise NodeError("the style objective needs at least one style image")
        if layer_weights is not None and len(layer_weights) != len(layers):
            raise NodeError(f"'layer_weights' has {len(layer_weights)} values for {len(layers)} layers")
        styles = [s for batch in styles for s in batch.split(1)]
        if blend is not None and len(blend) != len(styles):
            raise NodeError(f"'blend' has {len(blend)} weights for {len(styles)} style images")
        blend = list(blend) if blend is not None else [1.0] * len(styles)
        if sum(blend) <= 0:
            raise NodeError("'blend' weights must add up to more than 0")
        self.source = feature_source(model)
        self.source.want(layers)
        self.styles = [s.detach() for s in styles]
        self.blend = [b / sum(blend) for b in blend]
        self.layers = list(layers)
        self.layer_weights = list(layer_weights) if layer_weights is not None else [1.0] * len(self.layers)
        self.scale, self.weight = float(scale), float(weight)
        self._targets: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.target_computations = 0

    def release(self) -> None:
        self.source.forget()

    def _style_size(self, style: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
        long_side = max(1, round(max(size) * self.scale))
        h, w = style.shape[-2:]
        factor = long_side / max(h, w)
        if factor > 2.0:
            log.warning("a style image of %dx%d px is upscaled %.1fx; results may look soft", w, h, factor)
        return max(1, round(h * factor)), max(1, round(w * factor))

    def targets(self, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        if size not in self._targets:
            blended: dict[str, torch.Tensor] = {}
            with torch.no_grad():
                for style, share in zip(self.styles, self.blend, strict=True):
                    feats = self.source.model(resize_to(style, self._style_size(style, size)), self.layers)
                    for name in self.layers:
                        g = share * gram(feats[name])
                        blended[name] = blended[name] + g if name in blended else g
            self._targets[size] = blended
            self.target_computations += 1
        return self._targets[size]

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        target = self.targets(_size(images))
        feats = self.source(images, self.layers)
        loss = _sum(
            lw * _per_image((gram(feats[name]) - target[name]) ** 2)
            for name, lw in zip(self.layers, self.layer_weights, strict=True)
        )
        return {self.name: self.weight * self.source.model.style_calibration * loss}


class TVObjective(Objective):
    """Total variation, L1 (anisotropic): mean absolute difference of neighbouring pixels."""

    name = "tv"

    def __init__(self, weight: float) -> None:
        self.weight = float(weight)

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
        dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(1)
        return {self.name: self.weight * (dx + dy)}


class PixelObjective(Objective):
    """Pixel distance to a target image (resized to the scored size), MSE or L1.

    With a ``resolution`` (long side in px), both are first shrunk (area average) to
    that size: a *coarse* likeness that asks for the right colours in the right
    places and leaves the details to other objectives, such as a style loss.
    """

    name = "pixel"

    def __init__(self, target: torch.Tensor, metric: str, weight: float, resolution: int = 0) -> None:
        self.target, self.metric, self.weight = target.detach(), metric, float(weight)
        self.resolution = int(resolution)
        self._resized: dict[tuple[int, int], torch.Tensor] = {}

    def aspect(self) -> float:
        return _aspect(self.target)

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        size = _size(images)
        if self.resolution and max(size) > self.resolution:
            factor = self.resolution / max(size)
            size = (max(1, round(size[0] * factor)), max(1, round(size[1] * factor)))
            images = F.interpolate(images, size=size, mode="area")
        if size not in self._resized:
            self._resized[size] = resize_to(self.target, size)
        target = self._resized[size]
        if target.shape[1] != images.shape[1]:
            raise NodeError(f"the pixel target has {target.shape[1]} channels, the images {images.shape[1]}")
        diff = images - target
        per = diff.abs() if self.metric == "l1" else diff**2
        return {self.name: self.weight * _per_image(per)}


@node(
    "objective.content",
    category="style",
    inputs={"model": Input(Model), "image": Input(Image, description="the content target")},
    params={
        "layers": Param(List(Str), DEFAULT_CONTENT_LAYERS, description="VGG layers compared"),
        "weight": Param(Float, CONTENT_WEIGHT, min=0.0),
    },
    outputs={"objective": ObjectiveType},
    check=check_layer_params("layers"),
)
def objective_content(model: object, image: torch.Tensor, layers: list[str], weight: float) -> Objective:
    """Keep the content: distance between VGG features of the image and the target."""
    return ContentObjective(model, image, layers, weight)


@node(
    "objective.style",
    category="style",
    inputs={"model": Input(Model), "images": Input(List(Image), description="one or more style images")},
    params={
        "layers": Param(List(Str), DEFAULT_STYLE_LAYERS, description="VGG layers whose Grams are matched"),
        "layer_weights": Param(List(Float), None, min=0.0, description="one weight per layer; default all 1"),
        "blend": Param(List(Float), None, min=0.0, description="one weight per style image; default equal"),
        "scale": Param(Float, 1.0, min=0.05, max=8.0, description="style size relative to the scored image"),
        "weight": Param(Float, STYLE_WEIGHT, min=0.0),
    },
    outputs={"objective": ObjectiveType},
    check=check_layer_params("layers"),
)
def objective_style(
    model: object,
    images: list[torch.Tensor],
    layers: list[str],
    layer_weights: list[float] | None,
    blend: list[float] | None,
    scale: float,
    weight: float,
) -> Objective:
    """Match the style: Gram matrices of VGG features against the (blended) style images."""
    return StyleObjective(model, images, layers, layer_weights, blend, scale, weight)


@node(
    "objective.tv",
    category="style",
    params={"weight": Param(Float, 1.0, min=0.0)},
    outputs={"objective": ObjectiveType},
)
def objective_tv(weight: float) -> Objective:
    """Smoothness: L1 total variation (mean |difference| of neighbouring pixels)."""
    return TVObjective(weight)


@node(
    "objective.pixel",
    category="style",
    inputs={"target": Input(Image)},
    params={
        "metric": Param(Str, "mse", choices=("mse", "l1")),
        "weight": Param(Float, 1.0, min=0.0),
        "resolution": Param(
            Int, 0, min=0, max=16384, description="compare at this long side, for a coarse likeness (0: as scored)"
        ),
    },
    outputs={"objective": ObjectiveType},
)
def objective_pixel(target: torch.Tensor, metric: str, weight: float, resolution: int = 0) -> Objective:
    """Closeness to a target image, pixel by pixel (the target is resized to fit)."""
    return PixelObjective(target, metric, weight, resolution)


@node(
    "objective.combine",
    category="style",
    inputs={"objectives": Input(List(ObjectiveType))},
    params={"weights": Param(List(Float), None, description="one per objective; default all 1")},
    outputs={"objective": ObjectiveType},
)
def objective_combine(objectives: list[Objective], weights: list[float] | None) -> Objective:
    """A weighted sum of objectives (each keeps its own term in loss histories)."""
    if weights is not None and len(weights) != len(objectives):
        raise NodeError(f"'weights' has {len(weights)} values for {len(objectives)} objectives")
    return Sum(zip(objectives, weights or [1.0] * len(objectives), strict=True))
