"""Evolutionary painting: ``evolve.genetic`` next to the way people do it today.

The peer is a DEAP-style loop, written out here as people write it (EvoLisa,
es-clip): individuals are Python lists of genes in [0, 1]; each one is drawn with
Pillow (``ImageDraw.Draw(img, "RGBA").polygon``, 50 translucent triangles on
white) and scored alone with a NumPy MSE; tournament selection (3), gene-wise
uniform crossover (``cxUniform``, indpb 0.5) with probability ``crossover_rate``,
Gaussian mutation (``mutGaussian``, indpb ``mutation_rate``, sigma
``mutation_sigma``, clipped to [0, 1]) of every child, one elite. The knobs are
artgraph's defaults (the mutation sigma: its old fixed default, 0.1; artgraph's
default now falls from 0.5 to 0.05 over the run), so the two differ only in what
artgraph does differently: crossover that swaps whole triangles, four elites, the
sigma schedule, and scoring a generation as one batch.

Both paint the same 64×64 target (the astronaut's face, from scikit-image's
sample photo in graphs/assets) with the same genome size (50 triangles, alpha at
most 0.5), population and evaluation budget, interleaved over several seeds.
Reported: PSNR reached at equal evaluations, evaluations per second, and PSNR at
equal wall-clock time (each search's best score is stamped with the time as it
goes; artgraph's is read at the peer's total time). artgraph runs twice: as it
runs a pixel objective (on one CPU thread, see ``_Search.running`` in nodes/search/harness.py), and
on all of PyTorch's threads, as it would run a compute-bound (VGG) objective —
which shows what the one-thread rule saves on a busy machine.

The budget sweep (skip it with ``--no-sweep``): ``evolve.genetic`` with its
defaults against the same DEAP-style loop at 2,000, 5,000, 10,000, 20,000 and
50,000 evaluations, on the astronaut's face and the cameraman (64 px, 50
triangles), two seeds. The GA's default mutation sigma follows the budget (it
falls from 0.5 to 0.05 over the generations), so it is run once per budget; the
peer's knobs do not depend on the budget, so one run to the biggest budget is
read at each (its best after the last generation within the budget, and the time
it got there). ``--old-sigma`` adds the GA with the old fixed sigma of 0.1 (read
the same way). Reported per budget: PSNR and seconds of each, mean over photos
and seeds, the gain, and how many of the runs the GA won.

Also (skip them with ``--no-vgg`` / ``--no-tour``): a VGG style objective
scoring a population of 32 strokes pictures in one batched call against 32 calls
of one image (random VGG16 weights: the cost does not depend on the weights);
and the ant colony (``tsp.ant_colony_tour`` with the defaults of
``evolve.ant_colony``) against nearest neighbour + 2-opt on 300 and 1,000
random points.

Prints one JSON line. ``--quick`` for a seconds-long smoke run; ``--device cuda`` runs
artgraph's side (searches with the torch renderer, VGG scoring) on the GPU.
Run: ``.venv/bin/python bench/evolve.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import load, machine  # bench/machine.py: where a bench ran
from PIL import Image, ImageDraw, ImageOps

from artgraph.progress import ProgressBase

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "graphs" / "assets" / "astronaut.jpg"
#: The budget sweep's photos: the astronaut's face (as ``load_target``) and the whole cameraman.
SWEEP_PHOTOS = {"astronaut": TARGET, "camera": ROOT / "graphs" / "assets" / "camera.jpg"}
SWEEP_BUDGETS = (2_000, 5_000, 10_000, 20_000, 50_000)
SIZE, TRIANGLES, ALPHA_MAX = 64, 50, 0.5
ELITE = 4  # artgraph's default; the peer keeps one
POPULATION, TOURNAMENT, CROSSOVER_RATE, MUTATION_RATE, MUTATION_SIGMA = 16, 3, 0.5, 0.01, 0.1
DEVICE = "cpu"  # artgraph's device (--device); the peer always runs on the CPU


def load_target(size: int = SIZE, photo: str = "astronaut") -> np.ndarray:
    """The astronaut's face (or another of ``SWEEP_PHOTOS``, whole), square, ``size`` px, float32 HWC in [0, 1]."""
    with Image.open(SWEEP_PHOTOS[photo]) as img:
        picture = img.convert("RGB")
        if photo == "astronaut":
            picture = picture.crop((140, 20, 340, 220))
        return np.asarray(ImageOps.fit(picture, (size, size), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


# -- the peer ---------------------------------------------------------------------------


def peer_draw(genes: list[float], size: int) -> np.ndarray:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img, "RGBA")
    for i in range(0, len(genes), 10):
        g = genes[i : i + 10]
        draw.polygon(
            [g[0] * size, g[1] * size, g[2] * size, g[3] * size, g[4] * size, g[5] * size],
            fill=(int(g[6] * 255), int(g[7] * 255), int(g[8] * 255), int(g[9] * 255 * ALPHA_MAX)),
        )
    return np.asarray(img, dtype=np.float32) / 255.0


def peer_search(target: np.ndarray, budget: int, seed: int) -> list[tuple[float, int, float]]:
    """A DEAP-style GA; returns (seconds, evaluations, best mse) after each generation."""
    rnd = random.Random(seed)
    genes = TRIANGLES * 10

    def evaluate(ind: list[float]) -> float:
        return float(np.mean((peer_draw(ind, SIZE) - target) ** 2))

    start = time.perf_counter()
    pop = [[rnd.random() for _ in range(genes)] for _ in range(POPULATION)]
    fit = [evaluate(ind) for ind in pop]
    evals = len(pop)
    trace = [(time.perf_counter() - start, evals, min(fit))]
    while evals + POPULATION - 1 <= budget:
        best = min(range(POPULATION), key=fit.__getitem__)
        chosen = []
        for _ in range(POPULATION - 1):
            aspirants = [rnd.randrange(POPULATION) for _ in range(TOURNAMENT)]
            chosen.append(list(pop[min(aspirants, key=fit.__getitem__)]))
        for a, b in zip(chosen[::2], chosen[1::2], strict=False):
            if rnd.random() < CROSSOVER_RATE:
                for i in range(genes):
                    if rnd.random() < 0.5:
                        a[i], b[i] = b[i], a[i]
        for ind in chosen:
            for i in range(genes):
                if rnd.random() < MUTATION_RATE:
                    ind[i] = min(1.0, max(0.0, ind[i] + rnd.gauss(0.0, MUTATION_SIGMA)))
        scores = [evaluate(ind) for ind in chosen]
        pop, fit = [pop[best], *chosen], [fit[best], *scores]
        evals += len(chosen)
        trace.append((time.perf_counter() - start, evals, min(fit)))
    return trace


# -- artgraph ---------------------------------------------------------------------------


class _Stamps(ProgressBase):
    """A progress reporter that stamps the time and best score at every generation."""

    def __init__(self, trace: list[tuple[float, float]]) -> None:
        self.trace, self.start = trace, time.perf_counter()

    def update(self, n: int = 1, **metrics: float) -> None:
        self.trace.append((time.perf_counter() - self.start, metrics["best"]))


def artgraph_search(
    target: np.ndarray, budget: int, seed: int, all_threads: bool = False, **params: Any
) -> list[tuple[float, int, float]]:
    from artgraph import Context
    from artgraph.nodes.search import genomes
    from artgraph.nodes.search.genetic_algorithm import genetic
    from artgraph.nodes.style import objectives

    stamps: list[tuple[float, float]] = []
    ctx = Context("bench", "evolve.genetic", seed=seed, device=DEVICE, progress=lambda total, desc: _Stamps(stamps))
    image = torch.from_numpy(target).permute(2, 0, 1).unsqueeze(0).to(DEVICE)
    objective = objectives.objective_pixel(image, "mse", 1.0)
    objective.compute_bound = all_threads  # True: keep PyTorch's threads, as for a VGG objective
    genome = genomes.triangles(TRIANGLES, ALPHA_MAX, "white", "auto")
    generations = (budget - POPULATION) // (POPULATION - ELITE)
    _, _, history = genetic(ctx, genome, objective, population=POPULATION, generations=generations, **params)
    evaluations = [POPULATION + g * (POPULATION - ELITE) for g in history["generation"][1:]]
    return [(t, e, b) for (t, b), e in zip(stamps, evaluations, strict=True)]


def at_time(trace: list[tuple[float, int, float]], seconds: float) -> float:
    """Best mse reached by ``seconds`` (the last stamp at or before it)."""
    best = math.inf
    for t, _, b in trace:
        if t > seconds:
            break
        best = b
    return best


def all_threads_search(target: np.ndarray, budget: int, seed: int) -> list[tuple[float, int, float]]:
    """``artgraph_search`` on all of PyTorch's threads, as the search would run a VGG objective."""
    return artgraph_search(target, budget, seed, all_threads=True)


VARIANTS = {"peer": peer_search, "artgraph": artgraph_search, "artgraph_all_threads": all_threads_search}


def compare_ga(budget: int, seeds: list[int]) -> dict[str, Any]:
    target = load_target()
    runs = []
    names = list(VARIANTS)
    for seed in seeds:
        for name in names[seed % len(names) :] + names[: seed % len(names)]:  # rotate the order
            trace = VARIANTS[name](target, budget, seed)
            runs.append({"who": name, "seed": seed, "trace": trace})
            t, e, b = trace[-1]
            print(f"{name:18s} seed {seed}: {e} evals, {t:.1f} s, PSNR {psnr(b):.2f} dB", file=sys.stderr)
    out: dict[str, Any] = {}
    for who in names:
        mine = [r for r in runs if r["who"] == who]
        out[who] = {
            "psnr_db": round(statistics.mean(psnr(r["trace"][-1][2]) for r in mine), 2),
            "evals": round(statistics.mean(r["trace"][-1][1] for r in mine)),
            "evals_per_s": round(statistics.mean(r["trace"][-1][1] / r["trace"][-1][0] for r in mine)),
        }
        if who != "peer":
            equal_time = []
            for seed in seeds:
                peer = next(r for r in runs if r["who"] == "peer" and r["seed"] == seed)["trace"]
                ours = next(r for r in runs if r["who"] == who and r["seed"] == seed)["trace"]
                equal_time.append(psnr(at_time(ours, peer[-1][0])))
            out[who]["psnr_db_at_peer_time"] = round(statistics.mean(equal_time), 2)
            out[who]["gain_db_equal_evals"] = round(out[who]["psnr_db"] - out["peer"]["psnr_db"], 2)
            out[who]["gain_db_equal_time"] = round(out[who]["psnr_db_at_peer_time"] - out["peer"]["psnr_db"], 2)
    return out


# -- the budget sweep -----------------------------------------------------------------


def at_budget(trace: list[tuple[float, int, float]], budget: int) -> tuple[float, float]:
    """(best mse, seconds) after the last generation within ``budget`` evaluations."""
    within = [step for step in trace if step[1] <= budget]
    return within[-1][2], within[-1][0]


def budget_sweep(budgets: list[int], photos: list[str], seeds: list[int], old_sigma: bool) -> dict[str, Any]:
    """``evolve.genetic``'s defaults against the peer at each budget (and the old fixed sigma)."""
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (who, budget) -> [(psnr, seconds)]
    by_photo: dict[tuple[str, int], list[dict[str, float]]] = {}  # (photo, budget) -> [{who: psnr}] per seed
    for photo in photos:
        target = load_target(SIZE, photo)
        for seed in seeds:
            peer = peer_search(target, max(budgets), seed)
            old = artgraph_search(target, max(budgets), seed, mutation_sigma=0.1) if old_sigma else None
            for budget in budgets:
                mse, seconds = at_budget(peer, budget)
                runs.setdefault(("peer", budget), []).append((psnr(mse), seconds))
                mse, seconds = at_budget(artgraph_search(target, budget, seed), budget)
                runs.setdefault(("artgraph", budget), []).append((psnr(mse), seconds))
                if old is not None:
                    mse, seconds = at_budget(old, budget)
                    runs.setdefault(("artgraph_sigma_0.1", budget), []).append((psnr(mse), seconds))
                mine = {who: round(runs[(who, budget)][-1][0], 2) for who in ("peer", "artgraph")}
                by_photo.setdefault((photo, budget), []).append(mine)
                print(f"sweep {photo} seed {seed} {budget}: {mine}", file=sys.stderr)
    rows = []
    for budget in budgets:
        row: dict[str, Any] = {"budget": budget}
        for who in ("peer", "artgraph", "artgraph_sigma_0.1"):
            if (who, budget) in runs:
                done = runs[(who, budget)]
                row[who] = {
                    "psnr_db": round(statistics.mean(p for p, _ in done), 2),
                    "s": round(statistics.mean(t for _, t in done), 2),
                }
        pairs = list(zip(runs[("artgraph", budget)], runs[("peer", budget)], strict=True))
        row["gain_db"] = round(row["artgraph"]["psnr_db"] - row["peer"]["psnr_db"], 2)
        row["artgraph_won"] = f"{sum(a >= p for (a, _), (p, _) in pairs)}/{len(pairs)}"
        row["gain_db_by_photo"] = {
            photo: round(statistics.mean(r["artgraph"] - r["peer"] for r in by_photo[(photo, budget)]), 2)
            for photo in photos
        }
        rows.append(row)
    return {"photos": photos, "seeds": len(seeds), "budgets": rows}


# -- batched VGG scoring ----------------------------------------------------------------


def vgg_batching(population: int, size: int, rounds: int) -> dict[str, Any]:
    from artgraph import Context
    from artgraph.nodes.search import genomes
    from artgraph.nodes.style import objectives
    from artgraph.nodes.style.features import vgg_model

    device = torch.device(DEVICE)
    model = vgg_model(Context("bench", "vgg", seed=0, device=DEVICE), "vgg16", "random", "max", 0)  # as a graph does
    style = torch.from_numpy(load_target(size)).permute(2, 0, 1).unsqueeze(0).to(device)
    objective = objectives.objective_style(model, [style], ["relu1_1", "relu2_1", "relu3_1"], None, None, 1.0, 1.0)
    genome = genomes.strokes(200, 0.8, "white", "auto", 0.3, 0.06)
    params = genome.random(population, torch.Generator().manual_seed(0))
    images = genome.render(params, (size, size), device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        objective(images[:1])  # targets, warm-up
        objective(images)
        batched, single = [], []
        for _ in range(rounds):
            sync()
            t = time.perf_counter()
            together = objective(images)
            sync()
            batched.append(time.perf_counter() - t)
            t = time.perf_counter()
            alone = torch.cat([objective(images[i : i + 1]) for i in range(population)])
            sync()
            single.append(time.perf_counter() - t)
    assert torch.allclose(together, alone, rtol=1e-4), "batched and one-by-one scores differ"
    return {
        "population": population,
        "size": size,
        "device": DEVICE,
        "batched_s": round(min(batched), 4),
        "one_by_one_s": round(min(single), 4),
        "speedup": round(min(single) / min(batched), 2),
    }


# -- ant colony -------------------------------------------------------------------------


def tours(counts: list[int], seed: int) -> list[dict[str, Any]]:
    from artgraph.nodes.lineart import tsp

    results = []
    for count in counts:
        xy = np.random.default_rng(seed).random((count, 2)) * 512
        t = time.perf_counter()
        reference = tsp.two_opt(xy, tsp.nearest_neighbour_tour(xy))
        ref_s = time.perf_counter() - t
        ref_len = tsp.tour_length(xy, reference)
        t = time.perf_counter()
        length = tsp.ant_colony_tour(xy, seed=seed).length  # the node's defaults
        aco_s = time.perf_counter() - t
        results.append(
            {
                "points": count,
                "nn_2opt_length": round(ref_len, 1),
                "nn_2opt_s": round(ref_s, 2),
                "aco_length": round(float(length), 1),
                "aco_s": round(aco_s, 2),
                "ratio": round(float(length) / ref_len, 4),
            }
        )
        print(f"tour {count}: {results[-1]}", file=sys.stderr)
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--budget", type=int, default=20_000, help="evaluations per search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-vgg", action="store_true")
    parser.add_argument("--no-tour", action="store_true")
    parser.add_argument("--no-sweep", action="store_true", help="skip the budget sweep")
    parser.add_argument("--sweep-seeds", type=int, default=2)
    parser.add_argument("--old-sigma", action="store_true", help="the sweep also runs the old fixed sigma, 0.1")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="artgraph's device")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    torch.manual_seed(0)
    budget = 700 if args.quick else args.budget
    seeds = list(range(1 if args.quick else args.seeds))
    figures: dict[str, Any] = {
        "bench": "evolve",
        "machine": machine(DEVICE),
        "load_before": load(),
        "genetic": {"budget": budget, "seeds": len(seeds), **compare_ga(budget, seeds)},
    }
    if not args.no_sweep:
        figures["budget_sweep"] = budget_sweep(
            [300, 700] if args.quick else list(SWEEP_BUDGETS),
            ["astronaut"] if args.quick else list(SWEEP_PHOTOS),
            list(range(1 if args.quick else args.sweep_seeds)),
            args.old_sigma,
        )
    if not args.no_vgg:
        figures["vgg_scoring"] = vgg_batching(8 if args.quick else 32, 64, 1 if args.quick else 3)
    if not args.no_tour:
        figures["ant_colony"] = tours([50] if args.quick else [300, 1000], 0)
    figures["targets"] = targets(figures)
    figures["load_after"] = load()
    print(json.dumps(figures))


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each with ``met``; reported, never asserted."""
    ga = figures["genetic"]
    out: dict[str, Any] = {
        "psnr_at_equal_evals_vs_peer": {"met": ga["artgraph"]["gain_db_equal_evals"] >= 0},
        "psnr_at_equal_time_vs_peer": {"met": ga["artgraph"]["gain_db_equal_time"] >= 0},
    }
    if "budget_sweep" in figures:
        gains = [row["gain_db"] for row in figures["budget_sweep"]["budgets"]]
        out["genetic_at_every_budget_vs_peer"] = {"met": all(g >= 0 for g in gains), "gains_db": gains}
    if "vgg_scoring" in figures:
        out["vgg_batched_several_times_faster"] = {"met": figures["vgg_scoring"]["speedup"] >= 3.0}
    if "ant_colony" in figures:
        out["aco_within_5pct_of_nn_2opt"] = {"met": all(r["ratio"] <= 1.05 for r in figures["ant_colony"])}
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
