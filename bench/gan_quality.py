"""GAN sample quality on MNIST: ``gan.train``'s defaults against the classic MLP recipe.

A judge that never saw any generator scores 1,000 samples of each:

* **the judge**: a small CNN digit classifier (two 3×3 conv + max-pool blocks of 16 and 32 channels, a
  128-unit hidden layer, ten logits), trained with a fixed seed on 4,000 of the
  5,000 ``data.mnist`` digits (400 per class, random shifts of up to 2 px so that
  a digit drawn slightly off-centre is still read), and checked on the other
  1,000 (100 per class): its ``accuracy`` is reported. The GANs train on all
  5,000 digits, as ``data.mnist`` gives them; "held out" means held out from the
  judge.
* **confidence**: the judge's mean max-softmax probability over the samples.
  Real digits score near 1; blobs and noise score low or spread over classes.
* **classes**: how many of the ten digits appear. A sample is *confident* when the
  judge gives its top class a probability of at least ``CONFIDENT`` (0.9); a class
  is present when at least ``SHARE`` (2%, i.e. 20 of 1,000) of the samples are
  confidently that class. A collapsed generator drawing two kinds of digit scores
  2; a generator drawing unreadable blobs scores low however varied they are.
  ``classes_argmax`` is the looser count (2% of the samples have the class as the
  judge's top guess, however unsure): it says which kinds the generator attempts,
  ``classes`` which it draws well enough to be read without doubt.
* **fd**: the Fréchet distance between Gaussians fitted to the judge's 128-d
  penultimate features (after ReLU) of the samples and of the 1,000 held-out
  digits: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``, the FID
  formula with the judge in place of Inception. It is computed in float64 with
  symmetric eigen-decompositions in torch (scipy is not a dependency here), which
  is exact for covariance matrices and never produces an imaginary part.

Rows, all scored against the same held-out digits:

* ``dcgan``: ``gan.train`` with its defaults for ``steps`` steps.
* ``dcgan_plain_layers``: the same optimiser and steps, but the plain DCGAN layers of
  the previous defaults (``PLAIN_LAYERS``: no 3×3 block in the generator, batch norm
  instead of spectral normalisation in the discriminator): what those two add.
* ``dcgan_paper_lr``: the plain DCGAN layers with the DCGAN paper's optimiser (Adam lr
  2e-4 for both networks, betas (0.5, 0.999)) and the common batch of 64 (the defaults
  before this bench tuned them), for half the steps: the same images.
* ``mlp_classic``: the classic recipe (``arch: mlp, lr: 2e-4, d_lr: 2e-4, betas: [0.5,
  0.999], batch_size: 64, ema: 0, label_smoothing: 0, spectral_norm: false``) for ``MLP_STEP_FACTOR``
  times the DCGAN's steps. Budgets are in steps, so that the scores do not depend
  on the machine's load; an MLP step is about that many times cheaper, so the MLP
  gets at least the DCGAN's CPU time (``train_s`` of each row says what it took here).
* ``mlp``: ``arch: mlp`` with the node's lr (1e-3, for both networks), batch, moving
  average and label smoothing, but Adam betas (0.5, 0.999) and no spectral
  normalisation (``MLP_NODE``), the same steps: the MLP with the node's stabilisers
  as this row was first measured.
* ``real``: 1,000 real digits from the judge's training split (the floor of fd
  for 1,000 samples; the judge has seen these, so their confidence is flattering).
* ``noise``: 1,000 images of uniform noise in [0,1] (the ceiling).

Samples are ``gan.sample(generator, 1000, seed=SAMPLE_SEED, truncation=None)``:
no truncation, so variety is not traded for typicality.

Prints exactly one JSON line on stdout; progress goes to stderr. Targets are
reported with ``met``, never asserted. Run: ``.venv/bin/python bench/gan_quality.py``
(``--quick``: a seconds-long smoke run whose scores mean nothing; ``--steps N``:
another budget; ``--grid DIR``: also write a 10×10 PNG of samples per row).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from machine import load, machine  # bench/machine.py: where a bench ran
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 1000
SAMPLE_SEED = 12345
JUDGE_SEED = 0
JUDGE_EPOCHS = 5
JUDGE_BATCH = 64
HELD_OUT_PER_CLASS = 100
CONFIDENT = 0.9
SHARE = 0.02
#: The budget: the steps the defaults get. About two minutes of DCGAN training on
#: two quiet CPU cores (the target is judged on the seconds it actually took).
STEPS = 2800
QUICK_STEPS = 20
#: The MLP rows get this many times the DCGAN's steps: an MLP step costs about this much less
#: (bench/gan_train.py), so they get at least the DCGAN's seconds; train_s says what they took.
MLP_STEP_FACTOR = 5
#: The DCGAN layers of the defaults before the generator's 3×3 block and spectral normalisation.
PLAIN_LAYERS = {"blocks": 0, "spectral_norm": False}
#: The DCGAN paper's optimiser (Adam 2e-4 for both networks, betas (0.5, 0.999)) with the common
#: batch of 64, given the same images (half the steps): the node's defaults before this bench.
PAPER = {**PLAIN_LAYERS, "lr": 2e-4, "d_lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 64}
#: The classic MLP recipe, exactly.
CLASSIC = {
    "arch": "mlp",
    "lr": 2e-4,
    "d_lr": 2e-4,
    "betas": [0.5, 0.999],
    "batch_size": 64,
    "ema": 0.0,
    "label_smoothing": 0.0,
    "spectral_norm": False,
}
#: The MLP with the node's moving average, label smoothing, lr 1e-3 and batch 32, but the
#: DCGAN paper's Adam (one lr, betas (0.5, 0.999)), as this row was first measured.
MLP_NODE = {"arch": "mlp", "d_lr": 1e-3, "betas": [0.5, 0.999], "spectral_norm": False}
TARGET_CLASSES = 9
TARGET_SECONDS = 120.0
TARGET_FD_RATIO = 3.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the maths (pure, tested in tests/test_gan.py) ---------------------------------


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix.

    Eigenvalues that rounding made slightly negative are clamped to 0, which is
    why this route never gives the imaginary parts a general ``sqrtm`` can."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_from_stats(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    ``tr((S1 S2)^1/2)`` is computed as ``tr((S1^1/2 S2 S1^1/2)^1/2)``: the two matrices
    are similar, and the second is symmetric PSD, so its eigenvalues are real and
    non-negative."""
    mu1, mu2, cov1, cov2 = (t.to(torch.float64) for t in (mu1, mu2, cov1, cov2))
    root1 = _sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross
    return max(float(value), 0.0)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` [N, D] and ``b`` [M, D]."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    return frechet_from_stats(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))


def class_scores(probs: torch.Tensor, confident: float = CONFIDENT, share: float = SHARE) -> dict[str, Any]:
    """Judge's verdict on softmax rows ``probs`` [N, 10]: mean confidence, classes present.

    A class is present when at least ``share`` of all rows give it a probability of
    at least ``confident`` (so unconfident rows count towards no class)."""
    top, label = probs.max(dim=1)
    sure = top >= confident
    counts = torch.bincount(label[sure], minlength=probs.shape[1])
    present = int((counts >= share * probs.shape[0]).sum())
    loose = int((torch.bincount(label, minlength=probs.shape[1]) >= share * probs.shape[0]).sum())
    return {
        "confidence": round(float(top.mean()), 4),
        "confident_share": round(float(sure.float().mean()), 4),
        "classes": present,
        "classes_argmax": loose,
        "confident_per_class": counts.tolist(),
    }


# -- the judge ---------------------------------------------------------------------------


class Judge(nn.Module):
    """A small CNN digit classifier; ``features`` is its 128-d penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def split(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): ``per_class`` of each label held out, chosen by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    held = []
    for c in range(10):
        idx = (labels == c).nonzero().view(-1)
        held.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    held_out = torch.cat(held).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_out] = False
    return mask.nonzero().view(-1), held_out


def shift(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by a random whole number of pixels in [-pixels, pixels] each way (zeros fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels, pixels, pixels, pixels))
    dy = torch.randint(0, 2 * pixels + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pixels + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, 1, h, w + 2 * pixels)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, 1, h, w)
    return out.gather(3, cols)


def train_judge(images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int) -> Judge:
    """Adam 1e-3, batch 64, ``epochs`` passes, seeded (init, shuffling and shifts)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = Judge()
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    judge.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), JUDGE_BATCH):
            index = order[start : start + JUDGE_BATCH]
            loss = F.cross_entropy(judge(shift(images[index], 2, gen)), labels[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return judge.eval().requires_grad_(False)


@torch.no_grad()
def judge_images(judge: Judge, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax [N, 10], penultimate features [N, 128]) of [0,1] images [N, 1, 28, 28]."""
    feats = torch.cat([judge.features(chunk) for chunk in images.split(500)])
    return judge.head(feats).softmax(dim=1), feats


def score(judge: Judge, images: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
    """Confidence, classes and fd of ``images`` against the features ``reference``."""
    probs, feats = judge_images(judge, images)
    return {**class_scores(probs), "fd": round(frechet_distance(feats, reference), 2)}


# -- the generators ------------------------------------------------------------------


def train_generator(dataset: Any, steps: int, **params: Any) -> tuple[Any, float]:
    """``gan.train`` called as a node function with a CPU Context; (generator, seconds)."""
    from artgraph import Context
    from artgraph.nodes import gan

    started = time.perf_counter()
    generator, _ = gan.train(Context("gan", "gan.train", device="cpu"), dataset, steps=steps, seed=0, **params)
    return generator, time.perf_counter() - started


def write_grid(images: torch.Tensor, path: Path) -> None:
    from PIL import Image

    grid = images[:100].view(10, 10, 28, 28).permute(0, 2, 1, 3).reshape(280, 280)
    Image.fromarray((grid * 255).round().to(torch.uint8).numpy()).save(path)


# -- the run ---------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps, a one-epoch judge")
    parser.add_argument("--steps", type=int, help=f"the DCGAN's budget in steps (default {STEPS})")
    parser.add_argument("--grid", type=Path, help="write a 10x10 PNG of samples per row into this folder")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from artgraph.nodes import gan
    from artgraph.nodes.data import datasets

    started = time.perf_counter()
    load_start = load()
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    mnist = datasets.mnist(None)
    train_idx, held_idx = split(mnist.labels, HELD_OUT_PER_CLASS, JUDGE_SEED)

    log(f"gan_quality: training the judge on {len(train_idx)} digits ...")
    t = time.perf_counter()
    judge = train_judge(mnist.images[train_idx], mnist.labels[train_idx], 1 if args.quick else JUDGE_EPOCHS, JUDGE_SEED)
    judge_s = time.perf_counter() - t
    held_probs, held_feats = judge_images(judge, mnist.images[held_idx])
    accuracy = float((held_probs.argmax(1) == mnist.labels[held_idx]).float().mean())
    log(f"  accuracy on the {len(held_idx)} held-out digits: {accuracy:.4f} ({judge_s:.1f} s)")

    rows: dict[str, dict[str, Any]] = {}
    images: dict[str, torch.Tensor] = {}

    log(f"gan_quality: dcgan (defaults), {steps} steps ...")
    generator, seconds = train_generator(mnist, steps)
    images["dcgan"] = gan.sample(generator, SAMPLES, SAMPLE_SEED, None)
    rows["dcgan"] = {"steps": steps, "train_s": round(seconds, 1), "load": load()}

    others = {
        "dcgan_plain_layers": (steps, PLAIN_LAYERS),
        "dcgan_paper_lr": (max(1, steps // 2), PAPER),
        "mlp_classic": (MLP_STEP_FACTOR * steps, CLASSIC),
        "mlp": (MLP_STEP_FACTOR * steps, MLP_NODE),
    }
    for name, (row_steps, params) in others.items():
        log(f"gan_quality: {name} {params}, {row_steps} steps ...")
        generator, row_s = train_generator(mnist, row_steps, **params)
        images[name] = gan.sample(generator, SAMPLES, SAMPLE_SEED, None)
        rows[name] = {"steps": row_steps, "train_s": round(row_s, 1), "load": load(), **params}

    real_gen = torch.Generator().manual_seed(JUDGE_SEED + 2)
    images["real"] = mnist.images[train_idx[torch.randperm(len(train_idx), generator=real_gen)[:SAMPLES]]]
    images["noise"] = torch.rand(SAMPLES, 1, 28, 28, generator=real_gen)
    rows["real"], rows["noise"] = {}, {}
    for name, batch in images.items():
        rows[name].update(score(judge, batch, held_feats))
        log(f"  {name}: {json.dumps({k: v for k, v in rows[name].items() if k != 'confident_per_class'})}")
        if args.grid:
            args.grid.mkdir(parents=True, exist_ok=True)
            write_grid(batch, args.grid / f"gan_quality_{name}.png")

    dcgan, classic = rows["dcgan"], rows["mlp_classic"]
    fd_ratio = round(classic["fd"] / max(dcgan["fd"], 1e-9), 2)
    figures = {
        "bench": "gan_quality",
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "load_start": load_start,
        "load_end": load(),
        "judge": {
            "train_digits": len(train_idx),
            "held_out_digits": len(held_idx),
            "epochs": 1 if args.quick else JUDGE_EPOCHS,
            "accuracy": round(accuracy, 4),
            "train_s": round(judge_s, 1),
        },
        "rule": f"a class is present when >= {SHARE:.0%} of {SAMPLES} samples get it with probability >= {CONFIDENT}",
        "rows": rows,
        "targets": {
            "dcgan_classes": {"target": f">= {TARGET_CLASSES}", "value": dcgan["classes"]},
            "dcgan_seconds": {"target": f"<= {TARGET_SECONDS:.0f}", "value": dcgan["train_s"]},
            "fd_mlp_classic_over_dcgan": {"target": f">= {TARGET_FD_RATIO}", "value": fd_ratio},
            "met": dcgan["classes"] >= TARGET_CLASSES
            and dcgan["train_s"] <= TARGET_SECONDS
            and fd_ratio >= TARGET_FD_RATIO,
        },
        "units": {
            "confidence": "the judge's mean max-softmax probability over the samples",
            "confident_share": f"share of samples whose top class has probability >= {CONFIDENT}",
            "classes": "classes present by the rule above (of 10)",
            "classes_argmax": f"classes that are the top guess for >= {SHARE:.0%} of the samples, however unsure",
            "fd": "Fréchet distance of the judge's 128-d penultimate features to the held-out digits",
            "train_s": "wall seconds of gan.train (node function, CPU), model set-up included",
            "load": "os.getloadavg() (1, 5, 15 min) right after that row's training",
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
