"""Evolutionary search: pictures made of shapes, evolved, annealed or painted one by one towards an objective.

genomes.py            genome.triangles, genome.circles, genome.strokes; the Genome type and its renderers
harness.py            what the searches share: batched scoring, search state, checkpoints (no nodes)
genetic_algorithm.py  evolve.genetic
annealing.py          evolve.anneal
greedy.py             evolve.greedy (one shape at a time, as fogleman's primitive paints)
colour_fit.py         the colour of a shape that best fits objective.pixel, solved (for evolve.greedy)
soft_render.py        a differentiable drawing of any genome (soft edges that sharpen into the hard one)
polish.py             optimize.shapes (Adam on every shape at once, through the soft renderer)
evolution_strategy.py evolve.es (PGPE, SNES or CMA-ES from EvoTorch, scored in batches)

The names callers use most are re-exported here (``from artgraph.nodes import search``,
then ``search.genetic(...)``, ``search.Scorer``); the greedy painter is
``search.greedy.greedy(...)``, the polish ``search.polish.shapes(...)``.
"""

from __future__ import annotations

from . import evolution_strategy, genomes, greedy, polish
from .annealing import accept_probability, anneal, temperature
from .genetic_algorithm import GeneticSettings, genetic, next_generation, tournament
from .harness import Scorer, SearchState, load_checkpoint, save_checkpoint

NODES = [
    genomes.triangles,
    genomes.circles,
    genomes.strokes,
    genetic,
    anneal,
    greedy.greedy,
    polish.shapes,
    evolution_strategy.es,
]
TYPES = [genomes.GenomeType]

__all__ = [
    "NODES",
    "TYPES",
    "GeneticSettings",
    "Scorer",
    "SearchState",
    "accept_probability",
    "anneal",
    "evolution_strategy",
    "genetic",
    "genomes",
    "greedy",
    "load_checkpoint",
    "next_generation",
    "polish",
    "save_checkpoint",
    "temperature",
    "tournament",
]
