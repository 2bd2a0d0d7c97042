"""Evolutionary search: pictures made of shapes, evolved or annealed towards an objective.

genomes.py            genome.triangles, genome.circles, genome.strokes; the Genome type and its renderers
harness.py            what both searches share: batched scoring, search state, checkpoints (no nodes)
genetic_algorithm.py  evolve.genetic
annealing.py          evolve.anneal

The names callers use most are re-exported here (``from artgraph.nodes import search``,
then ``search.genetic(...)``, ``search.Scorer``).
"""

from __future__ import annotations

from . import genomes
from .annealing import accept_probability, anneal, temperature
from .genetic_algorithm import GeneticSettings, genetic, next_generation, tournament
from .harness import Scorer, SearchState, load_checkpoint, save_checkpoint

NODES = [genomes.triangles, genomes.circles, genomes.strokes, genetic, anneal]
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
    "load_checkpoint",
    "next_generation",
    "save_checkpoint",
    "temperature",
    "tournament",
]
