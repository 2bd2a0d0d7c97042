"""Shared fixtures: a small pack of test nodes registered without entry points."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import Input, Int, List, Param, Tensor, node
from artgraph.plugins import build_registry

#: Every call of a test node appends its node type here (cleared per test).
CALLS: list[str] = []
#: Weak references to tensors made by t.tensor, to check they are released.
MADE: list[weakref.ref[torch.Tensor]] = []
#: What t.probe saw: whether the earlier tensors were still alive when it ran.
SEEN_ALIVE: list[bool] = []


@node("t.source", params={"value": Param(Int, 1)}, outputs={"out": Int})
def source(value: int) -> int:
    CALLS.append("t.source")
    return value


@node("t.add", inputs={"a": Input(Int)}, params={"b": Param(Int, 1, min=-1000, max=1000)}, outputs={"out": Int})
def add(a: int, b: int) -> int:
    CALLS.append("t.add")
    return a + b


@node("t.sum", inputs={"items": Input(List(Int))}, outputs={"out": Int})
def total(items: list[int]) -> int:
    CALLS.append("t.sum")
    return sum(items)


@node("t.boom", inputs={"a": Input(Int)}, outputs={"out": Int})
def boom(a: int) -> int:
    CALLS.append("t.boom")
    raise ValueError("kaboom")


@node("t.random", deterministic=False, outputs={"out": Int})
def random_int(ctx: artgraph.Context) -> int:
    CALLS.append("t.random")
    return int(torch.randint(0, 1_000_000, (1,), generator=torch.Generator().manual_seed(torch.seed())))


@node("t.tensor", inputs={"a": Input(Int, optional=True)}, params={"n": Param(Int, 4)}, outputs={"out": Tensor})
def make_tensor(a: int | None, n: int) -> torch.Tensor:
    CALLS.append("t.tensor")
    t = torch.full((n,), float(a or 0))
    MADE.append(weakref.ref(t))
    return t


@node("t.reduce", inputs={"x": Input(Tensor)}, outputs={"out": Int})
def reduce_tensor(x: torch.Tensor) -> int:
    CALLS.append("t.reduce")
    return int(x.sum())


@node("t.probe", inputs={"a": Input(Int)}, outputs={"out": Int})
def probe(a: int) -> int:
    CALLS.append("t.probe")
    SEEN_ALIVE.extend(ref() is not None for ref in MADE)
    return a


@node("t.liar", outputs={"out": Tensor})
def liar() -> Any:
    CALLS.append("t.liar")
    return "not a tensor"


@node("t.sink", output_node=True, inputs={"a": Input(Int)}, outputs={"out": Int})
def sink(a: int) -> int:
    CALLS.append("t.sink")
    return a


class _Pack:
    @artgraph.hookimpl
    def artgraph_register_nodes(self) -> list[object]:
        return [source, add, total, boom, random_int, make_tensor, reduce_tensor, probe, liar, sink]


@pytest.fixture
def registry() -> artgraph.Registry:
    """Built-in nodes (via entry points) plus the test pack."""
    CALLS.clear()
    MADE.clear()
    SEEN_ALIVE.clear()
    return build_registry(plugins=[("testpack", "artgraph-tests", _Pack())])


@pytest.fixture
def calls() -> list[str]:
    return CALLS


@pytest.fixture
def seen_alive() -> list[bool]:
    return SEEN_ALIVE


@pytest.fixture
def tiny_png(tmp_path: Path) -> Path:
    """A 12x8 RGB gradient PNG."""
    path = tmp_path / "tiny.png"
    img = PILImage.new("RGB", (12, 8))
    img.putdata([(x * 20, y * 30, 100) for y in range(8) for x in range(12)])
    img.save(path)
    return path
