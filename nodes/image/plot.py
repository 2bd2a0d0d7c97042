"""Plots of run histories (loss curves, fitness per generation) as images.

Nodes that iterate (``optimize.image``, ``gan.train``, the evolutionary and ant
colony nodes) report a ``history``: a dict of equal-length lists, one entry per
step. ``history.plot`` turns it into an ordinary Image, so a graph can save the
curve next to the picture, put it in an ``image.grid``, or compare runs, with no
notebook in between.

matplotlib is imported inside the node, not here: importing the node library
must stay fast (``artgraph --help`` imports it) and most graphs never plot.
Rendering uses ``Figure`` + ``FigureCanvasAgg`` directly, never pyplot: pyplot
keeps global figure state and picks a GUI backend, neither of which belongs in a
headless, possibly threaded, graph run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from artgraph import Context, Dict, Image, Input, Int, List, NodeError, Param, Str, node

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Keys that hold the x axis, in order of preference; the first present wins.
X_KEYS = ("step", "generation", "iteration", "epoch")

#: auto log scale: the largest positive value must exceed the smallest by more than this factor.
LOG_SPAN = 100.0

#: Below these sizes (pixels) there is no room for constrained layout's margins:
#: it gives up with a warning, so small plots use fixed margins instead.
_COMPACT_WIDTH = 120
_COMPACT_HEIGHT = 100
_DPI = 100


def choose_log_scale(values: Iterable[float], mode: str = "auto") -> bool:
    """Whether to draw the y axis on a log scale.

    ``"on"``/``"off"`` force it. ``"auto"`` picks log when every finite value is
    positive and they span more than two decades: losses that fall from 1e4 to
    1e-1 are a flat line after the first steps on a linear axis. Non-finite
    values are ignored, as the plot ignores them.
    """
    if mode == "on":
        return True
    if mode == "off":
        return False
    if mode != "auto":
        raise ValueError(f"log scale mode must be 'auto', 'on' or 'off', not {mode!r}")
    finite = [v for v in values if math.isfinite(v)]
    if not finite or min(finite) <= 0:
        return False
    return max(finite) / min(finite) > LOG_SPAN


def numeric_series(value: object) -> list[float] | None:
    """A history entry as a list of floats, or None when it is not a numeric series.

    Accepts lists/tuples of numbers (plain, numpy or 0-d tensors) and 1-D
    tensors or arrays, the forms nodes record. Booleans and text are not numbers
    here: a flag column is no curve.
    """
    if isinstance(value, torch.Tensor):
        if value.ndim != 1 or value.is_complex() or value.dtype == torch.bool:
            return None
        return value.detach().to("cpu", torch.float64).tolist()
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "iuf":
            return None
        return value.astype(np.float64).tolist()
    if not isinstance(value, (list, tuple)):
        return None
    out = []
    for item in value:
        if isinstance(item, (bool, np.bool_)):
            return None
        if isinstance(item, (int, float, np.integer, np.floating)):
            out.append(float(item))
        elif isinstance(item, torch.Tensor) and item.ndim == 0 and item.dtype != torch.bool:
            out.append(float(item))
        else:
            return None
    return out


def pick_x_key(history: Mapping[str, object]) -> str | None:
    """The key of the x axis: the first of :data:`X_KEYS` holding a numeric series, else None (the index)."""
    for key in X_KEYS:
        if key in history and numeric_series(history[key]) is not None:
            return key
    return None


def select_series(
    history: Mapping[str, object], keys: Sequence[str] | None, ctx: Context | None = None
) -> tuple[str | None, list[float], dict[str, list[float]]]:
    """The x axis key (None: the index), its values and the series to plot, checked.

    Raises :class:`NodeError` with the fix for a history without numbers, a
    requested key that is missing or not numeric, and series whose lengths differ.
    With the default keys, a series whose length differs from the x axis's is left
    out with a warning instead: ``optimize.image`` records ``stopped_at`` (one value)
    when the loss diverges, and that is exactly the run one wants to look at.
    """
    if not isinstance(history, Mapping):
        raise NodeError(f"'history' must be a dict of lists, got {type(history).__name__}")
    numeric = {str(k): s for k, v in history.items() if (s := numeric_series(v)) is not None}
    x_key = pick_x_key(history)
    if keys is not None:
        if not keys:
            raise NodeError("'keys' is empty; leave it out to plot every numeric series")
        for key in keys:
            if key not in history:
                raise NodeError(f"the history has no '{key}'; its keys are: {_names(history)}")
            if key not in numeric:
                plottable = _names(numeric) or "none"
                raise NodeError(f"the history's '{key}' is not a list of numbers; numeric keys: {plottable}")
        chosen = {key: numeric[key] for key in dict.fromkeys(keys)}
    else:
        chosen = {k: s for k, s in numeric.items() if k != x_key}
        if not chosen:
            raise NodeError(
                f"the history has no numeric series to plot besides the x axis (keys: {_names(history) or 'none'}); "
                "wire a node's 'history' output, a dict of lists of numbers"
            )
        if x_key is not None:
            length = len(numeric[x_key])
            skipped = [k for k, s in chosen.items() if len(s) != length]
            if skipped and len(skipped) < len(chosen):
                if ctx is not None:
                    ctx.log.warning(
                        "left out %s: not one value per %s (set 'keys' to choose series)", ", ".join(skipped), x_key
                    )
                chosen = {k: s for k, s in chosen.items() if k not in skipped}
    lengths = {k: len(s) for k, s in chosen.items()}
    if x_key is not None:
        lengths = {x_key: len(numeric[x_key]), **lengths}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise NodeError(
            f"the history's series have different lengths ({shown}); choose series of equal length with 'keys'"
        )
    if not any(lengths.values()):
        raise NodeError("the history is empty: its series have no values yet")
    n = next(iter(lengths.values()))
    x = numeric[x_key] if x_key is not None else [float(i) for i in range(n)]
    return x_key, x, chosen


def _names(keys: Iterable[object]) -> str:
    return ", ".join(str(k) for k in keys)


def render(
    x_label: str,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    width: int,
    height: int,
    log_scale: str,
) -> np.ndarray:
    """Draw the series against ``x``; an RGB uint8 array of exactly [height, width, 3].

    Non-finite points are dropped (a diverged step must not wipe out the plot).
    Fonts scale with the smaller side so that a 200 px thumbnail and a 2000 px
    poster both stay legible.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.ticker import MaxNLocator

    compact = width < _COMPACT_WIDTH or height < _COMPACT_HEIGHT
    layout = None if compact else ConstrainedLayoutEngine(w_pad=4 / _DPI, h_pad=4 / _DPI)
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, layout=layout)
    if compact:
        fig.subplots_adjust(left=0.2, right=0.96, bottom=0.15, top=0.86 if title else 0.95)
    font = float(np.clip(min(width, height) / 32, 4, 12))
    ax: Axes = fig.add_subplot()
    xs = np.asarray(x, dtype=np.float64)
    finite_y: list[float] = []
    for name, values in series.items():
        ys = np.asarray(values, dtype=np.float64)
        keep = np.isfinite(xs) & np.isfinite(ys)
        finite_y.extend(ys[keep].tolist())
        # A lone point has no line to draw; a marker keeps it visible.
        ax.plot(xs[keep], ys[keep], label=name, marker="o" if keep.sum() == 1 else None, markersize=font / 2)
    finite_x = xs[np.isfinite(xs)]
    if finite_x.size and np.all(finite_x == np.round(finite_x)):
        # Steps and generations are counts: no tick at generation 1.25.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if choose_log_scale(finite_y, log_scale):
        ax.set_yscale("log")
    ax.set_xlabel(x_label, fontsize=font)
    ax.set_ylabel(next(iter(series)) if len(series) == 1 else "value", fontsize=font)
    ax.tick_params(labelsize=font * 0.9)
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=font * 1.15)
    if len(series) > 1:
        ax.legend(fontsize=font * 0.9)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if rgba.shape[:2] != (height, width):  # matplotlib rounds the figure size; never observed, but say so if it does
        raise RuntimeError(f"matplotlib drew {rgba.shape[1]}x{rgba.shape[0]} pixels, not {width}x{height}")
    return rgba[:, :, :3].copy()


def _check(params: Mapping[str, object]) -> list[str]:
    keys = params.get("keys")
    if keys is not None and not keys:
        return ["'keys' is empty; leave it out to plot every numeric series"]
    return []


@node(
    "history.plot",
    category="image",
    inputs={"history": Input(Dict, description="a node's history: a dict of equal-length lists of numbers")},
    params={
        "title": Param(Str, "", description="title above the plot; empty: none"),
        "width": Param(Int, 640, min=64, max=8192, description="image width in pixels"),
        "height": Param(Int, 400, min=64, max=8192, description="image height in pixels"),
        "log_scale": Param(
            Str,
            "auto",
            choices=("auto", "on", "off"),
            description="log y axis; auto: when all values are positive and span more than two decades",
        ),
        "keys": Param(List(Str), None, description="series to plot; default: every numeric series but the x axis"),
    },
    outputs={"image": Image},
    check=_check,
)
def plot_history(
    ctx: Context,
    history: dict[str, object],
    title: str,
    width: int,
    height: int,
    log_scale: str,
    keys: list[str] | None,
) -> torch.Tensor:
    """Plot a history (losses, fitness) as an image [1,3,height,width].

    The x axis is the first of step, generation, iteration, epoch in the history,
    else the index; NaN and inf points are left out.
    """
    x_key, x, series = select_series(history, keys, ctx)
    rgb = render(x_key or "index", x, series, title=title, width=width, height=height, log_scale=log_scale)
    image = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)
    return image.contiguous().to(ctx.device)
