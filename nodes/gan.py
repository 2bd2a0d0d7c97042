"""GANs as nodes: train a generator on a dataset, save/load it, sample, interpolate.

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
``seed``; the shuffle of epoch ``e`` and the noise of step ``t`` come from
generators seeded with ``(seed, e)`` and ``(seed, t)``, all on the CPU, so a run
resumed from a checkpoint continues exactly as the uninterrupted run would.

Files are safetensors: the weights, and a JSON config in the header's metadata
(arch, sizes, z_dim, channels, image size, dataset normalisation, training
step). Nothing is ever unpickled. A file may come from a stranger, so before
anything is built from its config, the config is held to the bounds of
gan.train's params, the model it describes is built on the meta device (no
memory) to compare its tensor shapes with the file's, and its size is held to
``limits.MODEL_PARAMETERS``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch import nn
from torch.nn.utils import parametrize

from artgraph import (
    Bool,
    Context,
    Dict,
    Image,
    Input,
    Int,
    List,
    Model,
    NodeError,
    Output,
    Param,
    Str,
    TypeCheckError,
    limits,
    node,
    spec_of,
)
from artgraph import Float as FloatT
from artgraph import Path as PathT

from .datasets import Dataset, ImageSet
from .datasets import images as data_images
from .imageio import MODES_BY_CHANNELS
from .tensorfile import one_line, read_safetensors, write_safetensors

FORMAT = "artgraph.gan"
FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "artgraph.gan.checkpoint"
#: Images are trained in [-1, 1]: x_train = (x - mean) / std.
NORMALISATION = {"mean": 0.5, "std": 0.5}
MLP_HIDDEN = [256, 256]
DCGAN_WIDTH = 32
#: Extra 3×3 conv blocks in the DCGAN generator at its base resolution (see Generator).
DCGAN_BLOCKS = 1
SAMPLE_CHUNK = 500
_PICKLE_HINT = "Save the generator with gan.save, or convert the state dict with safetensors.torch.save_file"


# -- models -------------------------------------------------------------------


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


# -- noise ----------------------------------------------------------------------


def draw_z(count: int, z_dim: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """``count`` latent vectors on the CPU, the same for the same seed on any machine.

    With ``truncation`` t, each coordinate comes from the standard normal truncated to
    [-t, t] (inverse-CDF sampling, so the draw stays a fixed function of the seed)."""
    # Uniforms are drawn one per element in order (unlike CPU randn, whose vectorised
    # path depends on the size), so image i does not depend on count.
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.rand(count, z_dim, generator=gen, dtype=torch.float64)
    if truncation is None:
        return torch.special.ndtri(u.clamp_(1e-12, 1.0 - 1e-12)).to(torch.float32)
    t = float(truncation)
    if t <= 0:
        raise NodeError(f"'truncation' must be above 0, got {t}")
    lo = 0.5 * math.erfc(t / math.sqrt(2.0))  # Φ(-t)
    z = torch.special.ndtri(lo + u * (1.0 - 2.0 * lo))
    return z.clamp_(-t, t).to(torch.float32)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate(generator: Generator, z: torch.Tensor) -> torch.Tensor:
    """Run the generator in eval mode over ``z`` (any device) in chunks; [0,1] images."""
    _require_generator(generator)
    device = _device_of(generator)
    was_training = generator.training
    generator.eval()
    try:
        return torch.cat([generator.generate(chunk.to(device)) for chunk in z.split(SAMPLE_CHUNK)])
    finally:
        generator.train(was_training)


def _require_generator(value: object) -> None:
    if not isinstance(value, Generator):
        raise NodeError(f"expected a GAN generator (from gan.train or gan.load), got {type(value).__name__}")


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


# -- checkpoints --------------------------------------------------------------


def _opt_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    state = opt.state_dict()
    tensors = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            tensors[f"{prefix}.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def _opt_state(prefix: str, tensors: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimiser state saved under ``prefix`` (checked by :func:`_opt_problems`), with
    the optimiser's own parameter groups: the file's settings are never taken (lr and
    betas are set afresh on resuming, and the rest are the defaults gan.train uses)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _sub(tensors, prefix).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": opt.state_dict()["param_groups"]}


def _opt_problems(prefix: str, tensors: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> list[str]:
    """What in the saved Adam state does not fit the optimiser's parameters."""
    params = [p for group in opt.param_groups for p in group["params"]]
    names = ("step", "exp_avg", "exp_avg_sq")
    problems, seen = [], {}
    for key, value in _sub(tensors, prefix).items():
        index, _, name = key.partition(".")
        if not index.isdigit() or int(index) >= len(params) or name not in names:
            problems.append(f"unexpected '{prefix}.{key}'")
            continue
        seen.setdefault(int(index), set()).add(name)
        need = [] if name == "step" else list(params[int(index)].shape)
        if list(value.shape) != need:
            problems.append(f"'{prefix}.{key}' has shape {list(value.shape)}, the parameter needs {need}")
    problems += [
        f"missing '{prefix}.{index}.{name}'" for index, have in seen.items() for name in names if name not in have
    ]
    return problems


def _module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _config_from(meta: dict[str, Any], path: str) -> dict[str, Any]:
    config = meta.get("config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise NodeError(f"{path} is not an artgraph GAN generator (no '{FORMAT}' config in its metadata)")
    version = config.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise NodeError(f"{path}: the config's format_version {version!r} is not a whole number")
    if version > FORMAT_VERSION:
        raise NodeError(f"{path} was written by a newer artgraph (format {version}); upgrade")
    missing = [k for k in ("arch", "z_dim", "channels", "size") if k not in config]
    if missing or config.get("arch") not in ("dcgan", "mlp"):
        raise NodeError(f"{path}: the config lacks {missing or 'a known arch'}")
    if config["arch"] == "dcgan":
        config.setdefault("blocks", 0)  # written before the key existed: no block
    return config


def config_problems(config: dict[str, Any]) -> list[str]:
    """What in a generator config gan.train could not have made; nothing is built.

    The bounds are those of gan.train's own params (arch, z_dim, width, blocks; each
    of an mlp's hidden widths is a 'width'), of data.images' 'size' for the image
    side, and the channels an image can have."""
    params = spec_of(train).params
    problems: list[str] = []

    def check(key: str, value: object, param: Param) -> None:
        if value is None:
            problems.append(f"'{key}' is missing")
            return
        try:
            param.check(value)
        except TypeCheckError as exc:
            problems.append(f"'{key}': {exc}")

    check("arch", config.get("arch"), params["arch"])
    check("z_dim", config.get("z_dim"), params["z_dim"])
    check("size", config.get("size"), spec_of(data_images).params["size"])
    channels = config.get("channels")
    if isinstance(channels, bool) or channels not in MODES_BY_CHANNELS:
        problems.append(f"'channels': {channels!r} is not one of {sorted(MODES_BY_CHANNELS)}")
    if config.get("arch") == "mlp":
        hidden = config.get("hidden")
        if not isinstance(hidden, list) or not hidden:
            problems.append(f"'hidden': expected a list of layer widths, got {type(hidden).__name__}")
        else:
            for i, value in enumerate(hidden):
                check(f"hidden[{i}]", value, params["width"])
    elif config.get("arch") == "dcgan":
        check("width", config.get("width"), params["width"])
        check("blocks", config.get("blocks"), params["blocks"])
    norm = config.get("normalisation", NORMALISATION)
    numbers = isinstance(norm, dict) and all(
        isinstance(norm.get(k), (int, float)) and not isinstance(norm.get(k), bool) and math.isfinite(norm[k])
        for k in ("mean", "std")
    )
    if not numbers or norm["std"] == 0:
        problems.append(f"'normalisation': expected {{'mean': number, 'std': non-zero number}}, got {norm!r:.80}")
    step = config.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        problems.append(f"'step': expected a whole number of 0 or more, got {step!r:.40}")
    return problems


def parameter_count(*modules: nn.Module) -> int:
    """Numbers held by the modules (parameters and buffers); free to ask of meta modules."""
    return sum(t.numel() for m in modules for t in m.state_dict().values())


def _over_limit(count: int) -> str | None:
    limit = limits.MODEL_PARAMETERS
    if count <= limit.value:
        return None
    return f"{count:,} parameters, over the limit of {limit.value:,}; {limit.how_to_raise()}"


def shape_problems(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and misshapen tensors, comparing a (meta) state dict with a file's."""
    problems = [f"missing '{k}'" for k in expected if k not in found]
    problems += [f"unexpected '{k}'" for k in found if k not in expected]
    problems += [
        f"'{k}' has shape {list(found[k].shape)}, the config needs {list(v.shape)}"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    return problems


def _shown(problems: list[str]) -> str:
    return "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")


def plan_generator(config: dict[str, Any], weights: dict[str, torch.Tensor], path: str) -> Generator:
    """The generator a file's config describes, built on the meta device (no memory), after
    checking the config against gan.train's bounds, its size against
    ``limits.MODEL_PARAMETERS`` and its tensor shapes against the file's ``weights``.

    Nothing is allocated for a file that fails, however large its config says it is."""
    problems = config_problems(config)
    if problems:
        raise NodeError(
            f"{path}: its config is not one gan.train makes ({_shown(problems)}); "
            "the file is damaged or was not written by artgraph"
        )
    _check_geometry(config)
    if config["arch"] == "mlp" and 2 * (len(config["hidden"]) + 1) > len(weights):
        raise NodeError(
            f"{path}: the config does not match the weights: it has {len(config['hidden']) + 1} layers, "
            f"the file holds {len(weights)} tensors"
        )
    try:
        with torch.device("meta"):
            planned = Generator(config)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise NodeError(f"{path}: cannot build a generator from its config: {one_line(exc)}") from None
    too_big = _over_limit(parameter_count(planned))
    if too_big:
        raise NodeError(f"{path}: its config describes a generator of {too_big}")
    problems = shape_problems(planned.state_dict(), weights)
    if problems:
        raise NodeError(f"{path}: the config does not match the weights: {_shown(problems)}")
    return planned


def build_checked(config: dict[str, Any], weights: dict[str, torch.Tensor], path: str) -> Generator:
    """A generator built from ``config`` with ``weights``, refusing any mismatch clearly
    (checked on the meta device first: see :func:`plan_generator`)."""
    plan_generator(config, weights, path)
    generator = Generator(config)
    generator.load_state_dict({k: weights[k].to(v.dtype) for k, v in generator.state_dict().items()})
    return generator


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


class _NaN(Exception):
    def __init__(self, step: int, d: float, g: float) -> None:
        self.step, self.d, self.g = step, d, g


def default_spectral_norm(loss: str) -> bool:
    """On, except for wgan-gp, whose gradient penalty already constrains the critic
    (MNIST, 1,000 steps: Fréchet distance 29 with it, 15 without)."""
    return loss != "wgan-gp"


def _check_train(params: dict[str, object]) -> list[str]:
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
    betas: list[float] | None = None,
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
    problems = _check_train({"betas": betas, "ema": ema, "arch": arch, "blocks": blocks})
    if problems:
        raise NodeError(problems[0])
    saved = _read_checkpoint(resume) if resume is not None else None
    if saved is not None:
        width, blocks, spectral_norm = _unset_from_checkpoint(saved, arch, width, blocks, spectral_norm)
    betas = list(betas) if betas is not None else [0.0, 0.9]
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
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=lr, betas=tuple(betas))
    opt_d = torch.optim.Adam(disc.parameters(), lr=d_lr, betas=tuple(betas))
    history: dict[str, list[float]] = {"step": [], "d_loss": [], "g_loss": []}
    last_saved: tuple[int, str] | None = None
    start = 0
    if saved is not None:
        start = _resume(saved, config, training, gen_net, disc, average, opt_g, opt_d, (lr, d_lr), betas)
        ctx.log.info("resumed from %s at step %d", saved.path, start)
        last_saved = (start, saved.path)
        if start >= total:
            ctx.log.warning("the checkpoint is at step %d, already at or past %d steps; nothing to train", start, total)

    data = dataset.images.to(device, torch.float32)
    data = (data - NORMALISATION["mean"]) / NORMALISATION["std"]

    def save_checkpoint(step: int) -> None:
        nonlocal last_saved
        tensors = {**_module_tensors("G", gen_net), **_module_tensors("D", disc)}
        if average is not None:
            tensors.update(_module_tensors("E", average))
        g_t, g_groups = _opt_tensors("optG", opt_g)
        d_t, d_groups = _opt_tensors("optD", opt_d)
        tensors.update(g_t)
        tensors.update(d_t)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "config": {**config, "step": step},
            "training": {**training, "step": step, "optG": g_groups, "optD": d_groups, "seed": seed},
        }
        write_safetensors(checkpoint, tensors, meta)
        last_saved = (step, checkpoint)
        ctx.log.info("checkpoint at step %d: %s", step, checkpoint)

    step = start
    try:
        with ctx.progress(max(total - start, 0), f"training {arch} gan") as bar:
            batches = _batches(n, batch_size, seed, start * d_steps)
            while step < total:
                d_value = 0.0
                for _ in range(d_steps):
                    _, index = next(batches)
                    real = data[index.to(device)] if device.type != "cpu" else data[index]
                    zgen = _step_gen(seed, 2, step * d_steps + _)
                    z = torch.randn(real.shape[0], z_dim, generator=zgen).to(device)
                    fake = gen_net(z)
                    d_loss = _d_loss(loss, disc(real), disc(fake.detach()), label_smoothing)
                    if loss == "wgan-gp":
                        d_loss = d_loss + 10.0 * _gradient_penalty(disc, real, fake.detach(), zgen)
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_d.step()
                    d_value = float(d_loss.detach())
                # the generator's step needs gradients through D, not D's own: freezing D
                # skips their backward pass (5-10% of a DCGAN step) and changes no result
                disc.requires_grad_(False)
                g_loss = _g_loss(loss, disc(fake))
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                disc.requires_grad_(True)
                g_value = float(g_loss.detach())
                if not (math.isfinite(d_value) and math.isfinite(g_value)):
                    raise _NaN(step + 1, d_value, g_value)
                step += 1
                if average is not None:
                    _ema_update(average, gen_net, min(ema, (1.0 + step) / (10.0 + step)))
                history["step"].append(float(step))
                history["d_loss"].append(d_value)
                history["g_loss"].append(g_value)
                bar.update(1, d=d_value, g=g_value)
                if checkpoint_every and (step % checkpoint_every == 0 or step == total):
                    save_checkpoint(step)
    except _NaN as stop:
        if last_saved is not None:
            kept = f"the last good checkpoint (step {last_saved[0]}) is {last_saved[1]}; resume from it with "
        else:
            kept = "set 'checkpoint_every' to keep checkpoints, and try "
        raise NodeError(
            f"the losses became NaN/inf at step {stop.step} (d_loss={stop.d:.4g}, g_loss={stop.g:.4g}); "
            f"{kept}a lower 'lr' (and 'd_lr'), 'spectral_norm: true' if it is off, or loss 'hinge'"
        ) from None
    if checkpoint_every and step == start and start < total:
        save_checkpoint(step)
    result = average if average is not None else gen_net
    result.config["step"] = step
    result.eval().requires_grad_(False)
    return result, history


@torch.no_grad()
def _ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(average.buffers(), model.buffers(), strict=True):
        a.copy_(b)


class _Checkpoint(NamedTuple):
    path: str
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any]  #: the generator's
    training: dict[str, Any]  #: loss, spectral_norm, step, optimiser groups, ...


def _read_checkpoint(path: str) -> _Checkpoint:
    tensors, meta = read_safetensors(path, "checkpoint", _PICKLE_HINT)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise NodeError(f"{path} is not a gan.train checkpoint (a saved generator cannot be resumed)")
    training = meta.get("training")
    config = _config_from(meta, path)
    planned = plan_generator(config, _sub(tensors, "G"), path)  # bounded and shape-checked, nothing allocated
    if any(k.startswith("E.") for k in tensors):
        problems = shape_problems(planned.state_dict(), _sub(tensors, "E"))
        if problems:
            raise NodeError(f"{path}: the moving average (E.*) does not match the config: {_shown(problems)}")
    return _Checkpoint(path, tensors, config, training if isinstance(training, dict) else {})


def _unset_from_checkpoint(
    saved: _Checkpoint, arch: str, width: int | None, blocks: int | None, spectral_norm: bool | None
) -> tuple[int | None, int | None, bool | None]:
    """The layer settings left unset take the checkpoint's values, so that resuming needs
    only the path; settings given must match it (checked by _resume)."""
    config, training = saved.config, saved.training
    if config["arch"] != arch:  # refused later, with the difference named
        return width, blocks, spectral_norm
    if width is None:
        width = config["hidden"][0] if arch == "mlp" else config.get("width")
    if blocks is None and arch == "dcgan":
        blocks = config["blocks"]
    if spectral_norm is None and isinstance(training.get("spectral_norm"), bool):
        spectral_norm = training["spectral_norm"]
    return width, blocks, spectral_norm


def _resume(
    saved: _Checkpoint,
    config: dict[str, Any],
    training: dict[str, Any],
    gen_net: nn.Module,
    disc: nn.Module,
    average: nn.Module | None,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    lrs: tuple[float, float],
    betas: list[float],
) -> int:
    path, tensors, saved_config, saved_training = saved
    keys = ("arch", "z_dim", "channels", "size", "hidden", "width", "blocks")
    differ = [
        f"{k}: {saved_config.get(k)!r} there, {config.get(k)!r} here"
        for k in keys
        if saved_config.get(k) != config.get(k)
    ]
    differ += [
        f"{k}: {saved_training.get(k)!r} there, {training[k]!r} here"
        for k in ("loss", "spectral_norm", "d_norm", "ema")
        if saved_training.get(k) != training[k]
    ]
    if differ:
        raise NodeError(f"cannot resume from {path}: it was trained differently ({'; '.join(differ)})")
    step = saved_training.get("step", saved_config.get("step", 0))
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise NodeError(f"cannot resume from {path}: its step {step!r:.40} is not a whole number")
    modules = [("G", gen_net), ("D", disc)] + ([("E", average)] if average is not None else [])
    problems = [
        f"{p}: {problem}" for p, module in modules for problem in shape_problems(module.state_dict(), _sub(tensors, p))
    ]
    problems += _opt_problems("optG", tensors, opt_g) + _opt_problems("optD", tensors, opt_d)
    if problems:
        raise NodeError(f"cannot resume from {path}: the checkpoint does not match its config: {_shown(problems)}")
    try:
        for prefix, module in modules:
            module.load_state_dict(_sub(tensors, prefix))
        for opt, prefix, lr in ((opt_g, "optG", lrs[0]), (opt_d, "optD", lrs[1])):
            opt.load_state_dict(_opt_state(prefix, tensors, opt))
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, tuple(betas)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise NodeError(
            f"cannot resume from {path}: the checkpoint does not match its config: {one_line(exc)}"
        ) from None
    return step


# -- save / load ----------------------------------------------------------------


def _check_suffix(params: dict[str, object]) -> list[tuple[str, str]]:
    path = str(params.get("path") or "")
    if not path.endswith(".safetensors"):
        return [(f"'{path}' should end in .safetensors", "e.g. path: generator.safetensors")]
    return []


@node(
    "gan.save",
    category="gan",
    output_node=True,
    inputs={"generator": Input(Model)},
    params={"path": Param(PathT, file="output", description="a .safetensors file (weights + JSON config)")},
    outputs={"path": PathT},
    check=_check_suffix,
)
def save(ctx: Context, generator: Generator, path: str) -> str:
    """Write a generator atomically: safetensors weights with its JSON config in the header."""
    _require_generator(generator)
    if not path.endswith(".safetensors"):
        raise NodeError(f"'{path}' should end in .safetensors")
    write_safetensors(path, _module_tensors("G", generator), {"format": FORMAT, "config": generator.config})
    ctx.log.info("wrote %s", path)
    return path


@node(
    "gan.load",
    category="gan",
    params={"path": Param(PathT, file="input", description="a generator from gan.save, or a gan.train checkpoint")},
    outputs={"generator": Model},
)
def load(ctx: Context, path: str) -> Generator:
    """Read a generator saved by gan.save (or the generator of a checkpoint); never unpickles."""
    tensors, meta = read_safetensors(path, "generator file", _PICKLE_HINT)
    config = _config_from(meta, path)
    prefix = "E" if meta.get("format") == CHECKPOINT_FORMAT and any(k.startswith("E.") for k in tensors) else "G"
    generator = build_checked(config, _sub(tensors, prefix), path)
    return generator.to(ctx.device).eval().requires_grad_(False)


# -- sampling -------------------------------------------------------------------


@node(
    "gan.sample",
    category="gan",
    inputs={"generator": Input(Model)},
    params={
        "count": Param(Int, 64, min=1, max=100_000, description="how many images"),
        "seed": Param(Int, 0, min=0, description="seed of the latent vectors (image i is the same for any count)"),
        "truncation": Param(FloatT, None, min=0.01, max=10.0, description="draw z from N(0,1) truncated to ±this"),
    },
    outputs={"image": Output(Image, "a batch [count, C, H, W] in [0,1]")},
)
def sample(generator: Generator, count: int, seed: int, truncation: float | None) -> torch.Tensor:
    """Generate a batch of images; the same seed gives the same images on any machine."""
    _require_generator(generator)
    return generate(generator, draw_z(count, generator.z_dim, seed, truncation))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` ([D]) at fractions ``t`` ([T]) -> [T, D]."""
    t = t[:, None].to(a.dtype)
    na, nb = a.norm(), b.norm()
    cos = torch.dot(a / na, b / nb).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega.sin().abs()) < 1e-6:  # (anti)parallel: fall back to lerp
        return torch.lerp(a, b, t)
    sin = omega.sin()
    return (torch.sin((1 - t) * omega) / sin) * a + (torch.sin(t * omega) / sin) * b


@node(
    "gan.interpolate",
    category="gan",
    inputs={"generator": Input(Model)},
    params={
        "seeds": Param(List(Int), [0, 1, 2], min=0, description="latent points to walk through (two or more)"),
        "steps": Param(Int, 16, min=1, max=10_000, description="frames from one seed to the next"),
        "method": Param(Str, "slerp", choices=("slerp", "lerp"), description="spherical or straight-line path"),
        "loop": Param(Bool, False, description="walk back from the last seed to the first (for looping GIFs)"),
        "truncation": Param(FloatT, None, min=0.01, max=10.0, description="truncated-normal latent points"),
    },
    outputs={"image": Output(Image, "the frames as a batch, for image.grid or image.save_gif")},
    check=lambda p: [] if len(p.get("seeds") or []) >= 2 else ["'seeds' needs two or more seeds"],
)
def interpolate(
    generator: Generator, seeds: list[int], steps: int, method: str, loop: bool, truncation: float | None = None
) -> torch.Tensor:
    """Frames walking between the latent points of several seeds (frame 0 is gan.sample of seeds[0])."""
    _require_generator(generator)
    if len(seeds) < 2:
        raise NodeError("'seeds' needs two or more seeds")
    points = [draw_z(1, generator.z_dim, s, truncation)[0] for s in seeds]
    pairs = list(zip(points, points[1:] + points[:1] if loop else points[1:], strict=False))
    t = torch.arange(steps, dtype=torch.float32) / steps
    path = [slerp(a, b, t) if method == "slerp" else torch.lerp(a, b, t[:, None]) for a, b in pairs]
    if not loop:
        path.append(points[-1][None])
    return generate(generator, torch.cat(path))


NODES = [train, save, load, sample, interpolate]
