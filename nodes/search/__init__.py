"""Evolutionary search: pictures made of shapes, evolved, annealed or painted one by one towards an objective.

genomes.py            genome.triangles, genome.circles, genome.strokes; the Genome type and its renderers
harness.py            what the searches share: batched scoring, search state, checkpoints (no nodes)
genetic_algorithm.py  evolve.genetic
annealing.py          evolve.anneal
greedy.py             evolve.greedy (one shape at a time, as fogleman's primitive paints)
colour_fit.py         the colour of a shape that best fits objective.pixel, solved (for evolve.greedy)

The names callers use most are re-exported here (``from artgraph.nodes import search``,
then ``search.genetic(...)``, ``search.Scorer``); the greedy painter is ``search.greedy.greedy(...)``.
"""

from __future__ import annotations

from . import genomes, greedy
from .annealing import accept_probability, anneal, temperature
from .genetic_algorithm import GeneticSettings, genetic, next_generation, tournament
from .harness import Scorer, SearchState, load_checkpoint, save_checkpoint

NODES = [genomes.triangles, genomes.circles, genomes.strokes, genetic, anneal, greedy.greedy]
TYPES = [genomes.GenomeType]

__all__ = [
    "NODES",
    "TYPES",
    "GeneticSettings",
    "Scorer",
    "SearchState",
    "accept_probability",
    "anneal",
    "genetic",
    "genomes",
    "greedy",
    "load_checkpoint",
    "next_generation",
    "save_checkpoint",
    "temperature",
    "tournament",
]
