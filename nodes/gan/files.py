"""gan.save and gan.load: a generator as a safetensors file with its JSON config."""

from __future__ import annotations

from artgraph import Context, Input, Model, Param, node
from artgraph import Path as PathT

from .._tensorfile import read_safetensors, write_safetensors
from .checkpoint import _PICKLE_HINT, CHECKPOINT_FORMAT, _config_from, _module_tensors, _sub, build_checked
from .models import FORMAT, Generator, _require_generator


@node(
    "gan.save",
    category="gan",
    output_node=True,
    inputs={"generator": Input(Model)},
    params={
        "path": Param(
            PathT, file="output", suffixes=(".safetensors",), description="a .safetensors file (weights + JSON config)"
        )
    },
    outputs={"path": PathT},
)
def save(ctx: Context, generator: Generator, path: str) -> str:
    """Write a generator atomically: safetensors weights with its JSON config in the header."""
    _require_generator(generator)
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
