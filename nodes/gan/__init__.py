"""GANs: train a generator on a dataset, save and load it, sample, interpolate.

models.py      Generator, Discriminator, their configs, initialisation and size (no nodes)
checkpoint.py  reading and checking generator files and training checkpoints, resuming (no nodes)
training.py    gan.train: its params, the networks built (or resumed), then the trainer
trainer.py     the training loop: a discriminator step, a generator step, saving
files.py       gan.save, gan.load
sampling.py    gan.sample, gan.interpolate, and the seeded latent draws

The names callers use most are re-exported here (``from artgraph.nodes import gan``,
then ``gan.train(...)``, ``gan.Generator``).
"""

from __future__ import annotations

from artgraph import PortType

from .checkpoint import CHECKPOINT_FORMAT, build_checked, config_problems, plan_generator, shape_problems
from .files import load, save
from .models import (
    DCGAN_BLOCKS,
    DCGAN_WIDTH,
    FORMAT,
    MLP_HIDDEN,
    NORMALISATION,
    Discriminator,
    Generator,
    dcgan_layout,
    generator_config,
    parameter_count,
)
from .sampling import draw_z, generate, interpolate, sample, slerp
from .training import default_spectral_norm, train

NODES = [train, save, load, sample, interpolate]
TYPES: list[PortType] = []

__all__ = [
    "CHECKPOINT_FORMAT",
    "DCGAN_BLOCKS",
    "DCGAN_WIDTH",
    "FORMAT",
    "MLP_HIDDEN",
    "NODES",
    "NORMALISATION",
    "TYPES",
    "Discriminator",
    "Generator",
    "build_checked",
    "config_problems",
    "dcgan_layout",
    "default_spectral_norm",
    "draw_z",
    "generate",
    "generator_config",
    "interpolate",
    "load",
    "parameter_count",
    "plan_generator",
    "sample",
    "save",
    "shape_problems",
    "slerp",
    "train",
]
