"""Files from a stranger: nothing in them runs code, and nothing they claim about their
own size is allocated before it is checked.

Three kinds of file are covered: pickled weights (a ``.pth`` whose unpickling would
create a marker file), generator files and checkpoints whose config describes a huge
model (checked on the meta device against gan.train's bounds and
``limits.MODEL_PARAMETERS``), and images whose header claims a huge size (patched
PNG headers: a few hundred bytes that claim 20,000×20,000 pixels).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import struct
import subprocess
import sys
import textwrap
import types
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image as PILImage
from PIL import PngImagePlugin

from artgraph import ArtgraphError, ImageTooLarge, NodeError, limits, open_image, spec_of
from artgraph.nodes import gan
from artgraph.nodes._tensorfile import read_safetensors, write_safetensors
from artgraph.nodes.data import datasets
from artgraph.nodes.image import basic as image
from artgraph.nodes.style import vgg
from artgraph.provenance import GRAPH_KEY, read_png_provenance
from tests.conftest import make_ctx


@pytest.fixture(autouse=True)
def default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented defaults, whatever the environment running the tests says."""
    for limit in limits.ALL:
        monkeypatch.delenv(limit.env, raising=False)


# -- pickled weights -----------------------------------------------------------


class _Touch:
    """Unpickling this creates ``marker``: the code a hostile pickle would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _hostile_pth(path: Path, marker: Path) -> Path:
    torch.save({"features.0.weight": torch.zeros(1), "payload": _Touch(marker)}, path)
    # the pickle really runs code when unpickled without weights_only (then undo it)
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache; nothing is downloaded (a download is a test failure)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def no_network(*args: object, **kwargs: object) -> None:
        pytest.fail("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub" / "checkpoints"


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_a_planted_imagenet_file_is_refused_by_its_hash_before_it_is_read(hub: Path, tmp_path: Path, caplog):
    marker = tmp_path / "marker"
    planted = vgg.imagenet_cached_file("vgg19")
    assert planted.parent == hub and planted.name == "vgg19-dcbb9e9d.pth"
    hub.mkdir(parents=True)
    _hostile_pth(planted, marker)
    with pytest.raises(NodeError) as info:
        vgg.load_vgg("vgg19", "imagenet")
    message = _one_line(info)
    assert str(planted) in message and "delete it" in message and "dcbb9e9d" in message
    assert not marker.exists()
    # 'auto' does not pick it (and says why)
    with caplog.at_level(logging.WARNING, "artgraph.nodes.vgg"):
        assert not vgg.imagenet_available("vgg19")
    assert "not the published one" in caplog.text
    assert not marker.exists()


def _as_published(file: Path, hub: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``file`` the cached ImageNet vgg19 file of a torchvision whose URL names its hash."""
    name = f"vgg19-{_sha256(file)[:8]}.pth"
    url = f"https://download.invalid/models/{name}"
    monkeypatch.setattr(vgg, "_torchvision_weights", lambda arch: types.SimpleNamespace(url=url))
    hub.mkdir(parents=True, exist_ok=True)
    target = hub / name
    file.rename(target)
    assert vgg.imagenet_cached_file("vgg19") == target
    return target


def test_a_hostile_imagenet_file_with_a_matching_hash_is_refused_by_weights_only(hub, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    target = _as_published(_hostile_pth(tmp_path / "evil.pth", marker), hub, monkeypatch)
    assert vgg.imagenet_available("vgg19")  # the hash fits: only reading it can tell
    with pytest.raises(NodeError) as info:
        vgg.load_vgg("vgg19", "imagenet")
    message = _one_line(info)
    assert f"cannot read weights file {target}: not a PyTorch state dict of tensors" in message
    assert "weights_only=True" in message and "never unpickles code" in message
    assert not marker.exists()


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_genuine_imagenet_file_loads_with_weights_only(hub, tmp_path, monkeypatch, zipped: bool):
    source = vgg.load_vgg("vgg19", "random", seed=3)
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision's file holds the classifier too
    torch.save(state, tmp_path / "good.pth", _use_new_zipfile_serialization=zipped)
    _as_published(tmp_path / "good.pth", hub, monkeypatch)
    loaded = vgg.load_vgg("vgg19", "auto")
    assert loaded.weights == "imagenet"
    assert torch.equal(loaded.features[2].weight, source.features[2].weight)


def test_imagenet_weights_are_downloaded_with_their_hash_checked(hub, tmp_path, monkeypatch):
    source = vgg.load_vgg("vgg16", "random", seed=4)
    torch.save({f"features.{k}": v for k, v in source.features.state_dict().items()}, tmp_path / "good.pth")
    good = tmp_path / "good.pth"
    url = f"https://download.invalid/models/vgg16-{_sha256(good)[:8]}.pth"
    monkeypatch.setattr(vgg, "_torchvision_weights", lambda arch: types.SimpleNamespace(url=url))
    asked = []

    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        asked.append((url, hash_prefix))
        Path(dst).write_bytes(good.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    loaded = vgg.load_vgg("vgg16", "imagenet")
    assert asked == [(url, _sha256(good)[:8])]
    assert torch.equal(loaded.features[0].weight, source.features[0].weight)
    assert vgg.imagenet_cached_file("vgg16").is_file()
    vgg.load_vgg("vgg16", "imagenet")  # from the cache now
    assert len(asked) == 1


@pytest.mark.parametrize("kind", ["hostile", "garbage", "list", "not-tensors", "truncated"])
def test_a_weights_file_that_is_not_a_state_dict_is_one_clear_line(tmp_path: Path, kind: str):
    marker = tmp_path / "marker"
    path = tmp_path / "weights.pth"
    if kind == "hostile":
        _hostile_pth(path, marker)
    elif kind == "garbage":
        path.write_bytes(b"\x00garbage bytes" * 10)
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "not-tensors":
        torch.save({"0.weight": 1.5}, path)
    else:
        torch.save({"0.weight": torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(NodeError) as info:
        vgg.load_vgg("vgg16", str(path))
    message = _one_line(info)
    assert message.startswith(f"cannot read weights file {path}: not a PyTorch state dict of tensors (")
    assert "weights_only=False" not in message
    if kind == "hostile":
        assert "could run code" in message
    assert not marker.exists()


def test_a_broken_safetensors_weights_file_is_one_clear_line(tmp_path: Path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(NodeError, match=r"cannot read weights file .*not a safetensors file") as info:
        vgg.load_vgg("vgg16", str(path))
    _one_line(info)


# -- generator files that describe a huge model ---------------------------------------------


def _gan_file(path: Path, config: dict[str, object], fmt: str = gan.FORMAT, layers: int = 1) -> Path:
    """A tiny file (1-element tensors named as an mlp's ``layers`` layers) whose config says
    whatever it likes."""
    tensors = {f"G.net.{2 * i}.{w}": torch.zeros(1) for i in range(layers) for w in ("weight", "bias")}
    write_safetensors(path, tensors, {"format": fmt, "config": {"format": gan.FORMAT, **config}})
    return path


HUGE_MLP = {"arch": "mlp", "z_dim": 100, "channels": 1, "size": 28, "hidden": [25000, 25000]}


@pytest.fixture
def meta_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a Generator anywhere but on the meta device fails the test."""
    real_init = gan.Generator.__init__

    def init(self, config):
        if torch.get_default_device().type != "meta":
            pytest.fail("a Generator was built for real from a file that should have been refused")
        real_init(self, config)

    monkeypatch.setattr(gan.Generator, "__init__", init)


def test_a_config_beyond_gan_trains_bounds_is_refused_before_anything_is_built(tmp_path, meta_only):
    path = _gan_file(tmp_path / "huge.safetensors", HUGE_MLP)
    with pytest.raises(NodeError) as info:
        gan.load(make_ctx(), str(path))
    message = _one_line(info)
    assert "not one gan.train makes" in message and "'hidden[0]': 25000 is above the maximum 4096" in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"z_dim": 0}, "'z_dim': 0 is below the minimum 1"),
        ({"z_dim": "100"}, "'z_dim': expected a whole number"),
        ({"size": 100_000}, "'size': 100000 is above the maximum 1024"),
        ({"channels": 7}, "'channels': 7 is not one of [1, 3, 4]"),
        ({"hidden": "big"}, "'hidden': expected a list of layer widths"),
        ({"hidden": [64, True]}, "'hidden[1]': expected a whole number"),
        ({"normalisation": {"mean": 0.5, "std": 0}}, "'normalisation'"),
        ({"step": -1}, "'step'"),
        ({"arch": "dcgan", "width": 10**9, "blocks": 1}, "'width': 1000000000 is above the maximum 4096"),
        ({"arch": "dcgan", "width": 8, "blocks": 1000}, "'blocks': 1000 is above the maximum 16"),
    ],
)
def test_each_config_value_is_held_to_the_train_params_bounds(tmp_path, meta_only, change, words):
    path = _gan_file(tmp_path / "g.safetensors", {**HUGE_MLP, "hidden": [64], **change})
    with pytest.raises(NodeError) as info:
        gan.load(make_ctx(), str(path))
    assert words in _one_line(info)


def test_the_bounds_are_read_from_the_train_params(monkeypatch):
    params = spec_of(gan.train).params
    config = {**HUGE_MLP, "hidden": [64]}
    assert gan.config_problems({**config, "z_dim": int(params["z_dim"].max)}) == []
    assert gan.config_problems({**config, "z_dim": int(params["z_dim"].max) + 1})
    monkeypatch.setitem(params, "width", dataclasses.replace(params["width"], max=32))
    assert gan.config_problems(config) == ["'hidden[0]': 64 is above the maximum 32"]


def test_shapes_are_compared_on_the_meta_device(tmp_path, meta_only):
    path = _gan_file(tmp_path / "big.safetensors", {**HUGE_MLP, "hidden": [4000, 4000]}, layers=3)
    with pytest.raises(NodeError) as info:
        gan.load(make_ctx(), str(path))
    message = _one_line(info)
    assert "does not match the weights" in message
    assert "'net.0.weight' has shape [1], the config needs [4000, 100]" in message


def test_an_mlp_with_more_layers_than_the_file_has_tensors_is_refused_unbuilt(tmp_path, meta_only):
    path = _gan_file(tmp_path / "deep.safetensors", {**HUGE_MLP, "hidden": [8] * 100_000})
    with pytest.raises(NodeError, match="it has 100001 layers, the file holds 2 tensors"):
        gan.load(make_ctx(), str(path))


def test_a_model_over_the_parameter_limit_is_refused_unbuilt(tmp_path, meta_only):
    # every value within gan.train's bounds, but 3 × 1024² outputs from 4,096 units: 12.9 G parameters
    config = {**HUGE_MLP, "channels": 3, "size": 1024, "hidden": [4096]}
    path = _gan_file(tmp_path / "wide.safetensors", config, layers=2)
    with pytest.raises(NodeError) as info:
        gan.load(make_ctx(), str(path))
    message = _one_line(info)
    assert "a generator of 12,888,461,312 parameters" in message
    assert f"over the limit of {limits.MODEL_PARAMETERS.value:,}" in message
    assert limits.MODEL_PARAMETERS.env in message


def test_the_parameter_limit_has_an_override(tmp_path, monkeypatch):
    generator, _ = gan.train(make_ctx(), _blobs(), steps=1, batch_size=4, width=4)
    gan.save(make_ctx(), generator, str(tmp_path / "g.safetensors"))
    count = gan.parameter_count(generator)
    monkeypatch.setenv(limits.MODEL_PARAMETERS.env, str(count - 1))
    with pytest.raises(NodeError, match=f"generator of {count:,} parameters, over the limit of {count - 1:,}"):
        gan.load(make_ctx(), str(tmp_path / "g.safetensors"))
    with pytest.raises(NodeError, match=r"would hold .* parameters, over the limit"):
        gan.train(make_ctx(), _blobs(), steps=1, batch_size=4, width=4)
    monkeypatch.setenv(limits.MODEL_PARAMETERS.env, str(count))
    assert gan.load(make_ctx(), str(tmp_path / "g.safetensors")).config == generator.config


def _blobs(n: int = 8, size: int = 16) -> datasets.ImageSet:
    images = torch.zeros(n, 1, size, size)
    for i in range(n):
        images[i, :, i : i + 4, i : i + 4] = 1.0
    return datasets.ImageSet(images, None, "blobs")


def test_the_tiny_huge_file_costs_no_memory(tmp_path: Path):
    """In a fresh process, refusing the 25,000-wide config (which would take ~2.5 GB per
    layer) and a within-bounds one (4,000 wide) raises the peak memory by under 200 MB."""
    huge = _gan_file(tmp_path / "huge.safetensors", HUGE_MLP)
    assert huge.stat().st_size < 1000
    big = _gan_file(tmp_path / "big.safetensors", {**HUGE_MLP, "hidden": [4000, 4000, 4000]}, layers=4)
    script = textwrap.dedent(
        f"""
        import resource, time
        from artgraph import Context, NodeError
        from artgraph.nodes import gan
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        for path in ({str(huge)!r}, {str(big)!r}):
            try:
                gan.load(Context("t", "gan", device="cpu"), path)
            except NodeError:
                pass
            else:
                raise SystemExit("loaded " + path)
        took = time.perf_counter() - start
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, took)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    grown_mb, took = out.stdout.split()
    assert int(grown_mb) < 200 and float(took) < 10


def test_a_checkpoint_with_a_huge_config_is_refused_before_resuming(tmp_path, meta_only):
    path = _gan_file(tmp_path / "ckpt.safetensors", HUGE_MLP, fmt=gan.CHECKPOINT_FORMAT)
    with pytest.raises(NodeError, match=r"'hidden\[0\]': 25000 is above the maximum 4096") as info:
        gan.train(make_ctx(), _blobs(size=28), arch="mlp", steps=2, batch_size=4, resume=str(path))
    _one_line(info)


def test_a_checkpoint_whose_other_tensors_do_not_fit_is_one_clear_line(tmp_path: Path):
    kw = {"steps": 2, "batch_size": 4, "width": 4, "checkpoint_every": 2}
    gan.train(make_ctx(), _blobs(), checkpoint=str(tmp_path / "c.safetensors"), **kw)
    tensors, meta = read_safetensors(str(tmp_path / "c.safetensors"))
    for name, change in [
        ("D", lambda t: {**t, "D.net.0.bias": torch.zeros(3)}),
        ("E", lambda t: {**t, "E.net.0.weight": torch.zeros(2)}),
        ("opt", lambda t: {**t, "optG.0.exp_avg": torch.zeros(5)}),
        ("opt-index", lambda t: {**t, "optD.999.exp_avg": torch.zeros(1)}),
    ]:
        bad = tmp_path / f"{name}.safetensors"
        write_safetensors(bad, change(tensors), meta)
        with pytest.raises(NodeError, match="does not match") as info:
            gan.train(make_ctx(), _blobs(), resume=str(bad), **{**kw, "steps": 4, "checkpoint_every": 0})
        _one_line(info)


def test_metadata_nested_too_deep_is_refused(tmp_path: Path):
    path = tmp_path / "deep.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(path), metadata={"config": "[" * 100_000 + "]" * 100_000})
    with pytest.raises(NodeError, match="metadata is not valid JSON"):
        gan.load(make_ctx(), str(path))


def test_a_file_claiming_a_huge_header_is_refused_before_it_is_parsed(tmp_path: Path, monkeypatch):
    path = tmp_path / "g.safetensors"
    write_safetensors(path, {"w": torch.zeros(1)}, {"config": {"arch": "mlp"}})
    data = bytearray(path.read_bytes())
    data[:8] = (2**40).to_bytes(8, "little")  # a terabyte of header, in a file of a few hundred bytes
    path.write_bytes(bytes(data))
    with pytest.raises(NodeError, match="claims a header longer than the file"):
        read_safetensors(str(path))
    honest = tmp_path / "h.safetensors"
    write_safetensors(honest, {"w": torch.zeros(1)}, {"note": "x" * 2000})
    monkeypatch.setenv("ARTGRAPH_MAX_HEADER_BYTES", "1000")
    with pytest.raises(NodeError, match=r"claims a header of [0-9,]+ bytes; set ARTGRAPH_MAX_HEADER_BYTES"):
        read_safetensors(str(honest))
    monkeypatch.setenv("ARTGRAPH_MAX_HEADER_BYTES", "100000")
    assert read_safetensors(str(honest))[1] == {"note": "x" * 2000}


# -- images that claim a huge size ----------------------------------------------------------


def _claiming_png(path: Path, width: int, height: int, text: dict[str, str] | None = None) -> Path:
    """A valid 1×1 PNG whose header then claims ``width`` × ``height`` (CRC fixed): a few
    hundred bytes, nothing large allocated."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value, zip=True)
    PILImage.new("RGB", (1, 1), (10, 20, 30)).save(path, pnginfo=info)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    with PngImagePlugin.PngImageFile(path) as img:  # a valid header (CRC checked), with PIL's size check skipped
        assert img.size == (width, height)
    return path


def test_image_load_refuses_an_image_claiming_a_huge_size(tmp_path: Path):
    path = _claiming_png(tmp_path / "huge.png", 20_000, 20_000)
    with pytest.raises(NodeError) as info:
        image.load(make_ctx(), str(path), None, "RGB")
    message = _one_line(info)
    assert "20,000×20,000 = 400,000,000 pixels" in message and str(path) in message
    assert limits.IMAGE_PIXELS.how_to_raise() in message


def test_image_load_refuses_sizes_between_our_limit_and_pils(tmp_path: Path):
    """8,500² = 72 M pixels: over our 64 Mi, under PIL's own threshold (89 M)."""
    path = _claiming_png(tmp_path / "big.png", 8_500, 8_500)
    with pytest.raises(ImageTooLarge, match="8,500×8,500"):
        image.load(make_ctx(), str(path), None, "RGB")


def test_pils_own_bomb_check_does_not_fire_under_our_limit(tmp_path: Path, monkeypatch):
    """With PIL's threshold far below ours, an image within ours still loads, and PIL's
    setting is left as it was."""
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)
    PILImage.new("RGB", (300, 2), (255, 0, 0)).save(tmp_path / "wide.png")  # 600 > 2 × 100
    loaded = image.load(make_ctx(), str(tmp_path / "wide.png"), None, "RGB")
    assert loaded.shape == (1, 3, 2, 300)
    assert PILImage.MAX_IMAGE_PIXELS == 100


def test_the_image_limit_has_an_override(tmp_path: Path, monkeypatch):
    PILImage.new("RGB", (30, 20)).save(tmp_path / "small.png")
    monkeypatch.setenv(limits.IMAGE_PIXELS.env, "599")
    with pytest.raises(ImageTooLarge, match=r"30×20 = 600 pixels.*ARTGRAPH_MAX_IMAGE_PIXELS"):
        image.load(make_ctx(), str(tmp_path / "small.png"), None, "RGB")
    monkeypatch.setenv(limits.IMAGE_PIXELS.env, "600")
    assert image.load(make_ctx(), str(tmp_path / "small.png"), None, "RGB").shape == (1, 3, 20, 30)


@pytest.mark.parametrize(("side", "pixels"), [(20_000, "400,000,000"), (9_000, "81,000,000")])
def test_pils_bomb_error_and_warning_inside_a_read_become_the_same_clear_error(tmp_path, side, pixels):
    """A part of a file larger than the image (here a crop, which PIL checks too) makes PIL
    raise (over twice the limit) or warn (over it): both are refused alike."""
    PILImage.new("RGB", (8, 8)).save(tmp_path / "small.png")
    with pytest.raises(ImageTooLarge, match=f"claims a part of {pixels} pixels"):
        with open_image(tmp_path / "small.png") as img:
            img.crop((0, 0, side, side))


def test_data_images_skips_an_image_claiming_a_huge_size(tmp_path: Path, caplog):
    folder = tmp_path / "imgs"
    folder.mkdir()
    PILImage.new("RGB", (12, 12), (200, 0, 0)).save(folder / "fine.png")
    _claiming_png(folder / "huge.png", 20_000, 20_000)
    with caplog.at_level(logging.WARNING):
        ds = datasets.images(make_ctx(), str(folder), 8, "RGB", False)
    assert len(ds) == 1
    assert "skipped 1 unreadable file(s)" in caplog.text and "20,000×20,000" in caplog.text
    (folder / "fine.png").unlink()
    with pytest.raises(NodeError) as info:
        datasets.images(make_ctx(), str(folder), 8, "RGB", False)
    message = _one_line(info)
    assert "none of the 1 files" in message and "20,000×20,000" in message and limits.IMAGE_PIXELS.env in message


def test_run_from_reads_the_graph_of_a_large_png_without_decoding_it(tmp_path: Path):
    """8,192² is exactly the limit: the graph is read from the header chunks; decoding the
    (one pixel of) data would fail, so reading it proves nothing was decoded."""
    text = {GRAPH_KEY: "artgraph: 1\nnodes: {}\n", "artgraph:base_dir": "/somewhere"}
    path = _claiming_png(tmp_path / "large.png", 8_192, 8_192, text)
    with PILImage.open(path) as img, pytest.raises(OSError):
        img.load()
    found = read_png_provenance(path)
    assert found is not None and found.graph_yaml == text[GRAPH_KEY] and found.base_dir == "/somewhere"


def test_run_from_refuses_a_png_claiming_more_than_the_limit(tmp_path: Path):
    path = _claiming_png(tmp_path / "huge.png", 20_000, 20_000, {GRAPH_KEY: "artgraph: 1\n"})
    with pytest.raises(ValueError) as info:
        read_png_provenance(path)
    assert isinstance(info.value, ArtgraphError)
    assert "20,000×20,000" in _one_line(info) and limits.IMAGE_PIXELS.env in str(info.value)
