"""The GAN training loop: a discriminator step, a generator step, and saving.

:class:`Trainer` holds what one training run needs — the networks and their
optimisers (:class:`Networks`), the recipe (:class:`Recipe`) and where it saves
(:class:`Saving`) — and runs the steps. ``gan.train`` (training.py) checks the
params, builds the networks, resumes from a checkpoint, and hands over.

Randomness never comes from global state: the shuffle of epoch ``e`` and the
noise of D step ``t`` come from CPU generators seeded with ``(seed, e)`` and
``(seed, t)``, so a run resumed at any step continues exactly as the
uninterrupted run would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn

from artgraph import Context

from .._tensorfile import write_safetensors
from .checkpoint import CHECKPOINT_FORMAT, _module_tensors, _opt_tensors
from .models import Generator

# -- losses -------------------------------------------------------------------


def _d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor, smoothing: float) -> torch.Tensor:
    if loss == "bce":
        target = torch.full_like(real, 1.0 - smoothing)
        return F.binary_cross_entropy_with_logits(real, target) + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return fake.mean() - real.mean()  # wgan-gp (the penalty is added by the caller)


def _g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "bce":
        return F.softplus(-fake).mean()  # non-saturating: -log D(G(z))
    return -fake.mean()


def _gradient_penalty(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=gen).to(real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


# -- training -----------------------------------------------------------------


def _step_gen(seed: int, salt: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + salt * 7_919 + index) % (2**63))


def _batches(n: int, batch: int, seed: int, start_step: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(step, indices) from ``start_step`` on; epoch e is shuffled by a generator of (seed, e)."""
    per_epoch = n // batch
    step = start_step
    while True:
        epoch, pos = divmod(step, per_epoch)
        order = torch.randperm(n, generator=_step_gen(seed, 1, epoch))
        for p in range(pos, per_epoch):
            yield step, order[p * batch : (p + 1) * batch]
            step += 1


class Diverged(Exception):
    """The losses became NaN or infinite at ``step``."""

    def __init__(self, step: int, d: float, g: float) -> None:
        self.step, self.d, self.g = step, d, g


@dataclass
class Networks:
    """The generator, the discriminator, the generator's moving average (or None), their optimisers."""

    gen: Generator
    disc: nn.Module
    average: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


@dataclass(frozen=True)
class Recipe:
    """How each step trains: the loss, D steps per G step, label smoothing, EMA decay, seed, z size."""

    loss: str
    d_steps: int
    label_smoothing: float
    ema: float
    seed: int
    z_dim: int


@dataclass(frozen=True)
class Saving:
    """Where and how often checkpoints go, and what they record besides the tensors."""

    path: str
    every: int
    config: dict[str, Any]
    training: dict[str, Any]


@dataclass
class Trainer:
    """One training run: its steps, its history, and its last checkpoint."""

    ctx: Context
    nets: Networks
    recipe: Recipe
    saving: Saving
    history: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "d_loss": [], "g_loss": []})
    #: (step, path) of the last checkpoint written or resumed from
    last_saved: tuple[int, str] | None = None

    def run(self, data: torch.Tensor, batch_size: int, start: int, total: int, label: str) -> int:
        """Train from step ``start`` to ``total``; return the step reached. Raises :class:`Diverged`."""
        step = start
        batches = _batches(len(data), batch_size, self.recipe.seed, start * self.recipe.d_steps)
        with self.ctx.progress(max(total - start, 0), label) as bar:
            while step < total:
                d_value, g_value = self.step(data, batches, step)
                step += 1
                if self.nets.average is not None:
                    _ema_update(self.nets.average, self.nets.gen, min(self.recipe.ema, (1.0 + step) / (10.0 + step)))
                self.history["step"].append(float(step))
                self.history["d_loss"].append(d_value)
                self.history["g_loss"].append(g_value)
                bar.update(1, d=d_value, g=g_value)
                self.ctx.preview(self.samples)
                if self.saving.every and (step % self.saving.every == 0 or step == total):
                    self.save(step)
        if self.saving.every and step == start and start < total:
            self.save(step)
        return step

    def step(self, data: torch.Tensor, batches: Iterator[tuple[int, torch.Tensor]], step: int) -> tuple[float, float]:
        """``d_steps`` discriminator updates, then one generator update on the last fakes."""
        d_value, fake = 0.0, None
        for i in range(self.recipe.d_steps):
            _, index = next(batches)
            real = data[index.to(data.device)] if data.device.type != "cpu" else data[index]
            d_value, fake = self.discriminator_step(
                real, _step_gen(self.recipe.seed, 2, step * self.recipe.d_steps + i)
            )
        assert fake is not None  # d_steps >= 1
        g_value = self.generator_step(fake)
        if not (math.isfinite(d_value) and math.isfinite(g_value)):
            raise Diverged(step + 1, d_value, g_value)
        return d_value, g_value

    def discriminator_step(self, real: torch.Tensor, noise: torch.Generator) -> tuple[float, torch.Tensor]:
        """One update of D on real images and fakes from ``noise``; the loss and the fakes."""
        nets, recipe = self.nets, self.recipe
        z = torch.randn(real.shape[0], recipe.z_dim, generator=noise).to(real.device)
        fake = nets.gen(z)
        d_loss = _d_loss(recipe.loss, nets.disc(real), nets.disc(fake.detach()), recipe.label_smoothing)
        if recipe.loss == "wgan-gp":
            d_loss = d_loss + 10.0 * _gradient_penalty(nets.disc, real, fake.detach(), noise)
        nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        nets.opt_d.step()
        return float(d_loss.detach()), fake

    def generator_step(self, fake: torch.Tensor) -> float:
        """One update of G through a frozen D: the loss.

        G's step needs gradients through D, not D's own: freezing D skips their
        backward pass (5-10% of a DCGAN step) and changes no result."""
        nets = self.nets
        nets.disc.requires_grad_(False)
        g_loss = _g_loss(self.recipe.loss, nets.disc(fake))
        nets.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        nets.opt_g.step()
        nets.disc.requires_grad_(True)
        return float(g_loss.detach())

    def samples(self) -> torch.Tensor:
        """A 4×4 grid of samples from the same 16 latent points at every step (the moving
        average when there is one), for the node's preview; draws on no shared generator."""
        from torchvision.utils import make_grid

        from .sampling import draw_z, generate

        net = self.nets.average if self.nets.average is not None else self.nets.gen
        with torch.no_grad():
            images = generate(net, draw_z(16, self.recipe.z_dim, self.recipe.seed))
        return make_grid(images, nrow=4, padding=1).unsqueeze(0)

    def save(self, step: int) -> None:
        """Write a checkpoint: G, D, the average, both optimisers, the config and the step."""
        nets, saving = self.nets, self.saving
        tensors = {**_module_tensors("G", nets.gen), **_module_tensors("D", nets.disc)}
        if nets.average is not None:
            tensors.update(_module_tensors("E", nets.average))
        g_tensors, g_groups = _opt_tensors("optG", nets.opt_g)
        d_tensors, d_groups = _opt_tensors("optD", nets.opt_d)
        tensors.update(g_tensors)
        tensors.update(d_tensors)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "config": {**saving.config, "step": step},
            "training": {
                **saving.training,
                "step": step,
                "optG": g_groups,
                "optD": d_groups,
                "seed": self.recipe.seed,
            },
        }
        write_safetensors(saving.path, tensors, meta)
        self.last_saved = (step, saving.path)
        self.ctx.log.info("checkpoint at step %d: %s", step, saving.path)


@torch.no_grad()
def _ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for buffer, source in zip(average.buffers(), model.buffers(), strict=True):
        buffer.copy_(source)
