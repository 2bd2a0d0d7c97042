"""The limits artgraph puts on what it reads, in one place, each with its override.

Graph files, PNGs and weights may come from a stranger (a shared folder, a
server's client, a batch manifest). Every size such a file can claim for
itself is bounded *before* memory is spent on it, so a 300-byte file cannot ask
for gigabytes. Each limit has a documented default and an environment variable
that raises (or lowers) it; docs/security.md lists them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """A bound with its default, the environment variable that changes it, and its unit."""

    name: str
    default: int
    env: str
    unit: str
    what: str

    @property
    def value(self) -> int:
        """The bound in force: the environment's value when it is a positive whole number."""
        raw = os.environ.get(self.env, "").strip().replace("_", "")
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
        return self.default

    def how_to_raise(self) -> str:
        return f"set {self.env} to raise the limit of {self.value:,} {self.unit}"


#: A graph file larger than this is refused before it is parsed.
GRAPH_BYTES = Limit("graph size", 10 * 1024 * 1024, "ARTGRAPH_MAX_GRAPH_BYTES", "bytes", "size of a graph file")
#: Lists and mappings nested deeper than this are refused while the YAML is read.
YAML_DEPTH = Limit("YAML nesting", 64, "ARTGRAPH_MAX_YAML_DEPTH", "levels", "nesting of lists and mappings in YAML")
#: Values that aliases (*name) may add to a document, beyond what is written out.
ALIAS_EXPANSION = Limit(
    "alias expansion", 100_000, "ARTGRAPH_MAX_ALIAS_VALUES", "values", "values added by YAML aliases"
)
#: Images (inputs, or PNGs given to ``run --from``) with more pixels are refused before decoding.
IMAGE_PIXELS = Limit(
    "image pixels", 64 * 1024 * 1024, "ARTGRAPH_MAX_IMAGE_PIXELS", "pixels", "width × height of an image read"
)
#: Tensors described by a weights or checkpoint file's own metadata, before anything is built.
MODEL_PARAMETERS = Limit(
    "model parameters",
    200_000_000,
    "ARTGRAPH_MAX_MODEL_PARAMETERS",
    "parameters",
    "numbers a model built from a file's config may hold",
)

#: The header of a safetensors file (generators, checkpoints): tensor names, shapes, JSON metadata.
METADATA_BYTES = Limit(
    "file header", 16 * 1024 * 1024, "ARTGRAPH_MAX_HEADER_BYTES", "bytes", "header of a safetensors file"
)

#: A file sent to ``artgraph serve`` (``POST /files``), checked while it arrives.
UPLOAD_BYTES = Limit(
    "upload size", 64 * 1024 * 1024, "ARTGRAPH_MAX_UPLOAD_BYTES", "bytes", "size of a file uploaded to the server"
)

ALL = (GRAPH_BYTES, YAML_DEPTH, ALIAS_EXPANSION, IMAGE_PIXELS, MODEL_PARAMETERS, METADATA_BYTES, UPLOAD_BYTES)
