"""history.plot: histories become images of exactly the asked size, and bad histories say what to do.

Plots are kept small (renders cost ~0.1 s each) except where the size itself is tested.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from artgraph import GraphError, NodeError, load_graph
from artgraph.nodes.image import plot
from tests.conftest import make_ctx

LOSSES = {
    "step": [1, 2, 3, 4, 5, 6],
    "total": [9.0, 7.0, 4.0, 3.0, 2.5, 2.0],
    "content": [5.0, 4.0, 2.0, 1.5, 1.2, 1.0],
}


def draw(history: dict, *, width: int = 160, height: int = 120, log_scale: str = "auto", **kw) -> torch.Tensor:
    params = {"title": "", "keys": None, **kw}
    return plot.plot_history(make_ctx(), history, width=width, height=height, log_scale=log_scale, **params)


@pytest.mark.parametrize(("width", "height"), [(64, 64), (203, 117), (640, 400)])
def test_output_is_exactly_the_asked_size(width: int, height: int):
    image = draw(LOSSES, width=width, height=height, title="losses")
    assert image.shape == (1, 3, height, width)
    assert image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image.min()) < 0.5 < float(image.max())  # something was drawn on the white background


def test_default_size_is_640_by_400():
    spec = plot.plot_history.__artgraph_node__  # type: ignore[attr-defined]
    assert (spec.params["width"].default, spec.params["height"].default) == (640, 400)
    assert spec.category == "image"


def test_different_histories_give_different_images():
    falling = draw({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.0]})
    rising = draw({"step": [1, 2, 3], "loss": [1.0, 2.0, 3.0]})
    assert not torch.equal(falling, rising)
    assert torch.equal(falling, draw({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.0]}))  # and the same one the same
    assert not torch.equal(falling, draw({"step": [1, 2, 3], "loss": [3.0, 2.0, 1.0]}, title="loss"))


@pytest.mark.parametrize(
    ("values", "mode", "expected"),
    [
        ([1e4, 1e2, 1.0], "auto", True),  # four decades, all positive
        ([150.0, 1.0], "auto", True),
        ([100.0, 1.0], "auto", False),  # exactly two decades is not more than two
        ([5.0, 4.0, 1.0], "auto", False),
        ([1e4, 0.0, 1.0], "auto", False),  # zero has no logarithm
        ([1e4, -1.0], "auto", False),
        ([1e4, float("nan"), 1.0, float("inf")], "auto", True),  # non-finite values are ignored
        ([], "auto", False),
        ([5.0, 4.0], "on", True),
        ([1e4, 1.0], "off", False),
    ],
)
def test_choose_log_scale(values: list[float], mode: str, expected: bool):
    assert plot.choose_log_scale(values, mode) is expected


def test_choose_log_scale_refuses_unknown_modes():
    with pytest.raises(ValueError, match="'auto', 'on' or 'off'"):
        plot.choose_log_scale([1.0], "maybe")


def test_log_scale_switches_the_image():
    wide = {"step": [1, 2, 3, 4], "loss": [1e4, 1e2, 1.0, 0.1]}
    auto = draw(wide)
    assert torch.equal(auto, draw(wide, log_scale="on"))
    assert not torch.equal(auto, draw(wide, log_scale="off"))
    narrow = {"step": [1, 2, 3, 4], "loss": [4.0, 3.0, 2.0, 1.0]}
    assert torch.equal(draw(narrow), draw(narrow, log_scale="off"))


@pytest.mark.parametrize(
    ("history", "x_key", "series"),
    [
        (
            {"step": [1, 2], "total": [2.0, 1.0], "content": [1.0, 0.5], "style": [1.0, 0.5]},
            "step",
            ["total", "content", "style"],
        ),
        ({"step": [1.0, 2.0], "d_loss": [0.7, 0.6], "g_loss": [0.7, 0.8]}, "step", ["d_loss", "g_loss"]),
        ({"best": [3.0, 2.0], "generation": [0, 1], "mean": [4.0, 3.0]}, "generation", ["best", "mean"]),
        ({"iteration": [0, 1], "best": [3.0, 2.0], "mean": [4.0, 3.0]}, "iteration", ["best", "mean"]),
        ({"epoch": [0, 1], "step": [10, 20], "loss": [1.0, 0.5]}, "step", ["epoch", "loss"]),  # step wins
        ({"loss": [1.0, 0.5], "lr": [0.1, 0.1]}, None, ["loss", "lr"]),  # no x key: the index
        ({"step": ["a", "b"], "epoch": [0, 1], "loss": [1.0, 0.5]}, "epoch", ["loss"]),  # text is no axis
    ],
)
def test_x_axis_key_picking(history: dict, x_key: str | None, series: list[str]):
    assert plot.pick_x_key(history) == x_key
    got_key, x, chosen = plot.select_series(history, None)
    assert got_key == x_key
    assert list(chosen) == series
    assert x == ([float(v) for v in history[x_key]] if x_key else [0.0, 1.0])


def test_the_x_axis_is_used_for_drawing():
    loss = [3.0, 2.0, 1.0]
    by_step = draw({"step": [0, 1, 2], "loss": loss})
    assert not torch.equal(by_step, draw({"step": [0, 10, 200], "loss": loss}))
    # With both, step is the axis and epoch just another series (left out here by 'keys').
    assert torch.equal(by_step, draw({"epoch": [0, 10, 200], "step": [0, 1, 2], "loss": loss}, keys=["loss"]))


def test_nan_and_inf_points_are_left_out():
    ragged = draw({"step": [1, 2, 3, 4, 5], "loss": [float("nan"), 4.0, 2.0, float("inf"), 1.0]})
    clean = draw({"step": [2, 3, 5], "loss": [4.0, 2.0, 1.0]})
    assert torch.equal(ragged, clean)
    # A series with no finite value at all, beside a good one, still plots (the good one).
    image = draw({"step": [1, 2], "a": [float("nan"), float("nan")], "b": [2.0, 1.0]})
    assert image.shape == (1, 3, 120, 160)


def test_tensor_series_plot_like_lists():
    as_lists = draw(LOSSES)
    as_tensors = draw({k: torch.tensor(v, dtype=torch.float64) for k, v in LOSSES.items()})
    scalars = draw({k: [torch.tensor(float(x)) for x in v] for k, v in LOSSES.items()})
    assert torch.equal(as_lists, as_tensors)
    assert torch.equal(as_lists, scalars)


def test_keys_choose_the_series():
    only_total = draw(LOSSES, keys=["total"])
    assert torch.equal(only_total, draw({"step": LOSSES["step"], "total": LOSSES["total"]}))
    assert not torch.equal(only_total, draw(LOSSES))


@pytest.mark.parametrize(
    "history",
    [
        {"step": [1, 2, 3]},  # only the x axis
        {"note": "diverged", "flags": [True, False]},  # text and booleans are no numbers
        {},
    ],
)
def test_a_history_without_numeric_series_is_an_error(history: dict):
    with pytest.raises(NodeError, match=r"no numeric series to plot.*wire a node's 'history' output"):
        draw(history)


def test_a_missing_key_names_the_keys_that_are_there():
    with pytest.raises(NodeError, match=r"has no 'style'; its keys are: step, total, content"):
        draw(LOSSES, keys=["total", "style"])
    with pytest.raises(NodeError, match=r"'note' is not a list of numbers; numeric keys: step, loss"):
        draw({"step": [1, 2], "loss": [2.0, 1.0], "note": "hi"}, keys=["note"])


def test_series_of_unequal_length_are_an_error():
    with pytest.raises(NodeError, match=r"different lengths \(a: 3, b: 2\); choose series of equal length with 'keys'"):
        draw({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})
    with pytest.raises(NodeError, match=r"different lengths \(step: 3, loss: 2\)"):
        draw({"step": [1, 2, 3], "loss": [1.0, 2.0]})


def test_a_stray_marker_series_is_left_out_with_a_warning(caplog: pytest.LogCaptureFixture):
    # optimize.image records stopped_at (one value) when the loss diverges; the curve is what matters then.
    diverged = {**LOSSES, "stopped_at": [7.0]}
    with caplog.at_level(logging.WARNING, logger="artgraph.node"):
        image = draw(diverged)
    assert torch.equal(image, draw(LOSSES))
    assert "left out stopped_at" in caplog.text
    with pytest.raises(NodeError, match="different lengths"):  # asked for by name, it is not left out
        draw(diverged, keys=["total", "stopped_at"])


def test_an_empty_history_is_an_error():
    with pytest.raises(NodeError, match="no values yet"):
        draw({"step": [], "loss": []})


def test_the_image_comes_out_on_the_context_device():
    image = plot.plot_history(make_ctx(device="meta"), LOSSES, "", 64, 64, "auto", None)
    assert image.device.type == "meta"


GRAPH = """\
artgraph: 1
nodes:
  target:
    type: image.load
    params: {path: tiny.png}
  pixel:
    type: objective.pixel
    inputs: {target: target}
  fit:
    type: optimize.image
    inputs: {objective: pixel}
    params: {size: 8, steps: 5, optimizer: adam, lr: 0.1}
  curve:
    type: history.plot
    inputs: {history: fit.history}
    params: {width: 200, height: 150, title: pixel fit, log_scale: "off"}
  save:
    type: image.save
    inputs: {image: curve}
    params: {path: curve.png}
"""


def test_a_graph_plots_a_real_history_and_saves_it(tmp_path: Path, tiny_png: Path):
    graph_file = tmp_path / "plot.yaml"
    graph_file.write_text(GRAPH)
    result = load_graph(graph_file).run(
        device="cpu", cache=False, out_dir=tmp_path / "out", outputs=["save.paths", "curve.image", "fit.history"]
    )
    history = result["fit.history"]
    assert history["step"] == [1, 2, 3, 4, 5] and all(math.isfinite(v) for v in history["total"])
    saved = PILImage.open(result["save.paths"][0])
    assert saved.size == (200, 150) and saved.mode == "RGB"
    pixels = np.asarray(saved)
    plotted = result["curve.image"]
    assert np.array_equal(pixels, (plotted[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    assert pixels.min() < 128  # not a blank page


def test_empty_keys_are_refused_before_running(tmp_path: Path, tiny_png: Path):
    graph_file = tmp_path / "plot.yaml"
    graph_file.write_text(GRAPH.replace('log_scale: "off"}', 'log_scale: "off", keys: []}'))
    with pytest.raises(GraphError, match="'keys' is empty"):
        load_graph(graph_file)
    graph_file.write_text(GRAPH.replace("width: 200", "width: 10"))
    with pytest.raises(GraphError, match="below the minimum 64"):
        load_graph(graph_file)
