"""The foundation nodes, called as plain functions and inside graphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import artgraph
from artgraph import NodeError, load_graph
from artgraph.nodes.data import files as data
from artgraph.nodes.image import basic as image
from artgraph.provenance import GRAPH_KEY, read_png_provenance
from tests.conftest import make_ctx


@pytest.mark.parametrize(("mode", "channels"), [("RGB", 3), ("L", 1), ("RGBA", 4)])
def test_load_modes_give_a_batch_of_one(tiny_png: Path, mode: str, channels: int):
    img = image.load(make_ctx(), path=str(tiny_png), size=None, mode=mode)
    assert img.shape == (1, channels, 8, 12)
    assert img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0


def test_load_resizes_the_long_side(tiny_png: Path):
    assert image.load(make_ctx(), path=str(tiny_png), size=6, mode="RGB").shape == (1, 3, 4, 6)


def test_load_errors_name_the_path(tmp_path: Path):
    with pytest.raises(NodeError, match=r"image file not found: .*nope\.png"):
        image.load(make_ctx(), path=str(tmp_path / "nope.png"), size=None, mode="RGB")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(NodeError, match=r"cannot read image .*bad.png"):
        image.load(make_ctx(), path=str(bad), size=None, mode="RGB")


def test_save_round_trips_pixels_and_writes_batches_as_numbered_files(tmp_path: Path):
    batch = torch.rand(3, 3, 5, 7)
    paths = image.save(make_ctx(), batch, path=str(tmp_path / "x.png"), format=None, quality=95)
    assert [Path(p).name for p in paths] == ["x_0000.png", "x_0001.png", "x_0002.png"]
    back = image.load(make_ctx(), path=paths[1], size=None, mode="RGB")
    assert torch.allclose(back[0], batch[1], atol=1 / 255)
    single = image.save(make_ctx(), batch[:1], path=str(tmp_path / "one.jpg"), format=None, quality=90)
    assert [Path(p).name for p in single] == ["one.jpg"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch):
    target = tmp_path / "keep.png"
    target.write_bytes(b"previous result")

    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        image.save(make_ctx(), torch.rand(1, 3, 4, 4), path=str(target), format=None, quality=95)
    assert target.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_saved_png_carries_the_graph(tmp_path: Path, tiny_png: Path):
    spec = {
        "artgraph": 1,
        "nodes": {
            "img": {"type": "image.load", "params": {"path": "tiny.png"}},
            "save": {"type": "image.save", "inputs": {"image": "img"}, "params": {"path": "o.png"}},
        },
    }
    result = load_graph(spec, base_dir=tmp_path).run(device="cpu", cache=False, out_dir=tmp_path / "out")
    found = read_png_provenance(result["save.paths"][0])
    assert found is not None
    assert "image.load" in found.graph_yaml and found.base_dir == str(tmp_path)
    with PILImage.open(result["save.paths"][0]) as img:
        assert GRAPH_KEY in img.text


@pytest.mark.parametrize(
    ("kw", "shape"),
    [
        ({"size": 6, "width": None, "height": None}, (6, 3)),
        ({"size": None, "width": 10, "height": None}, (10, 5)),
        ({"size": None, "width": None, "height": 2}, (4, 2)),
        ({"size": None, "width": 3, "height": 9}, (3, 9)),
    ],
)
def test_resize_variants(kw, shape):
    out = image.resize(torch.rand(2, 3, 8, 16), mode="bicubic", **kw)
    assert out.shape == (2, 3, shape[1], shape[0])
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_resize_needs_a_size():
    declared = artgraph.spec_of(image.resize).check
    assert declared is not None
    assert list(declared({"size": None, "width": None, "height": None})) == [
        "give 'size' (long side) or 'width' and/or 'height'"
    ]
    assert list(declared({"size": 4, "width": None, "height": None})) == []


def test_grid_centres_smaller_images_and_flattens_batches():
    big = torch.zeros(1, 3, 4, 6)
    small = torch.ones(2, 1, 2, 2)  # a batch of two grayscale images
    out = image.grid([big, small], columns=3, padding=1, background=0.5)
    assert out.shape == (1, 3, 4 + 2, 3 * 6 + 4)
    cell = out[0, :, 1:5, 8:14]  # second cell
    assert torch.all(cell[:, 1:3, 2:4] == 1.0)  # the 2x2 image is centred
    assert torch.all(cell[:, 0, :] == 0.5)  # background around it
    assert torch.all(out[0, :, 0, :] == 0.5)


def test_grid_default_columns_are_near_square():
    out = image.grid([torch.zeros(5, 3, 2, 2)], columns=None, padding=0, background=0.0)
    assert out.shape == (1, 3, 4, 6)


def test_data_save_json_npy_safetensors(tmp_path: Path):
    history = {"loss": [3.0, 2.0], "step": [1, 2]}
    data.save(history, path=str(tmp_path / "h.json"))
    assert json.loads((tmp_path / "h.json").read_text()) == history
    tensor = torch.arange(6.0).reshape(2, 3)
    data.save(tensor, path=str(tmp_path / "t.npy"))
    assert np.array_equal(np.load(tmp_path / "t.npy"), tensor.numpy())
    data.save(tensor, path=str(tmp_path / "t.safetensors"))
    from safetensors.torch import load_file

    assert torch.equal(load_file(tmp_path / "t.safetensors")["value"], tensor)
    with pytest.raises(NodeError, match="hold tensors"):
        data.save([1, 2], path=str(tmp_path / "x.npy"))


def test_contact_sheet_graph_runs(tmp_path: Path):
    result = load_graph("contact_sheet").run(device="cpu", cache=False, out_dir=tmp_path)
    (path,) = result["save.paths"]
    with PILImage.open(path) as img:
        assert img.size == (3 * 192 + 4 * 4, 192 + 2 * 4)
