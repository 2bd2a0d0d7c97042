"""Generator files and training checkpoints: writing, reading and checking them.

Files are safetensors: the weights, and a JSON config in the header's metadata
(arch, sizes, z_dim, channels, image size, dataset normalisation, training
step). Nothing is ever unpickled. A file may come from a stranger, so before
anything is built from its config, the config is held to the bounds of
gan.train's params, the model it describes is built on the meta device (no
memory) to compare its tensor shapes with the file's, and its size is held to
``limits.MODEL_PARAMETERS``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from artgraph import NodeError, Param, TypeCheckError, spec_of

from .._imageio import MODES_BY_CHANNELS
from .._tensorfile import one_line, read_safetensors
from ..data.datasets import images as data_images
from .models import FORMAT, FORMAT_VERSION, NORMALISATION, Generator, _check_geometry, _over_limit, parameter_count

CHECKPOINT_FORMAT = "artgraph.gan.checkpoint"
_PICKLE_HINT = "Save the generator with gan.save, or convert the state dict with safetensors.torch.save_file"


# -- the tensors of a checkpoint -----------------------------------------------


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
    problems: list[str] = []
    seen: dict[int, set[str]] = {}
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


# -- configs from files -----------------------------------------------------------


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
    from .training import train  # training.py imports this module

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


# -- resuming gan.train ----------------------------------------------------------


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
