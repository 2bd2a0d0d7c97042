"""Genomes: pictures made of shapes, described by parameter vectors in [0, 1].

A genome is the *search space* of the evolutionary nodes. It says how many
numbers describe one picture (``dims``), how to draw a whole population of
them at once (``render``: ``[P, dims]`` → ``[P, 3, H, W]``), and how to vary
them: ``mutate`` (Gaussian noise on some genes), ``crossover`` (children from
two parents) and ``perturb`` (a small move of one shape, for annealing).
Keeping every gene in [0, 1] lets one set of operators serve every shape.

Each shape is a run of genes: its geometry first, then red, green, blue and
opacity. Crossover exchanges whole shapes, never half a triangle: mixing the
corners of two different triangles makes a third that neither parent had.

Two renderers draw the same pictures:

* ``pil`` draws one picture at a time with Pillow's rasteriser (what EvoLisa
  and es-clip do). On a CPU it is the fast one: each shape touches only the
  pixels it covers.
* ``torch`` draws the whole population at once as dense tensors: every shape
  is tested against every pixel. That is wasteful on a CPU (about 60× slower
  than Pillow at 64×64 px with 50 triangles) but it is what a GPU is good at,
  and it keeps the population on the device.

``auto`` picks ``pil`` on the CPU and ``torch`` elsewhere. Both sample pixel
centres and composite shapes in order (later shapes on top) with
``out = under + alpha·(colour − under)``; they differ only along edges and by
Pillow's 8-bit colours.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw

from artgraph import Float, Int, NodeError, Param, PortType, Str, node

from .._colour import colour, parse_colour

#: Shape maths runs on numpy arrays (Pillow path) and tensors (dense path) alike.
Array = TypeVar("Array", np.ndarray, torch.Tensor)
RENDERERS = ("auto", "pil", "torch")
CROSSOVERS = ("uniform", "blend", "one_point")
#: Dense rendering works on chunks of at most this many shape×pixel pairs per population chunk.
_DENSE_BUDGET = 1 << 24
#: Vertices of the polygon that stands for a stroke's ellipse in the Pillow renderer.
_ELLIPSE_VERTICES = 16


class Genome(ABC):
    """``count`` shapes of ``genes`` numbers each, over a plain background."""

    #: The shape's name, for messages and configs.
    kind: str = "shape"
    #: Names of one shape's genes, geometry first, then r, g, b, a.
    gene_names: tuple[str, ...] = ()
    #: Pairs of genes that are a point (x, y) of the picture: a corner, a centre. A mutation
    #: moves both together; evolve.greedy places new points where the picture is most wrong.
    points: tuple[tuple[int, int], ...] = ()

    def __init__(self, count: int, alpha_max: float, background: str, renderer: str) -> None:
        if count < 1:
            raise NodeError(f"a genome needs at least one {self.kind}; set 'count' to 1 or more")
        if renderer not in RENDERERS:
            raise NodeError(f"unknown renderer '{renderer}'; use one of {', '.join(RENDERERS)}")
        self.count = int(count)
        self.alpha_max = float(alpha_max)
        self.background_name = background
        self.background = parse_colour(background)
        self.renderer = renderer

    @property
    def genes(self) -> int:
        return len(self.gene_names)

    @property
    def dims(self) -> int:
        """Numbers in one genome: ``count × genes``."""
        return self.count * self.genes

    def config(self) -> dict[str, object]:
        """Everything that decides what a parameter vector means (stored in checkpoints)."""
        return {
            "kind": self.kind,
            "count": self.count,
            "alpha_max": self.alpha_max,
            "background": self.background_name,
            **self._extra_config(),
        }

    def _extra_config(self) -> dict[str, object]:
        return {}

    def __repr__(self) -> str:
        return f"<Genome {self.count} {self.kind}s, {self.dims} genes>"

    # -- variation ------------------------------------------------------------

    def random(self, population: int, generator: torch.Generator) -> torch.Tensor:
        """``population`` random genomes ``[P, dims]`` (on the CPU, from ``generator``)."""
        return torch.rand(population, self.dims, generator=generator)

    def mutate(self, params: torch.Tensor, rate: float, sigma: float, generator: torch.Generator) -> torch.Tensor:
        """Add N(0, sigma) to each gene with probability ``rate``; keep genes in [0, 1]."""
        hit = torch.rand(params.shape, generator=generator) < rate
        noise = torch.randn(params.shape, generator=generator) * sigma
        return (params + hit * noise).clamp_(0.0, 1.0)

    def crossover(
        self, first: torch.Tensor, second: torch.Tensor, method: str, generator: torch.Generator
    ) -> torch.Tensor:
        """One child per pair of rows of ``first`` and ``second`` (both ``[N, dims]``).

        ``uniform``: each shape from either parent with even odds; ``one_point``: the
        shapes before a random cut from the first parent, the rest from the second;
        ``blend`` (BLX-0.5): each gene drawn between and a little beyond the parents'.
        """
        n = first.shape[0]
        if method == "blend":
            u = torch.rand(first.shape, generator=generator) * 2.0 - 0.5
            return (first + u * (second - first)).clamp_(0.0, 1.0)
        if method == "uniform":
            take_first = torch.rand(n, self.count, generator=generator) < 0.5
        elif method == "one_point":
            cut = torch.randint(1, max(self.count, 2), (n, 1), generator=generator)
            take_first = torch.arange(self.count).unsqueeze(0) < cut
        else:
            raise NodeError(f"unknown crossover '{method}'; use one of {', '.join(CROSSOVERS)}")
        mask = take_first.repeat_interleave(self.genes, dim=1)
        return torch.where(mask, first, second)

    def perturb(self, params: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
        """Move one random shape per row by N(0, sigma) on each of its genes (an annealing step)."""
        n = params.shape[0]
        shape = torch.randint(0, self.count, (n,), generator=generator)
        noise = torch.randn(n, self.genes, generator=generator) * sigma
        out = params.clone().view(n, self.count, self.genes)
        out[torch.arange(n), shape] += noise
        return out.view(n, self.dims).clamp_(0.0, 1.0)

    # -- rendering ------------------------------------------------------------

    def resolve_renderer(self, device: torch.device) -> str:
        if self.renderer != "auto":
            return self.renderer
        return "pil" if device.type == "cpu" else "torch"

    def render(
        self,
        params: torch.Tensor,
        size: tuple[int, int],
        device: torch.device | str = "cpu",
        renderer: str | None = None,
    ) -> torch.Tensor:
        """Draw ``params`` ``[P, dims]`` as images ``[P, 3, H, W]`` in [0, 1] on ``device``.

        ``renderer`` overrides the genome's own (``pil`` or ``torch``)."""
        device = torch.device(device)
        if params.ndim != 2 or params.shape[1] != self.dims:
            raise NodeError(f"expected genomes of shape [P, {self.dims}] for {self}, got {list(params.shape)}")
        height, width = size
        if (renderer or self.resolve_renderer(device)) == "pil":
            return self._render_pil(params, height, width).to(device)
        return self._render_dense(params.to(device), height, width)

    def _render_pil(self, params: torch.Tensor, height: int, width: int) -> torch.Tensor:
        shapes = params.detach().to("cpu", torch.float64).numpy().reshape(len(params), self.count, self.genes)
        scale = np.array([255.0, 255.0, 255.0, 255.0 * self.alpha_max])  # an array: numpy is slow with a list here
        colours = np.rint(shapes[..., -4:] * scale).astype(np.int64)
        geometry = self._pil_geometry(shapes[..., :-4], height, width)
        blank = PILImage.new("RGB", (width, height), tuple(round(c * 255) for c in self.background))
        pixels = []
        for shape_list, fills in zip(geometry, colours.tolist(), strict=True):
            picture = blank.copy()
            draw = ImageDraw.Draw(picture, "RGBA")
            for points, fill in zip(shape_list, fills, strict=True):
                if fill[3] > 0:
                    draw.polygon(points, fill=tuple(fill))
            pixels.append(picture.tobytes())  # far cheaper than np.asarray(picture)
        out = np.frombuffer(bytearray(b"".join(pixels)), dtype=np.uint8).reshape(len(params), height, width, 3)
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)

    def _render_dense(self, params: torch.Tensor, height: int, width: int) -> torch.Tensor:
        device, dtype = params.device, torch.float32
        xs, ys = _pixel_centres(height, width, device)
        chunk = max(1, _DENSE_BUDGET // (self.count * height * width))
        background = torch.tensor(self.background, device=device, dtype=dtype).view(1, 3, 1, 1)
        pictures = []
        for part in params.to(dtype).split(chunk):
            shapes = part.view(len(part), self.count, self.genes)
            cover = self._coverage(shapes[..., :-4], xs, ys, height, width)  # [p, T, H, W] in {0, 1}
            alpha = shapes[..., -1] * self.alpha_max
            colour = shapes[..., -4:-1]
            picture = background.expand(len(part), 3, height, width).clone()
            for t in range(self.count):
                picture = blend(picture, cover[:, t], alpha[:, t], colour[:, t])
            pictures.append(picture)
        return torch.cat(pictures)

    def shape_coverage(self, shapes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``[N, H, W]``: 1 where each of ``shapes`` (``[N, genes]``, one shape each) covers a
        pixel centre, as the ``torch`` renderer draws it; on the shapes' device."""
        height, width = size
        xs, ys = _pixel_centres(height, width, shapes.device)
        geometry = shapes.to(torch.float32)[:, :-4].unsqueeze(1)
        return self._coverage(geometry, xs, ys, height, width).squeeze(1)

    @abstractmethod
    def _pil_geometry(self, geometry: np.ndarray, height: int, width: int) -> list[list[list[float]]]:
        """Per picture, per shape: the flat vertex list ``[x0, y0, x1, y1, ...]`` in Pillow's coordinates."""

    @abstractmethod
    def _coverage(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        """``[P, T, H, W]``: 1 where shape ``t`` of picture ``p`` covers the pixel centre."""

    @abstractmethod
    def signed_distance(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int, scale: float = 1.0
    ) -> torch.Tensor:
        """``[P, T, H, W]``: how far inside shape ``t`` of picture ``p`` each pixel centre is, in
        pixels (negative outside) times ``scale``, differentiable in ``geometry`` ``[P, T, geometry
        genes]``; ``xs`` ``[1, 1, 1, W]`` and ``ys`` ``[1, 1, H, 1]`` are the pixel centres. Its
        sign is :meth:`_coverage`'s (``>= 0`` inside); near the outline it is the distance to it,
        farther off an estimate (the soft renderer, soft_render.py, needs no more)."""

    @abstractmethod
    def bounding_box(self, geometry: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``[..., 4]``: the smallest x, y and the largest x, y (px) of each shape's outline, for
        ``geometry`` ``[..., geometry genes]``."""


@functools.lru_cache(maxsize=16)
def _pixel_centres(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The x ``[1, 1, 1, W]`` and y ``[1, 1, H, 1]`` coordinates of the pixel centres."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5).view(1, 1, height, 1)
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5).view(1, 1, 1, width)
    return xs, ys


def blend(under: torch.Tensor, cover: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """One shape drawn over each picture: ``under + cover·alpha·(colour − under)``.

    ``under`` ``[B, 3, H, W]`` (or ``[1, 3, H, W]``, shared), ``cover`` ``[B, H, W]``,
    ``alpha`` ``[B]`` (the opacity itself, not the gene) and ``colour`` ``[B, 3]``. The
    ``torch`` renderer draws every shape this way, so a picture painted shape by shape
    with it is exactly that renderer's picture.
    """
    weight = (cover * alpha.view(-1, 1, 1)).unsqueeze(1)
    return under + weight * (colour.reshape(-1, 3, 1, 1) - under)


def _pil_points(x: np.ndarray, y: np.ndarray) -> list[list[list[float]]]:
    """Pixel-centre coordinates to Pillow's (whose pixel ``i`` is centred on ``i``), flattened per shape."""
    flat = np.stack([x, y], axis=-1).reshape(*x.shape[:2], -1)
    return flat.tolist()


class Triangles(Genome):
    """Translucent triangles: three corners anywhere in the picture, a colour, an opacity."""

    kind = "triangle"
    gene_names = ("x0", "y0", "x1", "y1", "x2", "y2", "r", "g", "b", "a")
    points = ((0, 1), (2, 3), (4, 5))

    def _pil_geometry(self, geometry: np.ndarray, height: int, width: int) -> list[list[list[float]]]:
        return _pil_points(geometry[..., 0::2] * width, geometry[..., 1::2] * height)

    def _coverage(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        g = geometry.unsqueeze(-1).unsqueeze(-1)  # [P, T, 6, 1, 1]
        x, y = g[:, :, 0::2] * width, g[:, :, 1::2] * height  # corners [P, T, 3, 1, 1]
        # Edge i runs from corner i to corner i + 1; its function is [P, T, 3, H, W].
        edges = (x.roll(-1, 2) - x) * (ys.unsqueeze(2) - y) - (y.roll(-1, 2) - y) * (xs.unsqueeze(2) - x)
        # Inside when all three edge functions are >= 0, or all <= 0 (either winding).
        return ((edges.amin(2) >= 0) | (edges.amax(2) <= 0)).to(geometry.dtype)

    def signed_distance(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int, scale: float = 1.0
    ) -> torch.Tensor:
        x, y = geometry[..., 0::2] * width, geometry[..., 1::2] * height  # corners [P, T, 3]
        ex, ey = x.roll(-1, 2) - x, y.roll(-1, 2) - y
        # The winding (+1 or -1) turns every edge function positive inside; divided by the edge's
        # length, each is the distance to that edge's line, and the nearest line is the outline.
        # Each edge is a·y + b·x + c: the coefficients are small, the pixels one fused product.
        winding = torch.where((ex[..., 0] * ey[..., 1] - ey[..., 0] * ex[..., 1]) >= 0, 1.0, -1.0).detach()
        k = (scale * winding).unsqueeze(-1) / torch.sqrt(ex * ex + ey * ey + 1e-12)
        a, b, c = (v[..., None, None] for v in (ex * k, -ey * k, (ey * x - ex * y) * k))
        e0, e1, e2 = (torch.addcmul(b[:, :, i] * xs + c[:, :, i], a[:, :, i], ys) for i in range(3))
        return torch.minimum(torch.minimum(e0, e1), e2)

    def bounding_box(self, geometry: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x, y = geometry[..., 0::2] * width, geometry[..., 1::2] * height
        return torch.stack([x.amin(-1), y.amin(-1), x.amax(-1), y.amax(-1)], -1)


class Circles(Genome):
    """Translucent discs: a centre, a radius up to ``radius_max`` of the long side, a colour, an opacity."""

    kind = "circle"
    gene_names = ("x", "y", "radius", "r", "g", "b", "a")
    points = ((0, 1),)

    def __init__(self, count: int, alpha_max: float, background: str, renderer: str, radius_max: float) -> None:
        super().__init__(count, alpha_max, background, renderer)
        self.radius_max = float(radius_max)

    def _extra_config(self) -> dict[str, object]:
        return {"radius_max": self.radius_max}

    def _radius(self, gene: Array, height: int, width: int) -> Array:
        return 0.5 + gene * self.radius_max * max(height, width)

    def _pil_geometry(self, geometry: np.ndarray, height: int, width: int) -> list[list[list[float]]]:
        cx, cy = geometry[..., 0] * width, geometry[..., 1] * height
        radius = self._radius(geometry[..., 2], height, width)
        return _ellipse_polygons(cx, cy, radius, radius, np.zeros_like(cx), _circle_vertices(radius))

    def _coverage(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        g = geometry.unsqueeze(-1).unsqueeze(-1)
        cx, cy = g[:, :, 0] * width, g[:, :, 1] * height
        radius = self._radius(g[:, :, 2], height, width)
        return ((xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2).to(geometry.dtype)

    def signed_distance(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int, scale: float = 1.0
    ) -> torch.Tensor:
        g = geometry.unsqueeze(-1).unsqueeze(-1)
        cx, cy = g[:, :, 0] * width, g[:, :, 1] * height
        radius = self._radius(g[:, :, 2], height, width)
        return (radius - torch.sqrt((xs - cx) ** 2 + (ys - cy) ** 2 + 1e-12)) * scale

    def bounding_box(self, geometry: torch.Tensor, height: int, width: int) -> torch.Tensor:
        cx, cy = geometry[..., 0] * width, geometry[..., 1] * height
        radius = self._radius(geometry[..., 2], height, width)
        return torch.stack([cx - radius, cy - radius, cx + radius, cy + radius], -1)


class Strokes(Genome):
    """Brush strokes: elongated ellipses with a centre, length, angle, width, colour and opacity."""

    kind = "stroke"
    gene_names = ("x", "y", "length", "angle", "width", "r", "g", "b", "a")
    points = ((0, 1),)

    def __init__(
        self,
        count: int,
        alpha_max: float,
        background: str,
        renderer: str,
        length_max: float,
        width_max: float,
    ) -> None:
        super().__init__(count, alpha_max, background, renderer)
        self.length_max, self.width_max = float(length_max), float(width_max)

    def _extra_config(self) -> dict[str, object]:
        return {"length_max": self.length_max, "width_max": self.width_max}

    def _axes(self, length: Array, thickness: Array, long_side: int) -> tuple[Array, Array]:
        """Half-length and half-width in pixels; at least half a pixel so no stroke vanishes."""
        return 0.5 + 0.5 * length * self.length_max * long_side, 0.5 + 0.5 * thickness * self.width_max * long_side

    def _pil_geometry(self, geometry: np.ndarray, height: int, width: int) -> list[list[list[float]]]:
        cx, cy = geometry[..., 0] * width, geometry[..., 1] * height
        half_length, half_width = self._axes(geometry[..., 2], geometry[..., 4], max(height, width))
        return _ellipse_polygons(cx, cy, half_length, half_width, geometry[..., 3] * math.pi, _ELLIPSE_VERTICES)

    def _frame(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each pixel centre in each stroke's own axes, scaled so the outline is u² + v² = 1;
        with the half length and half width (px)."""
        g = geometry.unsqueeze(-1).unsqueeze(-1)
        dx, dy = xs - g[:, :, 0] * width, ys - g[:, :, 1] * height
        angle = g[:, :, 3] * math.pi
        cos, sin = torch.cos(angle), torch.sin(angle)
        half_length, half_width = self._axes(g[:, :, 2], g[:, :, 4], max(height, width))
        u = (dx * cos + dy * sin) / half_length
        v = (dy * cos - dx * sin) / half_width
        return u, v, half_length, half_width

    def _coverage(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        u, v, _, _ = self._frame(geometry, xs, ys, height, width)
        return (u * u + v * v <= 1.0).to(geometry.dtype)

    def signed_distance(
        self, geometry: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, height: int, width: int, scale: float = 1.0
    ) -> torch.Tensor:
        u, v, half_length, half_width = self._frame(geometry, xs, ys, height, width)
        # f = u² + v² − 1 is 0 on the outline; f / |∇f| (∇ in pixels) is the distance to it, to
        # first order, and the sign is the coverage's.
        slope = (2.0 / scale) * torch.sqrt((u / half_length) ** 2 + (v / half_width) ** 2 + 1e-12)
        return (1.0 - u * u - v * v) / slope

    def bounding_box(self, geometry: torch.Tensor, height: int, width: int) -> torch.Tensor:
        cx, cy = geometry[..., 0] * width, geometry[..., 1] * height
        half_length, half_width = self._axes(geometry[..., 2], geometry[..., 4], max(height, width))
        reach = torch.maximum(half_length, half_width)  # whatever the angle
        return torch.stack([cx - reach, cy - reach, cx + reach, cy + reach], -1)


def _circle_vertices(radius: np.ndarray) -> int:
    """Enough polygon vertices that the biggest circle's polygon stays within a third of a pixel."""
    biggest = float(radius.max()) if radius.size else 1.0
    return int(min(max(12, math.ceil(math.pi / math.acos(max(1.0 - 0.33 / max(biggest, 1.0), 0.0)))), 96))


def _ellipse_polygons(
    cx: np.ndarray, cy: np.ndarray, a: np.ndarray, b: np.ndarray, angle: np.ndarray, vertices: int
) -> list[list[list[float]]]:
    """Polygons approximating rotated ellipses (Pillow cannot draw a rotated ellipse)."""
    theta = np.linspace(0.0, 2.0 * math.pi, vertices, endpoint=False)
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    ca, sa = np.cos(angle)[..., None], np.sin(angle)[..., None]
    u, v = a[..., None] * cos_t, b[..., None] * sin_t
    return _pil_points(cx[..., None] + u * ca - v * sa, cy[..., None] + u * sa + v * ca)


# -- the type and the nodes -----------------------------------------------------------


def _check_genome(value: object) -> str | None:
    if not isinstance(value, Genome):
        return f"expected a genome (artgraph.nodes.search.genomes.Genome), got {type(value).__name__}"
    return None


GenomeType = PortType(
    "Genome",
    "a search space of pictures: shapes described by parameters in [0,1], with a batched renderer",
    value=_check_genome,
)


def _common(count: int) -> dict[str, Param]:
    return {
        "count": Param(Int, count, min=1, max=100_000, description="how many shapes make a picture"),
        "alpha_max": Param(Float, 0.5, min=0.0, max=1.0, description="the most opaque a shape can be"),
        "background": Param(Str, "white", rule=colour, description="colour under the shapes (name or #rrggbb)"),
        "renderer": Param(Str, "auto", choices=RENDERERS, description="auto: pil on the CPU, torch on a GPU"),
    }


@node(
    "genome.triangles",
    category="search",
    params=_common(50),
    outputs={"genome": GenomeType},
)
def triangles(count: int, alpha_max: float, background: str, renderer: str) -> Genome:
    """Pictures made of translucent triangles (EvoLisa's search space): 10 genes per triangle."""
    return Triangles(count, alpha_max, background, renderer)


@node(
    "genome.circles",
    category="search",
    params={
        **_common(100),
        "radius_max": Param(Float, 0.25, min=0.0, max=2.0, description="largest radius, as a share of the long side"),
    },
    outputs={"genome": GenomeType},
)
def circles(count: int, alpha_max: float, background: str, renderer: str, radius_max: float) -> Genome:
    """Pictures made of translucent discs: 7 genes per circle."""
    return Circles(count, alpha_max, background, renderer, radius_max)


@node(
    "genome.strokes",
    category="search",
    params={
        **_common(200),
        "length_max": Param(Float, 0.3, min=0.0, max=2.0, description="longest stroke, as a share of the long side"),
        "width_max": Param(Float, 0.06, min=0.0, max=1.0, description="widest stroke, as a share of the long side"),
    },
    outputs={"genome": GenomeType},
)
def strokes(
    count: int, alpha_max: float, background: str, renderer: str, length_max: float, width_max: float
) -> Genome:
    """Pictures made of brush strokes (elongated ellipses at any angle): 9 genes per stroke."""
    return Strokes(count, alpha_max, background, renderer, length_max, width_max)


def render_size(long_side: int, aspect: float | None) -> tuple[int, int]:
    """``(H, W)`` with the given long side and width/height ``aspect`` (square when None)."""
    if not aspect or aspect <= 0:
        return long_side, long_side
    if aspect >= 1.0:
        return max(1, round(long_side / aspect)), long_side
    return long_side, max(1, round(long_side * aspect))


__all__: Sequence[str] = [
    "Circles",
    "Genome",
    "GenomeType",
    "Strokes",
    "Triangles",
    "blend",
    "parse_colour",
    "render_size",
]
