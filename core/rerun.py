"""Re-running the graph a PNG carries (``artgraph run --from PNG``), as someone else's graph.

Its input files are read only from the PNG's own folder (or ``--base DIR``),
never from the folder recorded inside it; a missing input's hint names that
recorded folder as a suggestion; what it reads and writes is listed first.
"""

from __future__ import annotations

import os
from typing import Any

from .arguments import path_arg
from .paths import shown


def files_of(plan: Any) -> tuple[list[str], list[str]]:
    """The files a plan reads and the files it writes (file params of its nodes)."""
    reads: list[str] = []
    writes: list[str] = []
    for node in plan.nodes.values():
        reads.extend(p for p in node.reads if p not in reads)
        for name, param in node.spec.params.items():
            value = node.params.get(name)
            if param.file == "output" and value is not None and value not in param.keywords:
                if str(value) not in writes:
                    writes.append(str(value))
    return reads, writes


def suggest_base(exc: Any, found: Any, base: Any) -> Any:
    """``exc`` with a hint on each missing input: the folder the PNG says it was made in."""
    import dataclasses
    import shlex

    from .errors import GraphError

    made_in = found.base_dir
    if not made_in or os.path.abspath(made_in) == os.path.abspath(base):
        return exc
    where = shlex.quote(made_in) if made_in.isprintable() else repr(made_in)
    suggestion = f"the PNG says it was made in {where}: if its inputs are there and you trust it, add --base {where}"
    problems = [
        dataclasses.replace(p, hint=f"{p.hint}; {suggestion}" if p.hint else suggestion)
        if "file not found" in p.message
        else p
        for p in exc.problems
    ]
    return GraphError(problems)


def graph_from_png(path: str, base: str | None) -> tuple[Any, Any]:
    """The graph embedded in a PNG, reading its inputs only from ``base`` or the PNG's folder."""
    import struct
    import zlib

    from PIL import Image

    from .api import load_graph
    from .errors import ArtgraphError, GraphError, Problem
    from .provenance import read_png_provenance

    path_arg("--from", path)
    if base is not None:
        path_arg("--base", base)
        if not os.path.isdir(base):
            raise GraphError([Problem("--base", None, None, f"{shown(base)} is not a folder", "give --base a folder")])
    try:
        found = read_png_provenance(path)
    except GraphError:
        raise
    except (
        ArtgraphError,
        OSError,
        ValueError,
        EOFError,
        SyntaxError,
        struct.error,
        zlib.error,
        Image.DecompressionBombError,
    ) as exc:
        raise GraphError(
            [Problem(path, None, None, f"cannot read the image: {exc}", "give a PNG that artgraph wrote")]
        ) from None
    if found is None:
        raise GraphError(
            [
                Problem(
                    path,
                    None,
                    None,
                    "this PNG carries no artgraph graph",
                    "only PNGs written by image.save carry their graph",
                )
            ]
        )
    # Never the folder written inside the PNG: whoever made the file chose that.
    folder = os.path.abspath(base if base is not None else os.path.dirname(os.path.abspath(path)))
    graph = load_graph(
        f"{path} (embedded graph)", text=found.graph_yaml, base_dir=folder, validate=False, confine_inputs=True
    )
    return graph, found
