"""``artgraph batch``: one graph over many items, against a shell loop of ``artgraph run``.

Two workloads, both shipped examples run offline:

* **style**: 16 small style transfers of ``style_transfer`` — ``content.size`` in 64, 80,
  96, 128 times ``transfer.style_weight`` in 1e3..1e6:x10, ``transfer.steps=5`` (VGG16
  'hed' weights, or ImageNet where cached);
* **gan**: 64 sample grids of ``gan_sample`` (``sample.seed`` 1..64, 100 samples each).

Three ways to run them, each timed from start to the last item, start-up included:

* ``loop``: one ``artgraph run --no-cache`` process per item, one after another (the
  reference: what a shell ``for`` loop does). Only the first 4 style and 8 GAN items run
  (each process is independent, so its rate does not depend on how many); ``--full`` runs all;
* ``local``: ``artgraph.batch(..., executor="local", workers=2)`` — two warm worker processes;
* ``ray``: the same with ``executor="ray"`` — Ray started locally, two actors (skipped, and
  said so, when Ray is not installed).

Reported per workload and way: items per minute, the time to the first result, model loads
per worker (from the items' events: how many times ``vgg`` / ``generator`` ran rather than
came from the worker's cache), the ratios to the loop, and the fixed start-up cost:
``setup_s``, the time ``artgraph.batch`` takes to return (for Ray: ``ray.init`` and
creating the actors), and ``first_result_s`` (workers started, graph loaded, first item
run). Checks (a wrong answer exits 1): every item done once, its outputs there, and the GAN
grids of all three ways the same (largest pixel difference at most 2 of 255: the worker
processes run torch on one thread each, the loop on two).

Prints one JSON line; progress on stderr. Run: ``.venv/bin/python bench/batch.py``
(about 3 minutes on 2 cores; ``--quick``: 4 style and 16 GAN items everywhere, about 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from machine import load, machine  # bench/machine.py: where a bench ran
from PIL import Image

import artgraph
from artgraph.batchitems import expand
from artgraph.events import read_events

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS: dict[str, dict[str, Any]] = {
    "style": {
        "graph": "style_transfer",
        "over": [
            "content.size=64,80,96,128",
            "transfer.style_weight=1e3..1e6:x10",
            "transfer.steps=5",
        ],
        "model": "vgg",
        "loop": 4,
    },
    "gan": {"graph": "gan_sample", "over": ["sample.seed=1..64"], "model": "generator", "loop": 8},
}


def log(message: str) -> None:
    print(f"[bench/batch] {message}", file=sys.stderr, flush=True)


def items_of(name: str, quick: bool) -> tuple[artgraph.Graph, list[Any]]:
    spec = WORKLOADS[name]
    graph = artgraph.load_graph(spec["graph"], validate=False)
    over = list(spec["over"])
    if quick:
        over[0] = "content.size=64,96" if name == "style" else "sample.seed=1..16"
        if name == "style":
            over[1] = "transfer.style_weight=1e3,1e5"
    return graph, expand(graph, over)


def loads_per_worker(out: Path, results: list[Any], model: str) -> dict[str, int]:
    loads: Counter[str] = Counter()
    for r in results:
        for e in read_events(out / r.item / "events.jsonl"):
            if e.get("node") == model and e["event"] == "node_done" and e["status"] == "executed":
                loads[r.worker] += 1
    return dict(sorted(loads.items()))


def run_loop(name: str, items: list[Any], out: Path) -> dict[str, Any]:
    """One ``artgraph run`` process per item."""
    graph = WORKLOADS[name]["graph"]
    started = time.perf_counter()
    first = None
    for item in items:
        sets = [a for key, value in item.overrides.items() for a in ("--set", f"{key}={json.dumps(value)}")]
        command = [sys.executable, "-m", "artgraph.cli", "run", graph, *sets, "--out", str(out / item.id)]
        done = subprocess.run([*command, "--no-cache", "--quiet"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"loop: {item.id} failed: {done.stderr[-2000:]}")
        first = first if first is not None else time.perf_counter() - started
    seconds = time.perf_counter() - started
    return {
        "items": len(items),
        "seconds": round(seconds, 2),
        "items_per_minute": round(len(items) / seconds * 60, 2),
        "first_result_s": round(first or 0.0, 2),
        "model_loads_per_worker": {"process per item": len(items)},
    }


def run_batch(name: str, items: list[Any], out: Path, executor: str) -> dict[str, Any]:
    graph, _ = items_of(name, False)
    started = time.perf_counter()
    run = artgraph.batch(graph, items, executor=executor, workers=2, out=out, cache=False, device="cpu", retries=0)
    setup = time.perf_counter() - started
    results, first = [], None
    with run:
        for result in run:
            results.append(result)
            first = first if first is not None else time.perf_counter() - started
        workers = run.workers
    seconds = time.perf_counter() - started
    bad = [r for r in results if not r.ok or r.attempts != 1 or not r.outputs]
    if bad or len(results) != len(items) or len({r.item for r in results}) != len(items):
        raise SystemExit(f"{executor}: wrong results: {bad[:3]} ({len(results)} of {len(items)})")
    figures = {
        "items": len(items),
        "seconds": round(seconds, 2),
        "items_per_minute": round(len(items) / seconds * 60, 2),
        "setup_s": round(setup, 2),
        "first_result_s": round(first or 0.0, 2),
        "model_loads_per_worker": loads_per_worker(out, results, WORKLOADS[name]["model"]),
        "workers": [{k: w[k] for k in ("name", "pid", "threads", "device")} for w in workers],
    }
    return figures


def pixel_difference(a: Path, b: Path) -> int:
    """The largest difference of one channel of one pixel between two images of the same size."""
    with Image.open(a) as x, Image.open(b) as y:
        if x.size != y.size:
            return 255
        return max(abs(p - q) for p, q in zip(x.tobytes(), y.tobytes(), strict=True))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer items (about 1.5 minutes)")
    parser.add_argument("--full", action="store_true", help="the loop runs every item too (slow)")
    args = parser.parse_args(argv)
    try:
        import ray  # noqa: F401

        executors = ["local", "ray"]
    except ImportError:
        executors = ["local"]
        log("Ray is not installed: pip install 'artgraph[ray]'; the ray figures are skipped")
    figures: dict[str, Any] = {"bench": "batch", "machine": machine("cpu"), "load_start": load()}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="artgraph-bench-batch-") as tmp:
        root = Path(tmp)
        os.chdir(root)
        for name in WORKLOADS:
            _, items = items_of(name, args.quick)
            part: dict[str, Any] = {"items": len(items)}
            loop_items = items if args.full else items[: WORKLOADS[name]["loop"]]
            log(f"{name}: loop of {len(loop_items)} 'artgraph run' processes")
            part["loop"] = run_loop(name, loop_items, root / name / "loop")
            for executor in executors:
                log(f"{name}: batch --executor {executor} --workers 2, {len(items)} items")
                part[executor] = run_batch(name, items, root / name / executor, executor)
                ratio = part[executor]["items_per_minute"] / part["loop"]["items_per_minute"]
                part[executor]["vs_loop"] = round(ratio, 2)
            if name == "gan":  # seeded: every way must draw the same grids
                worst = 0
                for item in loop_items:
                    ref = root / name / "loop" / item.id / "gan_samples.png"
                    for executor in executors:
                        worst = max(worst, pixel_difference(ref, root / name / executor / item.id / "gan_samples.png"))
                if worst > 2:
                    raise SystemExit(f"gan: the grids differ between the loop and the batch (by {worst} of 255)")
                part["grids_compared"] = len(loop_items) * len(executors)
                part["largest_pixel_difference"] = worst
            figures[name] = part
        os.chdir(ROOT)
    figures["seconds"] = round(time.perf_counter() - began, 1)
    figures["load_end"] = load()
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
