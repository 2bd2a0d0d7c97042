"""Datasets to train on, and saving plain data and tensors.

datasets.py  data.images, data.mnist, data.digits; the Dataset type (ImageSet)
files.py     data.save (JSON, .npy, .safetensors)
"""

from __future__ import annotations

from . import datasets, files

NODES = [datasets.images, datasets.mnist, datasets.digits, files.save]
TYPES = [datasets.Dataset]
