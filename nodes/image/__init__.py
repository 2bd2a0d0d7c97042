"""Images in and out: load, save, resize, grid, animated GIFs, and plots of run histories.

basic.py    image.load, image.save, image.resize, image.grid
gif.py      image.save_gif
plot.py     history.plot
"""

from __future__ import annotations

from artgraph import PortType

from . import basic, gif, plot

NODES = [basic.load, basic.save, basic.resize, basic.grid, gif.save_gif, plot.plot_history]
TYPES: list[PortType] = []
