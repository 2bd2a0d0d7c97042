"""Results that carry the graph that made them, for exact re-runs.

``image.save`` writes the effective graph (overrides applied) into PNG text
chunks; ``artgraph run --from result.png`` reads it back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .imagefiles import check_image_pixels, open_unchecked

GRAPH_KEY = "artgraph:graph"
BASE_DIR_KEY = "artgraph:base_dir"
SOURCE_KEY = "artgraph:source"
NODE_KEY = "artgraph:node"


@dataclass(frozen=True)
class Provenance:
    graph_yaml: str
    base_dir: str
    source: str


def png_text_chunks(provenance: dict[str, object]) -> dict[str, str]:
    """The text chunks to embed for a node's provenance (empty outside a graph run)."""
    if not provenance.get("graph"):
        return {}
    return {
        GRAPH_KEY: str(provenance["graph"]),
        BASE_DIR_KEY: str(provenance.get("base_dir", "")),
        SOURCE_KEY: str(provenance.get("source", "")),
        NODE_KEY: str(provenance.get("node", "")),
    }


def read_png_provenance(path: str | os.PathLike[str]) -> Provenance | None:
    """The graph embedded in a PNG written by artgraph, or None.

    Only the header and the chunks before the pixel data are read (artgraph writes its
    text chunks there): no pixel is decoded, so a large image costs nothing. A file
    that claims more than ``limits.IMAGE_PIXELS`` is refused all the same
    (:class:`ImageTooLarge`, a ValueError), as any reader of it would refuse it.
    """
    with open_unchecked(path) as img:
        check_image_pixels(img.width, img.height, path)
        # img.text would decode the whole image to look for chunks after the pixel data.
        text = {k: v for k, v in img.info.items() if isinstance(k, str) and isinstance(v, str)}
    if GRAPH_KEY not in text:
        return None
    # Pillow returns iTXt chunks as a str subclass; YAML's C parser wants plain str.
    return Provenance(str(text[GRAPH_KEY]), str(text.get(BASE_DIR_KEY, "")), str(text.get(SOURCE_KEY, "")))
