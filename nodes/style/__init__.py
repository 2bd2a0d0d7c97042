"""Neural style transfer: VGG features, objectives, pixel optimisation, the ready-made node.

vgg.py         VGG feature extractors and their weight sets (no nodes)
features.py    vgg.model, vgg.features, loss.gram; the shared feature memo; the Features and Gram types
objectives.py  objective.content, objective.style, objective.tv, objective.pixel, objective.combine
optimize.py    optimize.image (L-BFGS or Adam on pixels)
transfer.py    style.transfer (Gatys, with neural-style's options)
"""

from __future__ import annotations

from . import features, objectives, optimize, transfer

NODES = [
    features.vgg_model,
    features.vgg_features,
    features.loss_gram,
    objectives.objective_content,
    objectives.objective_style,
    objectives.objective_tv,
    objectives.objective_pixel,
    objectives.objective_combine,
    optimize.optimize_image,
    transfer.style_transfer,
]
TYPES = [features.Features, features.Gram]
