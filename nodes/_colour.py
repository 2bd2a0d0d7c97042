"""Colours given as text: a name ('white'), a hex code ('#808080') or 'rgb(128, 128, 128)'.

Nodes take colours as Str params. :func:`colour_problems` checks them before a run
(a node's ``check``: one problem per param that is not a colour) and again inside
the node, for callers that skip validation; :func:`parse_colour` reads one as RGB
in [0, 1]. Both accept exactly what Pillow's ``ImageColor.getrgb`` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping

from PIL import ImageColor

from artgraph import NodeError

HINT = "use a name like 'white', a hex code like '#808080' or 'rgb(128, 128, 128)'"


def colour_problems(params: Mapping[str, object], *keys: str) -> list[tuple[str, str]]:
    """``(problem, fix)`` for each of the params ``keys`` that is text but not a colour."""
    problems = []
    for key in keys:
        value = params.get(key)
        if not isinstance(value, str):
            continue
        try:
            ImageColor.getrgb(value)
        except ValueError:
            problems.append((f"'{value}' is not a colour ({key})", HINT))
    return problems


def parse_colour(text: str) -> tuple[float, float, float]:
    """A colour name or ``#rrggbb`` as RGB in [0, 1]; NodeError when Pillow does not know it."""
    try:
        rgb = ImageColor.getrgb(text)
    except (ValueError, AttributeError):
        raise NodeError(f"'{text}' is not a colour; {HINT}") from None
    return rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0
