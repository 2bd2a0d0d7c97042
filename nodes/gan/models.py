"""The GAN's networks: the generator and discriminator (DCGAN or the classic MLP), their
configs, initialisation and size.

A generator is described completely by its config (:func:`generator_config`), a
JSON-able dict that gan.save writes into the file's metadata, so that a file
can be rebuilt without code: see checkpoint.py for how such a config from a
file is checked before anything is built from it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from artgraph import NodeError, limits

FORMAT = "artgraph.gan"
FORMAT_VERSION = 1
#: Images are trained in [-1, 1]: x_train = (x - mean) / std.
NORMALISATION = {"mean": 0.5, "std": 0.5}
MLP_HIDDEN = [256, 256]
DCGAN_WIDTH = 32
#: Extra 3×3 conv blocks in the DCGAN generator at its base resolution (see Generator).
DCGAN_BLOCKS = 1


def dcgan_layout(size: int) -> tuple[int, int]:
    """(base side, number of ×2 upsamplings) for a square image of ``size`` pixels:
    as many halvings as keep the base side a whole number of at least 4."""
    ups = 0
    while size % (2 ** (ups + 1)) == 0 and size // 2 ** (ups + 1) >= 4:
        ups += 1
    return size // 2**ups, ups


def _check_geometry(config: dict[str, Any]) -> None:
    if config["arch"] == "dcgan":
        _base, ups = dcgan_layout(config["size"])
        if ups < 2:
            raise NodeError(
                f"the dcgan needs an image side that halves at least twice to 4 pixels or more "
                f"(e.g. 28, 32, 64), got {config['size']}; set the dataset's size, or use arch: mlp"
            )


def _init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, N(1, 0.02) batch-norm scales.

    Spectrally normalised layers keep PyTorch's default initialisation: the
    normalisation sets their scale, and their ``weight`` is computed from the stored
    one, so writing to it would change nothing."""
    for m in module.modules():
        if parametrize.is_parametrized(m):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z ``[B, z_dim]`` -> images ``[B, C, size, size]`` in [-1, 1] (``forward``) or [0, 1]
    (``generate``). ``config`` describes it completely (see :func:`generator_config`)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        c, size, z_dim = config["channels"], config["size"], config["z_dim"]
        if config["arch"] == "mlp":
            layers: list[nn.Module] = []
            width = z_dim
            for hidden in config["hidden"]:
                layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
                width = hidden
            layers += [nn.Linear(width, c * size * size), nn.Tanh()]
            self.net = nn.Sequential(*layers)
        else:
            base, ups = dcgan_layout(size)
            w = config["width"]
            top = w * 2 ** (ups - 1)
            layers = [
                nn.Linear(z_dim, top * base * base, bias=False),
                nn.Unflatten(1, (top, base, base)),
                nn.BatchNorm2d(top),
                nn.ReLU(True),
            ]
            # A 3×3 conv block at the base resolution lets neighbouring parts of the
            # digit agree before upsampling; the linear layer alone lays them out
            # independently. (Files from before the key existed: see _config_from.)
            for _ in range(config["blocks"]):
                layers += [nn.Conv2d(top, top, 3, 1, 1, bias=False), nn.BatchNorm2d(top), nn.ReLU(True)]
            ch = top
            for _ in range(ups - 1):
                layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
                ch //= 2
            layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

    @property
    def z_dim(self) -> int:
        return int(self.config["z_dim"])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        c, s = self.config["channels"], self.config["size"]
        return out.view(-1, c, s, s)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (the dataset's range), clamped."""
        norm = self.config.get("normalisation", NORMALISATION)
        return (self(z) * norm["std"] + norm["mean"]).clamp_(0.0, 1.0)


class Discriminator(nn.Module):
    """images ``[B, C, size, size]`` in [-1, 1] -> one logit per image ``[B]``."""

    def __init__(self, config: dict[str, Any], spectral: bool, norm: bool) -> None:
        super().__init__()
        c, size = config["channels"], config["size"]
        sn = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        if config["arch"] == "mlp":
            layers: list[nn.Module] = [nn.Flatten()]
            width = c * size * size
            for hidden in config["hidden"]:
                layers += [sn(nn.Linear(width, hidden)), nn.LeakyReLU(0.2)]
                width = hidden
            layers += [sn(nn.Linear(width, 1))]
        else:
            base, ups = dcgan_layout(size)
            w = config["width"]
            layers = [sn(nn.Conv2d(c, w, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            ch = w
            for _ in range(ups - 1):
                layers += [sn(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not norm))]
                if norm:
                    layers.append(nn.BatchNorm2d(ch * 2))
                layers.append(nn.LeakyReLU(0.2, True))
                ch *= 2
            layers += [nn.Flatten(), sn(nn.Linear(ch * base * base, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def generator_config(
    arch: str,
    z_dim: int,
    channels: int,
    size: int,
    width: int | None = None,
    blocks: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "z_dim": z_dim,
        "channels": channels,
        "size": size,
        "normalisation": dict(NORMALISATION),
        "step": 0,
    }
    if arch == "mlp":
        config["hidden"] = [width, width] if width else list(MLP_HIDDEN)
    else:
        config["width"] = width or DCGAN_WIDTH
        config["blocks"] = DCGAN_BLOCKS if blocks is None else blocks
    config.update(extra)
    return config


def _require_generator(value: object) -> None:
    if not isinstance(value, Generator):
        raise NodeError(f"expected a GAN generator (from gan.train or gan.load), got {type(value).__name__}")


def parameter_count(*modules: nn.Module) -> int:
    """Numbers held by the modules (parameters and buffers); free to ask of meta modules."""
    return sum(t.numel() for m in modules for t in m.state_dict().values())


def _over_limit(count: int) -> str | None:
    limit = limits.MODEL_PARAMETERS
    if count <= limit.value:
        return None
    return f"{count:,} parameters, over the limit of {limit.value:,}; {limit.how_to_raise()}"
