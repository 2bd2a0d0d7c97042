"""The built-in node library, registered through the ``artgraph`` entry point
exactly like a third-party plugin (see pyproject.toml)."""

from __future__ import annotations

from artgraph import hookimpl

from . import data, image


@hookimpl
def artgraph_register_nodes() -> list[object]:
    return [*image.NODES, *data.NODES]
