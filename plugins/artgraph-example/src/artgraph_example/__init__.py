"""artgraph-example: an example third-party node pack for artgraph.

artgraph finds this package through the ``artgraph`` entry point declared in
pyproject.toml, imports it, and calls the two hooks below. That is the whole
plugin contract; everything else here is ordinary Python.
"""

from __future__ import annotations

from artgraph import PortType, hookimpl

from . import effects, palettes
from .effects import halftone, posterize
from .palettes import Palette, palette, quantize

__all__ = ["Palette", "halftone", "palette", "posterize", "quantize"]
__version__ = "0.1.0"


@hookimpl
def artgraph_register_types() -> list[PortType]:
    """New port types, registered before any plugin's nodes, so every plugin may use them."""
    return [Palette]


@hookimpl
def artgraph_register_nodes() -> list[object]:
    """The node functions of this pack."""
    return [*effects.NODES, *palettes.NODES]
