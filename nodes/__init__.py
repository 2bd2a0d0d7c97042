"""The built-in node library, registered through the ``artgraph`` entry point
exactly like a third-party plugin (see pyproject.toml)."""

from __future__ import annotations

from artgraph import PortType, hookimpl

from . import (
    animation,
    data,
    datasets,
    evolve,
    features,
    gan,
    genomes,
    image,
    objectives,
    optimize,
    plot,
    stipple,
    style,
    tour,
)


@hookimpl
def artgraph_register_types() -> list[PortType]:
    return [*features.TYPES, *datasets.TYPES, *genomes.TYPES, *tour.TYPES]


@hookimpl
def artgraph_register_nodes() -> list[object]:
    return [
        *image.NODES,
        *data.NODES,
        *features.NODES,
        *objectives.NODES,
        *optimize.NODES,
        *style.NODES,
        *datasets.NODES,
        *gan.NODES,
        *animation.NODES,
        *genomes.NODES,
        *evolve.NODES,
        *stipple.NODES,
        *tour.NODES,
        *plot.NODES,
    ]
