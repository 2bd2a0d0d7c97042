"""The kinds of data nodes pass to each other: tensors, images, models, objectives.

:mod:`artgraph.types` holds the rules (what a port type is, which may feed
which) and the plain types written in YAML; this module holds the shared port
kinds built on them, so the rules do not depend on what flows. Plugins add
their own kinds the same way (``PortType(...)`` from the
``artgraph_register_types`` hook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from .objective import Objective as _Objective
from .types import PLAIN_TYPES, TENSOR, PortType

if TYPE_CHECKING:
    import torch


def _is_tensor(value: object) -> TypeGuard[torch.Tensor]:
    # Avoid importing torch for graphs that never touch a tensor.
    return type(value).__module__.startswith("torch") and hasattr(value, "ndim")


def _check_tensor(value: object) -> str | None:
    return None if _is_tensor(value) else f"expected a torch.Tensor, got {type(value).__name__}"


def _check_image(value: object) -> str | None:
    if not _is_tensor(value):
        return f"expected an image tensor [B,C,H,W], got {type(value).__name__}"
    if value.ndim != 4:
        shape = list(value.shape)
        return f"expected an image tensor [B,C,H,W], got shape {shape}"
    if not value.is_floating_point():
        return f"expected a float image in [0,1], got dtype {value.dtype}"
    return None


def _check_objective(value: object) -> str | None:
    return None if isinstance(value, _Objective) else f"expected an artgraph.Objective, got {type(value).__name__}"


Tensor = PortType("Tensor", "a torch.Tensor", value=_check_tensor, codec=TENSOR, on_device=True)
Image = PortType(
    "Image",
    "float32 tensor [B,C,H,W] in [0,1]; a batch is always a batch",
    parents=("Tensor",),
    value=_check_image,
    codec=TENSOR,
    on_device=True,
)
Model = PortType("Model", "a model (torch.nn.Module or callable); memory cache only")
Objective = PortType(
    "Objective",
    "a score per image, lower is better: images [B,C,H,W] -> [B]; memory cache only",
    value=_check_objective,
)

#: Every type a graph can use without a plugin.
BUILTIN_TYPES: tuple[PortType, ...] = (*PLAIN_TYPES, Tensor, Image, Model, Objective)
