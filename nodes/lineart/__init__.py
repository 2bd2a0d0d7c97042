"""Single-line drawings ("TSP art"): stipple an image, find a short tour through the points, draw it.

stipple.py  points.stipple
tour.py     evolve.ant_colony, tour.render; the Points and Tour types
tsp.py      the tour algorithms: nearest neighbour, 2-opt, the ant colony (plain numpy, no nodes)
"""

from __future__ import annotations

from . import stipple, tour

NODES = [stipple.stipple, tour.ant_colony, tour.render]
TYPES = [tour.Points, tour.TourT]
