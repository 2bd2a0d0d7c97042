"""Execution: what runs, what is cached and why, failures, memory release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import artgraph
from artgraph import Cache, RunFailed, load_graph


def chain(n: int, b: int = 1) -> dict[str, Any]:
    nodes: dict[str, Any] = {"n0": {"type": "t.source", "params": {"value": 0}}}
    for i in range(1, n):
        nodes[f"n{i}"] = {"type": "t.add", "inputs": {"a": f"n{i - 1}.out"}, "params": {"b": b}}
    return {"artgraph": 1, "nodes": nodes}


def statuses(result: artgraph.RunResult) -> dict[str, str]:
    return {i: r.status for i, r in result.nodes.items()}


def test_cold_then_cached_rerun(registry, calls):
    graph = load_graph(chain(4), registry=registry)
    cache = Cache()
    first = graph.run(device="cpu", cache=cache)
    assert first["n3.out"] == 3
    assert calls == ["t.source", "t.add", "t.add", "t.add"]
    calls.clear()
    second = graph.run(device="cpu", cache=cache)
    assert second["n3.out"] == 3
    assert calls == []
    assert statuses(second)["n3"] == "cached"
    assert second.nodes["n0"].reason.startswith("not needed")


def test_changing_last_param_reruns_only_last(registry, calls):
    graph = load_graph(chain(5), registry=registry)
    cache = Cache()
    graph.run(device="cpu", cache=cache)
    calls.clear()
    result = graph.run(device="cpu", cache=cache, overrides={"n4.b": 10})
    assert result["n4.out"] == 3 + 10
    assert calls == ["t.add"]
    assert result.nodes["n4"].status == "executed"
    assert result.nodes["n4"].reason == "param 'b' changed: 1 -> 10"
    assert result.nodes["n3"].status == "cached"


def test_changing_middle_param_reruns_downstream(registry, calls):
    graph = load_graph(chain(5), registry=registry)
    cache = Cache()
    graph.run(device="cpu", cache=cache)
    calls.clear()
    result = graph.run(device="cpu", cache=cache, overrides={"n2.b": 5})
    assert result["n4.out"] == 8
    assert statuses(result) == {"n0": "cached", "n1": "cached", "n2": "executed", "n3": "executed", "n4": "executed"}
    assert result.nodes["n3"].reason == "input 'a' changed upstream"


def test_disk_cache_survives_a_new_cache_object(registry, calls, tmp_path):
    graph = load_graph(chain(3), registry=registry)
    graph.run(device="cpu", cache=Cache(disk=tmp_path / "c"))
    calls.clear()
    result = graph.run(device="cpu", cache=Cache(disk=tmp_path / "c"))  # as a new process would
    assert calls == []
    assert result["n2.out"] == 2
    calls.clear()
    result = graph.run(device="cpu", cache=Cache(disk=tmp_path / "c"), overrides={"n2.b": 4})
    assert calls == ["t.add"]
    assert result.nodes["n2"].reason == "param 'b' changed: 1 -> 4"


def test_tensors_round_trip_through_the_disk_cache(registry, calls, tmp_path):
    spec = {
        "artgraph": 1,
        "nodes": {
            "s": {"type": "t.source", "params": {"value": 3}},
            "t": {"type": "t.tensor", "inputs": {"a": "s"}, "params": {"n": 5}},
            "r": {"type": "t.reduce", "inputs": {"x": "t"}},
        },
    }
    graph = load_graph(spec, registry=registry)
    graph.run(device="cpu", cache=Cache(disk=tmp_path))
    calls.clear()
    result = graph.run(device="cpu", cache=Cache(disk=tmp_path), outputs=["t.out", "r.out"])
    assert calls == []
    assert result["t.out"].tolist() == [3.0] * 5
    assert result["r.out"] == 15


def test_edited_input_file_is_noticed(registry, tmp_path, tiny_png):
    spec = {
        "artgraph": 1,
        "nodes": {"img": {"type": "image.load", "params": {"path": str(tiny_png)}}},
    }
    graph = load_graph(spec, registry=registry)
    cache = Cache()
    first = graph.run(device="cpu", cache=cache)
    again = graph.run(device="cpu", cache=cache)
    assert again.nodes["img"].status == "cached"
    from PIL import Image

    Image.new("RGB", (12, 8), (255, 0, 0)).save(tiny_png)
    changed = graph.run(device="cpu", cache=cache)
    assert changed.nodes["img"].status == "executed"
    assert changed.nodes["img"].reason == "an input file changed"
    assert not (first["img.image"] == changed["img.image"]).all()


def test_nondeterministic_nodes_rerun_with_their_consumers(registry, calls):
    spec = {
        "artgraph": 1,
        "nodes": {"r": {"type": "t.random"}, "a": {"type": "t.add", "inputs": {"a": "r"}}},
    }
    graph = load_graph(spec, registry=registry)
    cache = Cache()
    graph.run(device="cpu", cache=cache)
    calls.clear()
    result = graph.run(device="cpu", cache=cache)
    assert calls == ["t.random", "t.add"]
    assert result.nodes["r"].reason == "not deterministic: never cached"


def test_output_nodes_always_run(registry, calls):
    spec = chain(2)
    spec["nodes"]["end"] = {"type": "t.sink", "inputs": {"a": "n1"}}
    graph = load_graph(spec, registry=registry)
    cache = Cache()
    graph.run(device="cpu", cache=cache)
    calls.clear()
    result = graph.run(device="cpu", cache=cache)
    assert calls == ["t.sink"]
    assert result.nodes["end"].reason == "output node: always runs"


def test_only_nodes_leading_to_outputs_run(registry, calls):
    spec = chain(2)
    spec["nodes"]["end"] = {"type": "t.sink", "inputs": {"a": "n1"}}
    spec["nodes"]["dangling"] = {"type": "t.add", "inputs": {"a": "n0"}}
    result = load_graph(spec, registry=registry).run(device="cpu", cache=False)
    assert result.nodes["dangling"].status == "skipped"
    assert result.nodes["dangling"].reason == "does not lead to an output"
    assert calls.count("t.add") == 1


def test_requested_outputs_limit_the_run(registry, calls):
    result = load_graph(chain(5), registry=registry).run(device="cpu", cache=False, outputs=["n1.out"])
    assert result.outputs == {"n1.out": 1}
    assert calls == ["t.source", "t.add"]


def test_failure_is_isolated_and_other_branches_finish(registry, calls):
    spec = {
        "artgraph": 1,
        "nodes": {
            "s": {"type": "t.source"},
            "bad": {"type": "t.boom", "inputs": {"a": "s"}},
            "after_bad": {"type": "t.sink", "inputs": {"a": "bad"}},
            "good": {"type": "t.add", "inputs": {"a": "s"}},
            "good_end": {"type": "t.sink", "inputs": {"a": "good"}},
        },
    }
    graph = load_graph(spec, registry=registry)
    with pytest.raises(RunFailed) as info:
        graph.run(device="cpu", cache=False)
    result = info.value.result
    assert result.nodes["bad"].status == "failed"
    assert result.nodes["bad"].error == "t.boom: ValueError: kaboom"
    assert result.nodes["after_bad"].status == "skipped"
    assert result.nodes["after_bad"].reason == "upstream node 'bad' failed"
    assert result.nodes["good_end"].status == "executed"
    assert result["good_end.out"] == 2
    assert "node 'bad': t.boom: ValueError: kaboom" in str(info.value)


def test_wrong_output_type_fails_the_node_clearly(registry):
    result = load_graph({"artgraph": 1, "nodes": {"x": {"type": "t.liar"}}}, registry=registry).run(
        device="cpu", cache=False, raise_on_failure=False
    )
    assert not result.ok
    assert "output 'out' is not a valid Tensor" in result.nodes["x"].error


def test_intermediates_are_released_after_their_last_consumer(registry, seen_alive):
    spec = {
        "artgraph": 1,
        "nodes": {
            "t": {"type": "t.tensor", "params": {"n": 1000}},
            "r": {"type": "t.reduce", "inputs": {"x": "t"}},
            "p": {"type": "t.probe", "inputs": {"a": "r"}},
        },
    }
    load_graph(spec, registry=registry).run(device="cpu", cache=False)
    assert seen_alive == [False]  # the tensor was gone before 'p' ran


def test_cached_intermediates_are_kept(registry, seen_alive):
    spec = {
        "artgraph": 1,
        "nodes": {
            "t": {"type": "t.tensor", "params": {"n": 1000}},
            "r": {"type": "t.reduce", "inputs": {"x": "t"}},
            "p": {"type": "t.probe", "inputs": {"a": "r"}},
        },
    }
    load_graph(spec, registry=registry).run(device="cpu", cache=Cache())
    assert seen_alive == [True]  # the memory cache holds it for the next run


def test_wired_param_bounds_are_checked_at_run_time(registry):
    spec = {
        "artgraph": 1,
        "nodes": {
            "big": {"type": "t.source", "params": {"value": 5000}},
            "s": {"type": "t.source"},
            "a": {"type": "t.add", "inputs": {"a": "s", "b": "big"}},
        },
    }
    result = load_graph(spec, registry=registry).run(device="cpu", cache=False, raise_on_failure=False)
    assert result.nodes["a"].status == "failed"
    assert "wired param 'b': 5000 is above the maximum 1000" in result.nodes["a"].error


def test_list_input_and_int_to_float_wiring(registry):
    spec = {
        "artgraph": 1,
        "nodes": {
            "a": {"type": "t.source", "params": {"value": 2}},
            "b": {"type": "t.source", "params": {"value": 3}},
            "s": {"type": "t.sum", "inputs": {"items": ["a", "b.out", "a"]}},
            "one": {"type": "t.sum", "inputs": {"items": "b"}},
        },
    }
    result = load_graph(spec, registry=registry).run(device="cpu", cache=False)
    assert result["s.out"] == 7
    assert result["one.out"] == 3


def test_a_ten_thousand_node_chain_runs_without_recursion(registry):
    graph = load_graph(chain(10_000), registry=registry)
    cache = Cache()
    result = graph.run(device="cpu", cache=cache)
    assert result["n9999.out"] == 9999
    again = graph.run(device="cpu", cache=cache, overrides={"n9999.b": 2})
    assert again["n9999.out"] == 10000
    assert sum(r.status == "executed" for r in again.nodes.values()) == 1


def test_seed_param_and_derived_seeds_are_stable():
    from artgraph.context import Context

    a = Context("x", "t.x", seed=7).rng
    b = Context("x", "t.x", seed=7).rng
    import torch

    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))


def test_device_resolution_errors_are_clear():
    from artgraph.devices import DeviceError, resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    import torch

    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:1")


def test_interrupted_disk_write_leaves_no_entry(registry, tmp_path, monkeypatch):
    import safetensors.torch

    spec = {"artgraph": 1, "nodes": {"t": {"type": "t.tensor"}}}
    graph = load_graph(spec, registry=registry)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        graph.run(device="cpu", cache=Cache(disk=tmp_path))
    leftovers = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert leftovers == []
    monkeypatch.undo()
    result = graph.run(device="cpu", cache=Cache(disk=tmp_path))
    assert result.nodes["t"].status == "executed"
    assert graph.run(device="cpu", cache=Cache(disk=tmp_path)).nodes["t"].status == "cached"


def test_reused_plans_follow_the_working_directory(registry, tmp_path, monkeypatch, tiny_png):
    spec = {
        "artgraph": 1,
        "nodes": {
            "img": {"type": "image.load", "params": {"path": str(tiny_png)}},
            "save": {"type": "image.save", "inputs": {"image": "img"}, "params": {"path": "o.png"}},
        },
    }
    graph = load_graph(spec, registry=registry)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        (written,) = graph.run(device="cpu", cache=False)["save.paths"]
        assert Path(written) == tmp_path / folder / "out" / "o.png"


def test_cached_inputs_survive_eviction_during_the_run(registry):
    # More cacheable nodes than the LRU holds: values the run counts on must not vanish.
    nodes: dict[str, Any] = {"src": {"type": "t.source", "params": {"value": 1}}}
    for i in range(10):
        nodes[f"a{i}"] = {"type": "t.add", "inputs": {"a": "src"}, "params": {"b": i}}
    nodes["total"] = {"type": "t.sum", "inputs": {"items": [f"a{i}" for i in range(10)]}}
    graph = load_graph({"artgraph": 1, "nodes": nodes}, registry=registry)
    cache = Cache(max_entries=8)
    assert graph.run(device="cpu", cache=cache)["total.out"] == 10 + 45
    result = graph.run(device="cpu", cache=cache, overrides={"a9.b": 100})
    assert result.ok
    assert result["total.out"] == 10 + 45 - 9 + 100


def test_a_nodes_check_runs_on_wired_params_too(calls):
    from artgraph import Int, Param, node
    from artgraph.plugins import build_registry
    from tests.conftest import _Pack

    def ordered(params):
        if params["low"] >= params["high"]:
            yield ("'low' must be below 'high'", "swap them")

    @node("h.range", params={"low": Param(Int, 0), "high": Param(Int, 10)}, outputs={"out": Int}, check=ordered)
    def span(low: int, high: int) -> int:  # trusts its check: no copy of it here
        return high - low

    class Pack:
        @artgraph.hookimpl
        def artgraph_register_nodes(self) -> list[object]:
            return [span]

    registry = build_registry(plugins=[("testpack", "artgraph-tests", _Pack()), ("range", "range-tests", Pack())])
    spec = {
        "artgraph": 1,
        "nodes": {
            "n": {"type": "t.source", "params": {"value": 50}},
            "r": {"type": "h.range", "inputs": {"low": "n"}, "params": {"high": 10}},
        },
    }
    with pytest.raises(artgraph.GraphError):  # written, the check runs at validation
        load_graph({**spec, "nodes": {"r": {"type": "h.range", "params": {"low": 50}}}}, registry=registry)
    result = load_graph(spec, registry=registry).run(device="cpu", cache=False, raise_on_failure=False)
    assert result.nodes["r"].status == "failed"
    assert result.nodes["r"].error == "h.range: 'low' must be below 'high'"
    ok = load_graph(spec, registry=registry).run(device="cpu", cache=False, overrides={"n.value": 3})
    assert ok["r.out"] == 7
