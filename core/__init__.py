"""artgraph: typed node graphs for deep-learning art, run headless from YAML.

The public API for graph users and plugin authors. Plugins import only from here.

Declaring nodes::

    from artgraph import node, hookimpl, Input, Param, Image, Int

Running graphs::

    import artgraph
    result = artgraph.load_graph("graph.yaml").run(device="auto")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import limits
from .context import Context
from .errors import ArtgraphError, Cancelled, GraphError, NodeError, PluginError, Problem, RunFailed
from .files import atomic_path
from .imagefiles import ImageTooLarge, open_image
from .node import REQUIRED, Input, NodeSpec, Output, Param, node, spec_of
from .objective import FunctionObjective, Objective, Sum
from .plugins import hookimpl, hookspec
from .ports import Image, Model, Tensor
from .ports import Objective as ObjectiveType
from .progress import Progress
from .provenance import png_text_chunks
from .types import (
    JSON,
    TENSOR,
    Bool,
    Dict,
    Float,
    Int,
    List,
    Path,
    PortType,
    Str,
    TypeCheckError,
    can_connect,
)
from .types import (
    Any as AnyType,
)

if TYPE_CHECKING:
    from .api import Graph, load_graph, process_cache
    from .batching import batch
    from .cache import Cache
    from .plugins import Registry, build_registry, default_registry
    from .result import RunResult

__version__ = "0.1.0"

# Heavier pieces (networkx, the executor) load on first use so that
# `artgraph --help` and plugin imports stay fast.
_LAZY = {
    "load_graph": ("api", "load_graph"),
    "batch": ("batching", "batch"),
    "Graph": ("api", "Graph"),
    "process_cache": ("api", "process_cache"),
    "Cache": ("cache", "Cache"),
    "RunResult": ("result", "RunResult"),
    "Registry": ("plugins", "Registry"),
    "default_registry": ("plugins", "default_registry"),
    "build_registry": ("plugins", "build_registry"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'artgraph' has no attribute '{name}'")


__all__ = [
    "JSON",
    "REQUIRED",
    "TENSOR",
    "AnyType",
    "ArtgraphError",
    "Bool",
    "Cache",
    "Cancelled",
    "Context",
    "Dict",
    "Float",
    "FunctionObjective",
    "Graph",
    "GraphError",
    "Image",
    "ImageTooLarge",
    "Input",
    "Int",
    "List",
    "Model",
    "NodeError",
    "NodeSpec",
    "Objective",
    "ObjectiveType",
    "Output",
    "Param",
    "Path",
    "PluginError",
    "PortType",
    "Problem",
    "Progress",
    "Registry",
    "RunFailed",
    "RunResult",
    "Str",
    "Sum",
    "Tensor",
    "TypeCheckError",
    "atomic_path",
    "batch",
    "build_registry",
    "can_connect",
    "default_registry",
    "hookimpl",
    "hookspec",
    "limits",
    "load_graph",
    "node",
    "open_image",
    "png_text_chunks",
    "process_cache",
    "spec_of",
]
