"""Nodes for VGG models, features and Gram matrices, plus the shared feature memo.

Several objectives usually look at the same image through the same VGG in one
optimisation step (content at relu4_2, style at relu1_1..relu5_1). The model
remembers the activations of the last image it saw and continues from them when
a deeper layer is asked for, so one step costs one forward pass however many
objectives share it — the same cost as a hand-written loop.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from artgraph import Context, Image, Input, Int, List, Model, NodeError, Param, PortType, Str, node
from artgraph import Path as PathT

from .vgg import ARCHS, VGG, WEIGHT_SETS, check_layers, load_vgg


def _check_features(value: object) -> str | None:
    if not isinstance(value, dict) or not all(hasattr(v, "shape") for v in value.values()):
        return f"expected a dict of layer name -> tensor, got {type(value).__name__}"
    return None


Features = PortType("Features", "VGG activations by layer name: {layer: [B,C,H,W]}", value=_check_features)
Gram = PortType("Gram", "Gram matrices by layer name: {layer: [B,C,C]}, F·Fᵀ/(C·H·W)", value=_check_features)

DEFAULT_STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
DEFAULT_CONTENT_LAYERS = ["relu4_2"]


class FeatureSource:
    """A VGG that remembers the activations of the last image it saw.

    A request for a deeper layer continues the forward pass from where the last
    one stopped, so objectives sharing a model cost one pass per image between
    them, whatever layers each asks for and in whatever order.

    Only the layers someone asked for (through :meth:`want` or a call) are kept,
    plus the deepest activation reached, to continue from. Keeping every layer
    would pin the pre-ReLU conv outputs, which autograd itself does not need:
    up to 185 MiB more at 512 px. For the same reason a ReLU whose conv output
    nobody asked for runs in place. A later request for a shallower layer that
    was not kept runs a new pass (and counts it in ``forward_passes``).
    """

    def __init__(self, model: VGG) -> None:
        self.model = model
        self._keep: set[int] = set()
        self._ref: weakref.ref[torch.Tensor] | None = None
        self._version = -1
        self._grad = False
        self._acts: dict[int, torch.Tensor] = {}
        self._frontier: tuple[int, torch.Tensor] | None = None
        self.forward_passes = 0

    def want(self, layers: Sequence[str]) -> None:
        """Name layers that will be asked for: they are kept, and checked now for a clear error."""
        self.model.check(layers)
        self._keep.update(self.model.index[name] for name in layers)

    def _same_image(self, images: torch.Tensor) -> bool:
        return (
            self._ref is not None
            and self._ref() is images
            and images._version == self._version
            and torch.is_grad_enabled() == self._grad
        )

    def _start(self, images: torch.Tensor) -> None:
        self._ref, self._version, self._grad = weakref.ref(images), images._version, torch.is_grad_enabled()
        self._acts, self._frontier = {}, (-1, self.model.preprocess(images))
        self.forward_passes += 1

    def __call__(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        model = self.model
        if not self._keep.issuperset(model.index.get(name, -1) for name in layers):
            self.want(layers)  # new names: checked (a clear error for unknown ones) and kept
        wanted = [model.index[name] for name in layers]
        if self._frontier is None or not self._same_image(images):
            self._start(images)
        elif any(i not in self._acts and i <= self._frontier[0] for i in wanted):
            self._start(images)  # a shallower layer that was not kept: a new pass
        assert self._frontier is not None
        at, x = self._frontier
        keep, features = self._keep, model.features
        for i in range(at + 1, max(wanted) + 1):
            layer = features[i]
            if isinstance(layer, nn.ReLU) and i - 1 not in keep:
                x = torch.relu_(x)  # the conv output it overwrites is nobody's
            else:
                x = layer(x)
            if i in keep:
                self._acts[i] = x
            self._frontier = (i, x)
        return {name: self._acts[i] for name, i in zip(layers, wanted, strict=True)}

    def forget(self) -> None:
        """Drop the memo and the autograd graph it may hold (when an optimisation ends)."""
        self._ref, self._acts, self._frontier = None, {}, None


_SOURCES: weakref.WeakKeyDictionary[VGG, FeatureSource] = weakref.WeakKeyDictionary()


def feature_source(model: object) -> FeatureSource:
    """The shared feature source of a VGG model."""
    if not isinstance(model, VGG):
        raise NodeError(f"expected a VGG model from vgg.model, got {type(model).__name__}")
    if model not in _SOURCES:
        _SOURCES[model] = FeatureSource(model)
    return _SOURCES[model]


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix per image: ``F·Fᵀ / (C·H·W)`` for F of shape [B, C, H·W] -> [B, C, C].

    Dividing by C·H·W makes the values independent of image size and layer
    width, so one style weight suits every layer and resolution. Features in
    channels_last layout (the VGG's on the CPU) are flattened as [B, H·W, C],
    which is free for them, where [B, C, H·W] would copy them and their gradient.
    """
    b, c, h, w = features.shape
    if c > 1 and features.is_contiguous(memory_format=torch.channels_last):
        flat = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
        return torch.bmm(flat.transpose(1, 2), flat) / (c * h * w)
    flat = features.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def check_layer_params(*names: str) -> Callable[[Mapping[str, object]], list[str]]:
    """A node ``check`` for params that list VGG layers: unknown names and empty lists
    become validation errors, reported before anything runs (the arch is not known
    yet, so names valid for any VGG pass here and are checked again by the model)."""

    def check(params: Mapping[str, object]) -> list[str]:
        out: list[str] = []
        for name in names:
            value = params.get(name)
            if isinstance(value, list):
                if not value:
                    out.append(f"'{name}' must name at least one layer")
                out += check_layers([str(v) for v in value])
        return out

    return check


@node(
    "vgg.model",
    seeded=True,
    category="style",
    params={
        "arch": Param(Str, "vgg19", choices=ARCHS, description="network depth"),
        "weights": Param(
            PathT,
            "auto",
            file="input",
            keywords=WEIGHT_SETS,
            description="auto | imagenet | hed | random | a .safetensors/.pth file",
        ),
        "pooling": Param(Str, "max", choices=("max", "avg"), description="pooling layers (avg: smoother)"),
        "seed": Param(Int, 0, min=0, description="seed for 'random' weights"),
    },
    outputs={"model": Model},
)
def vgg_model(ctx: Context, arch: str, weights: str, pooling: str, seed: int) -> VGG:
    """A frozen VGG feature extractor on the device (weights: see docs/style-transfer.md)."""
    model = load_vgg(arch, weights, pooling, seed).to(ctx.device)
    if ctx.device.type == "cpu":
        # oneDNN runs NHWC convolutions faster, forward and backward, and the
        # activations follow the weights' layout (gram() reads them without a copy):
        # about 5-10 % per style-transfer step and 10-20 % less memory on CPU.
        model = model.to(memory_format=torch.channels_last)
    ctx.log.info("loaded %s", model.extra_repr())
    return model


@node(
    "vgg.features",
    category="style",
    inputs={"model": Input(Model), "image": Input(Image)},
    params={"layers": Param(List(Str), DEFAULT_STYLE_LAYERS, description="layer names, e.g. relu1_1, conv4_2")},
    outputs={"features": Features},
    check=check_layer_params("layers"),
)
def vgg_features(model: VGG, image: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """VGG activations of an image at the named layers."""
    with torch.no_grad():
        return feature_source(model)(image, layers)


@node(
    "loss.gram",
    category="style",
    inputs={"features": Input(Features)},
    outputs={"gram": Gram},
)
def loss_gram(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Gram matrices F·Fᵀ/(C·H·W) of each layer's features (the style statistics)."""
    return {name: gram(f) for name, f in features.items()}
