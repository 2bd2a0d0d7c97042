"""gan.train: a generator trained on a dataset (the loop itself is trainer.py).

The default recipe is a small DCGAN with the usual stabilisers: batch norm and one
3×3 conv block at the base resolution in the generator; strided convolutions,
LeakyReLU(0.2) and spectral normalisation (but for wgan-gp) in the discriminator;
the non-saturating loss, one-sided label smoothing and an exponential moving
average of the generator's weights; batches of 32 with Adam betas (0, 0.9), lr 1e-3 for the
generator and twice that (``d_lr``) for the discriminator. None of that optimiser
is the DCGAN paper's (2e-4 for both, betas (0.5, 0.999), batch 128): it is what
bench/gan_quality.py found best for a short budget on a CPU, in three rounds
(docs/gan.md, "The default recipe, and why"). On 5,000 MNIST digits, 2,800 steps
(about 35 s on two quiet CPU cores) give nine or ten confidently drawn digit classes
for each of ten seeds, at a Fréchet distance (in a digit classifier's features) of
14 on average, against about 22 for the plain DCGAN layers with the same optimiser
and 100-157 for the classic MLP recipe. lr 1e-3 is tuned for short runs on small data:
for long runs on other data, lr 2e-4 (d_lr 4e-4) is the conservative choice.

The classic MLP recipe (100→256→256→784, LeakyReLU, Tanh / Sigmoid, BCE, Adam
2e-4, batch 64) is available as ``arch: mlp`` (set ``lr: 2e-4, d_lr: 2e-4, betas:
[0.5, 0.999], batch_size: 64, ema: 0, label_smoothing: 0, spectral_norm: false`` for
exactly that); on 5,000 MNIST digits, given five times the steps, it gives speckled
strokes, mostly 1s, 7s and 9s.

Randomness is reproducible and resumable: model initialisation comes from the
``seed``, and the trainer draws the rest from generators seeded with it, so a run
resumed from a checkpoint continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import cast

import torch

from artgraph import Bool, Context, Dict, Input, Int, List, Model, NodeError, Output, Param, Str, node
from artgraph import Float as FloatT
from artgraph import Path as PathT

from ..data.datasets import Dataset, ImageSet
from .checkpoint import _read_checkpoint, _resume, _unset_from_checkpoint, config_problems
from .models import (
    DCGAN_BLOCKS,
    DCGAN_WIDTH,
    MLP_HIDDEN,
    NORMALISATION,
    Discriminator,
    Generator,
    _check_geometry,
    _init_dcgan,
    _over_limit,
    generator_config,
    parameter_count,
)
from .trainer import Diverged, Networks, Recipe, Saving, Trainer


def default_spectral_norm(loss: str) -> bool:
    """On, except for wgan-gp, whose gradient penalty already constrains the critic
    (MNIST, 1,000 steps: Fréchet distance 29 with it, 15 without)."""
    return loss != "wgan-gp"


def _check_train(params: Mapping[str, object]) -> list[str]:
    out = []
    betas = params.get("betas")
    if isinstance(betas, list) and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
        out.append("'betas' must be two numbers in [0, 1), e.g. [0.5, 0.999]")
    ema = params.get("ema")
    if isinstance(ema, (int, float)) and not (ema == 0 or 0 < ema < 1):
        out.append("'ema' must be 0 (off) or a decay below 1, e.g. 0.999")
    if params.get("arch") == "mlp" and params.get("blocks"):
        out.append("'blocks' are conv blocks of the dcgan generator; arch mlp has none (remove 'blocks')")
    return out


@node(
    "gan.train",
    seeded=True,
    category="gan",
    inputs={"dataset": Input(Dataset, description="training images (data.images, data.mnist, data.digits)")},
    params={
        "arch": Param(Str, "dcgan", choices=("dcgan", "mlp"), description="dcgan (works) or mlp (the classic recipe)"),
        "z_dim": Param(Int, 100, min=1, max=4096, description="latent size"),
        "width": Param(
            Int,
            None,
            min=2,
            max=4096,
            description=f"dcgan: channels of the last layer (default {DCGAN_WIDTH}); "
            f"mlp: hidden units (default {MLP_HIDDEN[0]})",
        ),
        "blocks": Param(
            Int,
            None,
            min=0,
            max=16,
            description=f"dcgan: extra 3×3 conv blocks in the generator at its base side (default {DCGAN_BLOCKS})",
        ),
        "epochs": Param(Int, 5, min=1, max=100_000, description="passes over the dataset (unless 'steps' is set)"),
        "steps": Param(Int, None, min=1, max=10_000_000, description="total training steps; overrides 'epochs'"),
        "batch_size": Param(Int, 32, min=2, max=65_536, description="images per step"),
        "lr": Param(
            FloatT,
            1e-3,
            min=1e-8,
            max=10.0,
            description="the generator's Adam learning rate (2e-4 for long runs); see also d_lr",
        ),
        "d_lr": Param(
            FloatT,
            None,
            min=1e-8,
            max=10.0,
            description="the discriminator's Adam learning rate (default: 2 × lr, two time-scales)",
        ),
        "betas": Param(List(FloatT), [0.0, 0.9], min=0.0, max=0.9999, description="Adam betas (both networks)"),
        "loss": Param(
            Str,
            "bce",
            choices=("bce", "hinge", "wgan-gp"),
            description="bce (non-saturating generator loss), hinge, or wgan-gp (gradient penalty 10)",
        ),
        "d_steps": Param(
            Int,
            None,
            min=1,
            max=100,
            description="discriminator steps per generator step (default: 5 for wgan-gp, else 1)",
        ),
        "label_smoothing": Param(FloatT, 0.1, min=0.0, max=0.5, description="bce: real labels are 1 - this"),
        "spectral_norm": Param(
            Bool,
            None,
            description="spectral normalisation of the discriminator's layers instead of batch norm "
            "(default: on; off for wgan-gp, whose gradient penalty already constrains the critic)",
        ),
        "ema": Param(FloatT, 0.999, min=0.0, max=0.99999, description="generator weight moving average (0: off)"),
        "seed": Param(Int, 0, min=0, description="seed of initialisation, shuffling and noise"),
        "checkpoint": Param(
            PathT, "checkpoints/gan.safetensors", file="output", description="where checkpoints are written"
        ),
        "checkpoint_every": Param(
            Int, 0, min=0, description="write a checkpoint every N steps and at the end (0: never)"
        ),
        "resume": Param(PathT, None, file="input", description="a checkpoint to continue from (its step count too)"),
    },
    outputs={
        "generator": Output(Model, "the generator (the moving average when 'ema' is on), in eval mode"),
        "history": Output(Dict, "per step: step, d_loss, g_loss"),
    },
    check=_check_train,
)
def train(
    ctx: Context,
    dataset: ImageSet,
    arch: str = "dcgan",
    z_dim: int = 100,
    width: int | None = None,
    blocks: int | None = None,
    epochs: int = 5,
    steps: int | None = None,
    batch_size: int = 32,
    lr: float = 1e-3,
    d_lr: float | None = None,
    betas: Sequence[float] = (0.0, 0.9),
    loss: str = "bce",
    d_steps: int | None = None,
    label_smoothing: float = 0.1,
    spectral_norm: bool | None = None,
    ema: float = 0.999,
    seed: int = 0,
    checkpoint: str = "checkpoints/gan.safetensors",
    checkpoint_every: int = 0,
    resume: str | None = None,
) -> tuple[Generator, dict[str, list[float]]]:
    """Train a GAN generator on a dataset (DCGAN with the usual stabilisers by default)."""
    if not isinstance(dataset, ImageSet):
        raise NodeError(f"expected a dataset, got {type(dataset).__name__}")
    saved = _read_checkpoint(resume) if resume is not None else None
    if saved is not None:
        width, blocks, spectral_norm = _unset_from_checkpoint(saved, arch, width, blocks, spectral_norm)
    betas = list(betas)
    d_lr = d_lr if d_lr is not None else 2.0 * lr
    h, w = dataset.size
    if h != w:
        raise NodeError(f"GANs here train on square images; the dataset's are {w}×{h} (data.images crops them)")
    n = len(dataset)
    if n < batch_size:
        batch_size = n
        ctx.log.warning("the dataset has only %d images; batch_size lowered to %d", n, n)
    if batch_size < 2:
        raise NodeError("the dataset needs at least 2 images")
    total = steps if steps is not None else epochs * (n // batch_size)
    d_steps = d_steps or (5 if loss == "wgan-gp" else 1)
    if spectral_norm is None:
        spectral_norm = default_spectral_norm(loss)
    config = generator_config(arch, z_dim, dataset.channels, h, width, blocks, dataset=dataset.name)
    problems = config_problems(config)  # the dataset's side and channels; the rest are params
    if problems:
        raise NodeError(f"cannot train a GAN on this dataset: {problems[0]}")
    _check_geometry(config)
    d_norm = arch == "dcgan" and loss != "wgan-gp" and not spectral_norm
    training = {"loss": loss, "spectral_norm": spectral_norm, "d_norm": d_norm, "ema": ema > 0}
    device = ctx.device
    with torch.device("meta"):  # sized before anything is allocated
        too_big = _over_limit(parameter_count(Generator(config), Discriminator(config, spectral_norm, d_norm)))
    if too_big:
        raise NodeError(
            f"the {arch} generator and discriminator for {h}×{h} images would hold {too_big} "
            "(or lower 'width' or the dataset's size)"
        )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen_net, disc = Generator(config), Discriminator(config, spectral_norm, d_norm)
        if arch == "dcgan":
            _init_dcgan(gen_net)
            _init_dcgan(disc)
    gen_net.to(device).train()
    disc.to(device).train()
    average = copy.deepcopy(gen_net).eval().requires_grad_(False) if ema > 0 else None
    adam_betas = cast(tuple[float, float], tuple(betas))  # two numbers: the check asks for two, Adam unpacks two
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=lr, betas=adam_betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=adam_betas)
    trainer = Trainer(
        ctx,
        Networks(gen_net, disc, average, opt_g, opt_d),
        Recipe(loss, d_steps, label_smoothing, ema, seed, z_dim),
        Saving(checkpoint, checkpoint_every, config, training),
    )
    start = 0
    if saved is not None:
        start = _resume(saved, config, training, gen_net, disc, average, opt_g, opt_d, (lr, d_lr), betas)
        ctx.log.info("resumed from %s at step %d", saved.path, start)
        trainer.last_saved = (start, saved.path)
        if start >= total:
            ctx.log.warning("the checkpoint is at step %d, already at or past %d steps; nothing to train", start, total)
    data = dataset.images.to(device, torch.float32)
    data = (data - NORMALISATION["mean"]) / NORMALISATION["std"]
    try:
        step = trainer.run(data, batch_size, start, total, f"training {arch} gan")
    except Diverged as stop:
        if trainer.last_saved is not None:
            good, where = trainer.last_saved
            kept = f"the last good checkpoint (step {good}) is {where}; resume from it with "
        else:
            kept = "set 'checkpoint_every' to keep checkpoints, and try "
        raise NodeError(
            f"the losses became NaN/inf at step {stop.step} (d_loss={stop.d:.4g}, g_loss={stop.g:.4g}); "
            f"{kept}a lower 'lr' (and 'd_lr'), 'spectral_norm: true' if it is off, or loss 'hinge'"
        ) from None
    result = average if average is not None else gen_net
    result.config["step"] = step
    result.eval().requires_grad_(False)
    return result, trainer.history
