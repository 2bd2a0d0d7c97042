"""Colours given as text: a name ('white'), a hex code ('#808080') or 'rgb(128, 128, 128)'.

Nodes take colours as Str params declared with ``rule=colour``: the engine checks
them, literal or wired, before the node runs. :func:`parse_colour` reads one as
RGB in [0, 1]. Both accept exactly what Pillow's ``ImageColor.getrgb`` accepts.
"""

from __future__ import annotations

from PIL import ImageColor

from artgraph import NodeError

HINT = "use a name like 'white', a hex code like '#808080' or 'rgb(128, 128, 128)'"


def colour(value: object) -> str | None:
    """The rule of a colour param (``Param(Str, "white", rule=colour)``): None, or what is wrong."""
    if not isinstance(value, str):
        return None  # the type check speaks for non-text
    try:
        ImageColor.getrgb(value)
    except ValueError:
        return f"'{value}' is not a colour; {HINT}"
    return None


def parse_colour(text: str) -> tuple[float, float, float]:
    """A colour name or ``#rrggbb`` as RGB in [0, 1]; NodeError when Pillow does not know it."""
    try:
        rgb = ImageColor.getrgb(text)
    except (ValueError, AttributeError):
        raise NodeError(f"'{text}' is not a colour; {HINT}") from None
    return rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0
