"""GAN training and sampling speed: ``gan.train`` / ``gan.sample`` next to plain PyTorch loops.

References, written out here without artgraph (what a competent user writes by hand):

* ``mlp`` / ``plain``: the classic recipe. G 100→256→256→784 with LeakyReLU(0.2)
  and Tanh, D 784→256→256→1 with LeakyReLU(0.2) and Sigmoid, ``nn.BCELoss``
  (real 1, fake 0; G trained on "fake is real"), D then G each step, Adam lr 2e-4
  betas (0.5, 0.999), a fresh ``randperm`` per epoch, ``torch.randn`` noise.
* ``dcgan`` / ``plain``: ``gan.train``'s default DCGAN for 28×28 written out by
  hand (the same layers, with the generator's 3×3 block and the spectrally
  normalised discriminator, initialisation, loss, one-sided label smoothing and
  moving average of the generator's weights, with the width, learning rates
  (G: lr, D: d_lr), Adam betas and batch (32) taken from the node's defaults),
  so that both do the same arithmetic per step, but one: like most hand-written
  loops it leaves the discriminator's weight gradients on during the generator's
  step, which the node skips (D's own step would zero them): the node's DCGAN
  step is cheaper by that backward pass.

Node variants call ``artgraph.nodes.gan.train`` as a node function with an
``artgraph.Context`` (CPU), as a graph's executor does:

* ``mlp`` / ``node``: ``arch: mlp, lr: 2e-4, d_lr: 2e-4, betas: [0.5, 0.999],
  batch_size: 64, ema: 0, label_smoothing: 0, spectral_norm: false``, the classic recipe (the node's D
  ends in a logit and uses ``binary_cross_entropy_with_logits``: the same
  function, computed stably).
* ``mlp`` / ``node_ema``: the same with the node's moving average and label
  smoothing on: what those two add to a step.
* ``dcgan`` / ``node``: the defaults.

Timing: every variant trains ``rounds`` runs of ``steps`` steps on the 5,000
``data.mnist`` digits (mlp: batch 64; dcgan: the node's default batch),
interleaved (the order rotated every round), so
that all share whatever else the machine is doing. Each run stamps the time after
every step (the node through its progress reporter, which it updates once per
step after the optimiser and moving-average updates; the plain loop inline), and
its throughput is ``(stamps - 1) / (last - first)``: the first step (lazy
set-up) and model building are left out. ``steps_per_s_best`` is the best run,
``steps_per_s_median`` the median run; ratios are node / plain (1.0: the same
speed; the target is >= 0.95).

Also: ``graph``: a whole ``load_graph({data.mnist -> gan.train}).run(cache=False)``
of the mlp ``node`` variant, end to end (reading the digits, validation, building
the models), next to ``data.mnist`` alone; and sampling: ``gan.sample`` of 1,000
images (float64 inverse-CDF noise, eval mode, chunks of 500) against a plain
``G(torch.randn(1000, 100))`` under ``no_grad`` with the same generator, in images
per second, interleaved, best of and median.

Prints exactly one JSON line on stdout; progress goes to stderr. Timings are
reported, never asserted. Run: ``.venv/bin/python bench/gan_train.py``
(``--quick``: a seconds-long smoke run).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from machine import load, machine  # bench/machine.py: where a bench ran
from torch import nn

from artgraph.progress import ProgressBase

Z_DIM = 100
BATCH = 64
#: (rounds, steps per run) per architecture; mlp steps are ~10x cheaper than dcgan's.
FULL = {"mlp": (7, 200), "dcgan": (7, 60)}
QUICK = {"mlp": (2, 12), "dcgan": (2, 4)}
GRAPH_STEPS = {"full": 300, "quick": 10}
SAMPLE_COUNT = 1000
SAMPLE_REPEATS = {"full": 7, "quick": 2}
TARGET_RATIO = 0.95


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Stamps:
    """Wall and process-CPU time stamps, one per training step."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def stamp(self) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def steps_per_s(self) -> float:
        return (len(self.wall) - 1) / (self.wall[-1] - self.wall[0])

    def cpu_s_per_step(self) -> float:
        return (self.cpu[-1] - self.cpu[0]) / (len(self.cpu) - 1)


class StampProgress(ProgressBase):
    """A silent progress reporter that stamps the time at each ``update`` (one per gan.train step)."""

    def __init__(self, stamps: Stamps) -> None:
        self.stamps = stamps

    def update(self, n: int = 1, **metrics: float) -> None:
        self.stamps.stamp()


# -- the plain loops (no artgraph) ---------------------------------------------------


def plain_mlp() -> tuple[nn.Module, nn.Module]:
    g = nn.Sequential(
        nn.Linear(Z_DIM, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 784),
        nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Linear(784, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 1),
        nn.Sigmoid(),
    )
    return g, d


def plain_dcgan(width: int) -> tuple[nn.Module, nn.Module]:
    """The node's default DCGAN for 28×28: base 7×7 with one 3×3 conv block, two ×2
    upsamplings; a spectrally normalised discriminator without batch norm; N(0, 0.02) init."""
    top = 2 * width
    sn = nn.utils.parametrizations.spectral_norm
    g = nn.Sequential(
        nn.Linear(Z_DIM, top * 7 * 7, bias=False),
        nn.Unflatten(1, (top, 7, 7)),
        nn.BatchNorm2d(top),
        nn.ReLU(True),
        nn.Conv2d(top, top, 3, 1, 1, bias=False),
        nn.BatchNorm2d(top),
        nn.ReLU(True),
        nn.ConvTranspose2d(top, width, 4, 2, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(True),
        nn.ConvTranspose2d(width, 1, 4, 2, 1),
        nn.Tanh(),
    )
    d = nn.Sequential(
        sn(nn.Conv2d(1, width, 4, 2, 1)),
        nn.LeakyReLU(0.2, True),
        sn(nn.Conv2d(width, 2 * width, 4, 2, 1)),
        nn.LeakyReLU(0.2, True),
        nn.Flatten(),
        sn(nn.Linear(2 * width * 7 * 7, 1)),
    )
    for m in [*g.modules(), *d.modules()]:
        if nn.utils.parametrize.is_parametrized(m):  # spectral norm sets the scale; default init
            continue
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return g, d


def plain_train(arch: str, data: torch.Tensor, steps: int, recipe: dict[str, Any], stamps: Stamps) -> nn.Module:
    """The hand-written loop: D step, then G step, ``steps`` times; returns G (its average for dcgan)."""
    torch.manual_seed(0)
    if arch == "mlp":
        g, d = plain_mlp()
        images = data.view(len(data), -1)
    else:
        g, d = plain_dcgan(recipe["width"])
        images = data
    batch, smoothing, ema = recipe["batch_size"], recipe["label_smoothing"], recipe["ema"]
    average = copy.deepcopy(g).requires_grad_(False) if ema else None
    bce = nn.BCELoss() if arch == "mlp" else nn.BCEWithLogitsLoss()
    opt_g = torch.optim.Adam(g.parameters(), lr=recipe["lr"], betas=tuple(recipe["betas"]))
    opt_d = torch.optim.Adam(d.parameters(), lr=recipe.get("d_lr") or recipe["lr"], betas=tuple(recipe["betas"]))
    real_label = torch.full((batch, 1), 1.0 - smoothing)
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    if arch == "dcgan":
        real_label, ones, zeros = real_label.view(-1), ones.view(-1), zeros.view(-1)
    step = 0
    while step < steps:
        order = torch.randperm(len(images))
        for i in range(len(images) // batch):
            if step == steps:
                break
            real = images[order[i * batch : (i + 1) * batch]]
            fake = g(torch.randn(batch, Z_DIM))
            d_loss = bce(d(real).view(real_label.shape), real_label) + bce(d(fake.detach()).view(zeros.shape), zeros)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(d(fake).view(ones.shape), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            step += 1
            if average is not None:
                decay = min(ema, (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for a, p in zip(average.parameters(), g.parameters(), strict=True):
                        a.lerp_(p, 1.0 - decay)
                    for a, b in zip(average.buffers(), g.buffers(), strict=True):
                        a.copy_(b)
            stamps.stamp()
    return average if average is not None else g


# -- the node -----------------------------------------------------------------------


def node_train(dataset: Any, steps: int, params: dict[str, Any], stamps: Stamps) -> nn.Module:
    from artgraph import Context
    from artgraph.nodes import gan

    ctx = Context("gan", "gan.train", device="cpu", progress=lambda total, desc: StampProgress(stamps))
    generator, _ = gan.train(ctx, dataset, steps=steps, seed=0, **params)
    return generator


def node_defaults() -> dict[str, Any]:
    from artgraph.nodes import gan

    spec = gan.train.__artgraph_node__  # type: ignore[attr-defined]
    out = {name: spec.params[name].default for name in ("batch_size", "lr", "betas", "label_smoothing", "ema")}
    out["d_lr"] = spec.params["d_lr"].default or 2.0 * out["lr"]  # the node's rule: 2 × lr unless given
    out["width"] = spec.params["width"].default or gan.DCGAN_WIDTH
    blocks = spec.params["blocks"].default
    out["blocks"] = gan.DCGAN_BLOCKS if blocks is None else blocks
    spectral = spec.params["spectral_norm"].default
    out["spectral_norm"] = gan.default_spectral_norm(spec.params["loss"].default) if spectral is None else spectral
    # what plain_dcgan and plain_train write out by hand
    written_out = {"loss": "bce", "arch": "dcgan", "blocks": 1, "spectral_norm": True}
    if {k: out.get(k, spec.params[k].default) for k in written_out} != written_out:
        raise SystemExit(f"gan.train's defaults changed ({out}); update this bench's plain loops")
    return out


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def summarise(runs: list[Stamps]) -> dict[str, Any]:
    rates = [s.steps_per_s() for s in runs]
    cpu = [s.cpu_s_per_step() for s in runs]
    return {
        "steps_per_s_best": round(max(rates), 2),
        "steps_per_s_median": round(statistics.median(rates), 2),
        "steps_per_s_all": [round(r, 2) for r in rates],
        "cpu_s_per_step_median": round(statistics.median(cpu), 4),
    }


def time_training(arch: str, dataset: Any, rounds: int, steps: int) -> dict[str, Any]:
    """Every variant of ``arch``, ``rounds`` interleaved runs of ``steps`` steps each."""
    defaults = node_defaults()
    data = (dataset.images - 0.5) / 0.5
    if arch == "mlp":
        classic = {"batch_size": BATCH, "lr": 2e-4, "betas": [0.5, 0.999], "label_smoothing": 0.0, "ema": 0.0}
        same = {
            "arch": "mlp",
            "batch_size": BATCH,
            "lr": 2e-4,
            "d_lr": 2e-4,
            "betas": [0.5, 0.999],
            "spectral_norm": False,
        }
        node_classic = {**same, "ema": 0.0, "label_smoothing": 0.0}
        node_ema = dict(same)
        variants: dict[str, Callable[[Stamps], nn.Module]] = {
            "plain": lambda s: plain_train("mlp", data, steps, classic, s),
            "node": lambda s: node_train(dataset, steps, node_classic, s),
            "node_ema": lambda s: node_train(dataset, steps, node_ema, s),
        }
    else:
        variants = {
            "plain": lambda s: plain_train("dcgan", data, steps, defaults, s),
            "node": lambda s: node_train(dataset, steps, {}, s),
        }
    names = list(variants)
    runs: dict[str, list[Stamps]] = {name: [] for name in names}
    models: dict[str, nn.Module] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            stamps = Stamps()
            models[name] = variants[name](stamps)
            if len(stamps.wall) != steps:
                raise SystemExit(f"{arch}/{name}: {len(stamps.wall)} steps stamped, {steps} asked for")
            runs[name].append(stamps)
        log(f"  {arch} round {r + 1}/{rounds}: " + ", ".join(f"{n} {runs[n][-1].steps_per_s():.2f}" for n in names))
    sizes = {name: count(model) for name, model in models.items()}
    if len(set(sizes.values())) != 1:  # different models make the timings meaningless
        raise SystemExit(f"{arch}: the generators differ in size: {sizes}")
    out: dict[str, Any] = {"rounds": rounds, "steps_per_run": steps, "generator_parameters": sizes["plain"]}
    out["variants"] = {name: summarise(runs[name]) for name in names}
    plain = out["variants"]["plain"]
    out["ratios_best"] = {
        n: round(v["steps_per_s_best"] / plain["steps_per_s_best"], 3) for n, v in out["variants"].items()
    }
    out["ratios_median"] = {
        n: round(v["steps_per_s_median"] / plain["steps_per_s_median"], 3) for n, v in out["variants"].items()
    }
    out["ratios_cpu_median"] = {
        n: round(plain["cpu_s_per_step_median"] / v["cpu_s_per_step_median"], 3) for n, v in out["variants"].items()
    }
    out["load"] = load()
    out["generator"] = models["node"]
    return out


# -- sampling -------------------------------------------------------------------------


def time_sampling(generator: nn.Module, repeats: int) -> dict[str, Any]:
    """gan.sample(count=1000) against a plain no_grad forward of torch.randn, interleaved."""
    from artgraph.nodes import gan

    def node() -> torch.Tensor:
        return gan.sample(generator, SAMPLE_COUNT, 0, None)

    def plain() -> torch.Tensor:
        generator.eval()
        with torch.no_grad():
            return (generator(torch.randn(SAMPLE_COUNT, Z_DIM)) * 0.5 + 0.5).clamp_(0, 1)

    node(), plain()  # warm-up
    seconds: dict[str, list[float]] = {"node": [], "plain": []}
    for r in range(repeats):
        for name, fn in (("node", node), ("plain", plain))[:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            images = fn()
            seconds[name].append(time.perf_counter() - t)
            if images.shape[0] != SAMPLE_COUNT:
                raise SystemExit(f"sampling {name}: {images.shape[0]} images, {SAMPLE_COUNT} asked for")
    out: dict[str, Any] = {"count": SAMPLE_COUNT}
    for name, values in seconds.items():
        out[name] = {
            "images_per_s_best": round(SAMPLE_COUNT / min(values), 1),
            "images_per_s_median": round(SAMPLE_COUNT / statistics.median(values), 1),
        }
    out["ratio_best"] = round(out["node"]["images_per_s_best"] / out["plain"]["images_per_s_best"], 3)
    out["load"] = load()
    return out


def time_graph(steps: int) -> dict[str, Any]:
    """A whole graph run of data.mnist -> gan.train (mlp, classic recipe), next to data.mnist alone."""
    import artgraph
    from artgraph.nodes.data import datasets

    graph = {
        "artgraph": 1,
        "name": "bench-gan",
        "nodes": {
            "digits": {"type": "data.mnist"},
            "gan": {
                "type": "gan.train",
                "inputs": {"dataset": "digits.dataset"},
                "params": {
                    "arch": "mlp",
                    "lr": 2e-4,
                    "d_lr": 2e-4,
                    "betas": [0.5, 0.999],
                    "batch_size": BATCH,
                    "ema": 0.0,
                    "label_smoothing": 0.0,
                    "steps": steps,
                    "seed": 0,
                },
            },
        },
    }
    seconds = []
    with tempfile.TemporaryDirectory(prefix="artgraph-bench-") as tmp:
        for _ in range(2):  # the first run of the process also loads the plugin registry
            t = time.perf_counter()
            result = artgraph.load_graph(graph).run(device="cpu", cache=False, progress="quiet", out_dir=tmp)
            seconds.append(time.perf_counter() - t)
            if result["gan.generator"].config["step"] != steps:
                raise SystemExit("the graph run did not train the steps asked for")
    t = time.perf_counter()
    datasets.mnist(None)
    read = time.perf_counter() - t
    return {
        "steps": steps,
        "first_run_s": round(seconds[0], 2),
        "run_s": round(seconds[1], 2),
        "data_mnist_s": round(read, 2),
        "load": load(),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from artgraph.nodes.data import datasets

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    plan = QUICK if args.quick else FULL
    load_start = load()
    dataset = datasets.mnist(None)
    training: dict[str, Any] = {}
    sampling: dict[str, Any] = {}
    for arch, (rounds, steps) in plan.items():
        log(f"gan_train: {arch}, {rounds} rounds x {steps} steps per variant ...")
        training[arch] = time_training(arch, dataset, rounds, steps)
        log(f"gan_train: {arch} sampling {SAMPLE_COUNT} images ...")
        sampling[arch] = time_sampling(training[arch].pop("generator"), SAMPLE_REPEATS[mode])
    log("gan_train: a whole graph run ...")
    graph = time_graph(GRAPH_STEPS[mode])
    mlp_node = training["mlp"]["variants"]["node"]["steps_per_s_median"]
    graph["steps_per_s_excluding_data_mnist"] = round(graph["steps"] / (graph["run_s"] - graph["data_mnist_s"]), 2)
    graph["node_steps_per_s_median"] = mlp_node
    targets = {
        f"{arch}_node_vs_plain": {
            "target": f">= {TARGET_RATIO}x",
            "best": training[arch]["ratios_best"]["node"],
            "median": training[arch]["ratios_median"]["node"],
            "met": training[arch]["ratios_best"]["node"] >= TARGET_RATIO,
        }
        for arch in plan
    }
    figures = {
        "bench": "gan_train",
        "mode": mode,
        "machine": machine(),
        "load_start": load_start,
        "load_end": load(),
        "called_as": "gan.train / gan.sample as node functions with an artgraph.Context (CPU); 'graph' via "
        "load_graph(...).run(cache=False)",
        "batch_size": {"mlp": BATCH, "dcgan": node_defaults()["batch_size"]},
        "training": training,
        "sampling": sampling,
        "graph": graph,
        "targets": targets,
        "units": {
            "steps_per_s_*": "steps (D update + G update, plus the moving average where on) per wall second of a "
            "run, its first step and model set-up left out; best / median over the interleaved runs",
            "cpu_s_per_step_median": "process CPU seconds (all threads) per step, median run",
            "ratios_*": "variant steps/s over plain steps/s (best run, median run; cpu: plain CPU s/step over "
            "the variant's, which the machine's other work disturbs less)",
            "images_per_s_*": f"images per second of {SAMPLE_COUNT}-image batches; best / median of the repeats",
            "graph.run_s": "wall seconds of a whole Graph.run (data.mnist, validation, model set-up, training); "
            "first_run_s: the process's first, which also builds the plugin registry (imports every node module)",
            "load": "os.getloadavg() (1, 5, 15 min) at the end of that part",
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
