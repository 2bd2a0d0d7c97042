"""The built-in node library, registered through the ``artgraph`` entry point
exactly like a third-party plugin (see pyproject.toml).

One subpackage per category of the README's table; a node's ``category`` is the
name of its subpackage, and each subpackage's ``__init__`` lists the nodes
(``NODES``) and port types (``TYPES``) it registers:

image/    image.load, image.save, image.resize, image.grid, image.save_gif, history.plot
data/     data.images, data.mnist, data.digits, data.save
style/    vgg.*, loss.gram, objective.*, optimize.image, style.transfer
gan/      gan.train, gan.save, gan.load, gan.sample, gan.interpolate
search/   genome.*, evolve.genetic, evolve.anneal, evolve.greedy
lineart/  points.stipple, evolve.ant_colony, tour.render

Private helpers they share: _imageio.py (PIL images <-> tensors), _tensorfile.py
(safetensors files with JSON metadata), _colour.py (colours given as text).
"""

from __future__ import annotations

from artgraph import PortType, hookimpl

from . import data, gan, image, lineart, search, style

#: Every subpackage, in the order of the README's table.
SUBPACKAGES = (image, data, style, gan, search, lineart)


@hookimpl
def artgraph_register_types() -> list[PortType]:
    return [port_type for package in SUBPACKAGES for port_type in package.TYPES]


@hookimpl
def artgraph_register_nodes() -> list[object]:
    return [fn for package in SUBPACKAGES for fn in package.NODES]
